"""Whether a challenger replaces the champion: better overall by a margin, worse nowhere by much."""

from __future__ import annotations

from dataclasses import dataclass

from swinls.metrics import defined
from swinls.retraining.evaluate import Scores

MIN_GAIN = 0.005  # overall F1 the challenger must add
MAX_REGION_DROP = 0.02  # F1 no region may lose


@dataclass(frozen=True)
class Verdict:
    promote: bool
    reason: str

    @property
    def word(self) -> str:
        return "promoted" if self.promote else "kept"


def judge(champion: Scores | None, challenger: Scores, *, min_gain: float = MIN_GAIN,
          max_region_drop: float = MAX_REGION_DROP) -> Verdict:
    new = challenger.overall.scores()["f1"]
    if not defined(new):  # nothing labelled to judge by: never a promotion
        return Verdict(False, "F1 is undefined: the evaluation data has no labelled validation pixel "
                              "(label ValidData or carve validation from TrainData: data.valid_fraction)")
    if champion is None:
        return Verdict(True, f"first champion (F1 {new:.4f})")
    old = champion.overall.scores()["f1"]
    if not defined(old):
        return Verdict(True, f"F1 {new:.4f}; the champion's is undefined on this data")
    drops = {}
    for region, counts in challenger.regions.items():
        before = champion.regions.get(region)
        if before is None or not (defined(before.f1) and defined(counts.f1)):
            continue
        drop = before.scores()["f1"] - counts.scores()["f1"]
        if drop > max_region_drop:
            drops[region] = drop
    if new < old + min_gain:
        return Verdict(False, f"F1 {new:.4f} against the champion's {old:.4f}: a gain of {new - old:+.4f}, "
                              f"under the {min_gain:g} required")
    if drops:
        worst = ", ".join(f"{region} {-drop:+.4f}" for region, drop in sorted(drops.items(), key=lambda kv: -kv[1]))
        return Verdict(False, f"F1 {new:.4f} against {old:.4f} overall, but F1 falls by more than "
                              f"{max_region_drop:g} in {worst}")
    return Verdict(True, f"F1 {new:.4f} against the champion's {old:.4f} ({new - old:+.4f}), "
                         f"no region down by more than {max_region_drop:g}")


def score_table(scores: dict) -> list[str]:
    """P/R/F1 of champion and challenger, overall and per region, from the record's pixel counts."""
    models = [(name, scores[name]) for name in ("champion", "challenger") if scores.get(name)]
    rows = ["overall", *scores["challenger"]["regions"]]
    width = max(len(r) for r in rows) + 2
    lines = [(" " * width + "".join(f"{name:<26}" for name, _ in models)).rstrip(),
             (f"{'region':<{width}}" + "".join(f"{'P':>7} {'R':>7} {'F1':>7}   " for _ in models)).rstrip()]
    for row in rows:
        cells = ""
        for _, table in models:
            values = table["overall"] if row == "overall" else table["regions"].get(row)
            cells += "".join(f"{values[m]:>7.4f} " if values and values[m] is not None else f"{'-':>7} " for m in ("precision", "recall", "f1")) + "  "
        lines.append(f"{row:<{width}}{cells}".rstrip())
    return lines
