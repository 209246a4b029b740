"""What the seeds resolve: each row against the table's reference row, paired by seed.

A table's sentence "A beats B" is worth what the difference A − B over the seeds says: its mean
and a 95 % confidence interval from Student's t over the per-seed differences (trials of the same
seed share their data order and initialisation, so pairing removes what they have in common).
Where the interval spans 0, the seeds do not resolve the comparison, and the page says so.
"""

from __future__ import annotations

import math
import statistics
from dataclasses import dataclass

from scipy import stats

from swinls.metrics import defined

CONFIDENCE = 0.95


@dataclass(frozen=True)
class Difference:
    model: str
    row: str
    reference: str
    metric: str
    mean: float
    low: float
    high: float
    pairs: int
    reference_model: str = ""  # another model on the same row (SwinLS − U-Net); empty: `model` itself

    @property
    def across_models(self) -> bool:
        return bool(self.reference_model) and self.reference_model != self.model

    @property
    def resolved(self) -> bool:
        return self.pairs >= 2 and (self.low > 0 or self.high < 0)

    def figures(self) -> tuple[str, str]:
        """The mean difference and its interval as a table shows them ("–" where undefined)."""
        mean = "–" if math.isnan(self.mean) else f"{self.mean:+.3f}"
        interval = "–" if math.isnan(self.low) else f"{self.low:+.3f} to {self.high:+.3f}"
        return mean, interval

    def verdict(self) -> str:
        if self.pairs < 2:
            return "not resolved (fewer than 2 seeds)"
        if not self.resolved:
            return "not resolved (the interval spans 0)"
        return "higher" if self.low > 0 else "lower"


def _by_seed(records: list[dict], row: str, model: str, metric: str) -> dict[int, float]:
    out = {}
    for record in records:
        value = record.get(metric)
        if (record["row"], record["model"], record["status"]) == (row, model, "complete") and defined(value):
            out[record["seed"]] = float(value)
    return out


def paired(records: list[dict], model: str, row: str, reference: str, metric: str = "valid_f1",
           reference_model: str = "") -> Difference:
    """row − reference for one model, or `model` − `reference_model` on one row (trials of a seed
    share their data order and augmentation draws across models too), over the seeds both completed."""
    other = reference_model or model
    mine, theirs = _by_seed(records, row, model, metric), _by_seed(records, reference, other, metric)
    deltas = [mine[s] - theirs[s] for s in sorted(set(mine) & set(theirs))]
    known = dict(model=model, row=row, reference=reference, metric=metric, reference_model=reference_model)
    if not deltas:
        return Difference(**known, mean=math.nan, low=math.nan, high=math.nan, pairs=0)
    mean = statistics.fmean(deltas)
    if len(deltas) < 2:
        return Difference(**known, mean=mean, low=math.nan, high=math.nan, pairs=1)
    half = stats.t.ppf(0.5 + CONFIDENCE / 2, len(deltas) - 1) * statistics.stdev(deltas) / math.sqrt(len(deltas))
    return Difference(**known, mean=mean, low=mean - half, high=mean + half, pairs=len(deltas))


def differences(records: list[dict], rows: list[str], models: list[str], reference: str,
                metric: str = "valid_f1") -> list[Difference]:
    """Each row a model was asked for (a trial of it in `records`, finished or not) against the
    reference; a row asked only for another model is no comparison of this one."""
    asked = {(r["model"], r["row"]) for r in records}
    return [paired(records, model, row, reference, metric) for model in models for row in rows
            if row != reference and (model, row) in asked]


def markdown(found: list[Difference], labels: dict[str, str], model_labels: dict[str, str]) -> str:
    if not found:
        return ""
    reference = labels.get(found[0].reference, found[0].reference)
    lines = [f"**Against {reference}, paired by seed** (mean difference of {found[0].metric} and its "
             f"{CONFIDENCE:.0%} confidence interval)", "",
             "| model | row | difference | 95 % interval | seeds | resolved? |", "| --- | --- | ---: | ---: | ---: | --- |"]
    for d in found:
        mean, interval = d.figures()
        lines.append(f"| {model_labels.get(d.model, d.model)} | {labels.get(d.row, d.row)} | {mean} | {interval} | "
                     f"{d.pairs} | {d.verdict()} |")
    return "\n".join(lines) + "\n"
