"""An ablation's outputs, computed from its trials' runs in storage:

    trials.csv   every trial (row, model, seed, status) with every metric of its last epoch,
                 and `throughput` and `time_to_f1_<target>` (one per target F1) from its history
    table.md     per row and model: mean ± standard deviation over seeds of each of the table's
                 metrics (held-out regions beside the validation split), and the paper's figure
    table.png    bars of the mean validation F1 with the seed standard deviation as error bars,
                 the paper's figures as markers

The standard deviation is the sample one (n − 1) over the seeds that finished; a row with one
seed shows none. Figures are fractions (0–1) as the training loop reports them; the paper's, in
per cent there, are divided by 100 to sit beside them. Under the table, per model, Spearman's
rank correlation between the rows' mean F1 and the paper's: whether the paper's ordering holds
(1: the same order, 0: none, −1: reversed), which a 0.05 difference cannot show alone.

The target F1s are the report's, not the trials': every trial keeps its whole history, so a rerun
with other targets reports the times to them without training anything.
"""

from __future__ import annotations

import csv
import io
import itertools
import math
import statistics
import tempfile
from dataclasses import dataclass
from pathlib import Path

from swinls import storage
from swinls.tracking.overviews import TIME_TO_F1_NAME, write_time_to_f1
from swinls.ablation import differences
from swinls.ablation.tables import Row, Table
from swinls.ablation.trial import trial_name
from swinls.checkpoints import RunStore

LABELS = {"valid_f1": "valid F1", "valid_best_f1": "valid F1, best threshold", "holdout_f1": "held-out F1", "valid_precision": "valid P", "valid_recall": "valid R",
          "throughput": "patches/s"}
MODEL_LABELS = {"swinls": "SwinLS", "unet": "U-Net", "deeplabv3": "DeepLabv3"}
TIME_TO_F1 = "time_to_f1"  # a table's metric that stands for one column per target F1


def time_key(target: float) -> str:
    return f"{TIME_TO_F1}_{target:g}"


def label(metric: str) -> str:
    if metric.startswith(TIME_TO_F1 + "_"):
        return f"s to valid F1 {metric[len(TIME_TO_F1) + 1:]}"
    return LABELS[metric]


def report_metrics(table: Table, targets: tuple[float, ...]) -> tuple[str, ...]:
    """The table's metrics with its time to F1 as one metric per target."""
    out = []
    for metric in table.metrics:
        out += [time_key(t) for t in targets] if metric == TIME_TO_F1 else [metric]
    return tuple(out)


def history_figures(history: list[dict], targets: tuple[float, ...] = ()) -> dict:
    """Throughput (training patches/s over the epochs after the first, which pays the start-up)
    and, per target, the seconds of training and evaluation until valid F1 first reached it
    (NaN if it never did)."""
    timed = history[1:] or history
    seconds = sum(h.get("train_seconds", 0.0) for h in timed)
    out = {"throughput": sum(h.get("train_patches", 0) for h in timed) / seconds if seconds else math.nan}
    elapsed = list(itertools.accumulate(h.get("seconds", 0.0) for h in history))
    for target in targets:
        out[time_key(target)] = next((t for h, t in zip(history, elapsed) if h.get("valid_f1", -1.0) >= target), math.nan)
    return out


def collect(table: Table, rows: tuple[Row, ...], trials: list[dict], exp_uri: str,
            targets: tuple[float, ...] = ()) -> list[dict]:
    """One record per trial of the grid, from its run's checkpoint pointer."""
    records = []
    for trial in trials:
        name = trial_name(trial["row"], trial["model"], trial["seed"])
        pointer = RunStore(storage.join(exp_uri, "trials", name)).latest() or {}
        history = pointer.get("history", [])
        last = history[-1] if history else {}
        status = "complete" if last.get("run_complete") else ("incomplete" if history else "missing")
        figures = history_figures(history, targets) if history else {}
        records.append({**trial, "trial": name, "status": status, "epochs": len(history),
                        **{k: v for k, v in last.items() if isinstance(v, (int, float)) and not isinstance(v, bool)}, **figures})
    return records


def _mean_std(values: list[float]) -> tuple[float, float]:
    values = [v for v in values if v is not None and not math.isnan(v)]
    if not values:
        return math.nan, math.nan
    return statistics.fmean(values), (statistics.stdev(values) if len(values) > 1 else math.nan)


def summarise(table: Table, rows: tuple[Row, ...], records: list[dict], models: tuple[str, ...],
              targets: tuple[float, ...] = ()) -> list[dict]:
    """Per row and model: mean and std of each metric over the complete trials."""
    out = []
    for row in rows:
        for model in models:
            asked = [r for r in records if r["row"] == row.name and r["model"] == model]
            if not asked:  # a grid grown by model for some rows only
                continue
            done = [r for r in asked if r["status"] == "complete"]
            entry = {"row": row.name, "label": row.label, "model": model, "seeds": len(done), "of": len(asked)}
            for metric in report_metrics(table, targets):
                entry[metric] = _mean_std([r.get(metric) for r in done])
            entry["paper"] = {k: v / 100 for k, v in row.paper.items()} if table.name == "selftrain" else (
                row.paper[model] / 100 if model in row.paper else None)
            out.append(entry)
    return out


def _cell(mean: float, std: float, metric: str) -> str:
    if math.isnan(mean):
        return "–"
    digits = 1 if metric == "throughput" or metric.startswith(TIME_TO_F1) else 3
    return f"{mean:.{digits}f}" + ("" if math.isnan(std) else f" ± {std:.{digits}f}")


def markdown(table: Table, summary: list[dict], targets: tuple[float, ...] = ()) -> str:
    metrics = report_metrics(table, targets)
    paper_cols = ["paper P", "paper R", "paper F1"] if table.name == "selftrain" else (["paper F1"] if table.name != "scaling" else [])
    header = ["row", "model", *(label(m) for m in metrics), *paper_cols, "seeds"]
    lines = [f"**{table.title}** (mean ± std over seeds)", "", "| " + " | ".join(header) + " |",
             "| " + " | ".join(["---", "---"] + ["---:"] * (len(header) - 2)) + " |"]
    for entry in summary:
        cells = [entry["label"], MODEL_LABELS.get(entry["model"], entry["model"])]
        cells += [_cell(*entry[m], m) for m in metrics]
        paper = entry["paper"]
        if table.name == "selftrain":
            cells += [f"{paper[k]:.3f}" if k in paper else "–" for k in ("valid_precision", "valid_recall", "valid_f1")]
        elif table.name != "scaling":
            cells.append(f"{paper:.3f}" if paper is not None else "–")
        cells.append(f"{entry['seeds']}/{entry['of']}")
        lines.append("| " + " | ".join(cells) + " |")
    agreement = _agreement_line(table, summary)
    return "\n".join(lines) + "\n" + (f"\n{agreement}" if agreement else "")


def _paper_f1(entry: dict) -> float | None:
    """The paper's valid F1 for a summary entry (Table 4 gives precision and recall beside it)."""
    paper = entry["paper"]
    return paper.get("valid_f1") if isinstance(paper, dict) else paper


def _ranks(values: list[float]) -> list[float]:
    """Ranks from 1, ties sharing their average rank."""
    order = sorted(range(len(values)), key=values.__getitem__)
    ranks = [0.0] * len(values)
    start = 0
    while start < len(order):
        end = start
        while end + 1 < len(order) and values[order[end + 1]] == values[order[start]]:
            end += 1
        for k in range(start, end + 1):
            ranks[order[k]] = (start + end) / 2 + 1
        start = end + 1
    return ranks


def spearman(xs: list[float], ys: list[float]) -> float:
    """Spearman's rho: the Pearson correlation of the ranks; NaN under three pairs or with no spread."""
    if len(xs) < 3:
        return math.nan
    rx, ry = _ranks(xs), _ranks(ys)
    mx, my = statistics.fmean(rx), statistics.fmean(ry)
    sxy = sum((a - mx) * (b - my) for a, b in zip(rx, ry))
    sxx, syy = sum((a - mx) ** 2 for a in rx), sum((b - my) ** 2 for b in ry)
    return sxy / math.sqrt(sxx * syy) if sxx and syy else math.nan


def rank_agreement(summary: list[dict], metric: str) -> dict[str, float]:
    """Per model: Spearman's rho between the rows' mean `metric` and the paper's F1 for them."""
    out = {}
    for model in dict.fromkeys(e["model"] for e in summary):
        pairs = []
        for entry in summary:
            paper = _paper_f1(entry)
            mean = entry.get(metric, (math.nan,))[0]
            if entry["model"] == model and paper is not None and not math.isnan(mean):
                pairs.append((mean, paper))
        rho = spearman([p[0] for p in pairs], [p[1] for p in pairs])
        if not math.isnan(rho):
            out[model] = rho
    return out


def _agreement_line(table: Table, summary: list[dict]) -> str:
    parts = []
    for metric in ("valid_f1", "valid_best_f1"):
        if metric not in table.metrics:
            continue
        rhos = rank_agreement(summary, metric)
        if rhos:
            parts.append(f"{LABELS[metric]}: " + ", ".join(f"{MODEL_LABELS.get(m, m)} {r:+.2f}" for m, r in rhos.items()))
    return ("Rank agreement with the paper's F1 (Spearman's rho over the rows): " + "; ".join(parts) + "\n") if parts else ""


def csv_text(records: list[dict]) -> str:
    first = ["trial", "row", "model", "seed", "status", "epochs"]
    keys = first + sorted({k for r in records for k in r} - set(first))
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=keys, extrasaction="ignore")
    writer.writeheader()
    for record in records:
        writer.writerow({k: record.get(k, "") for k in keys})
    return out.getvalue()


def plot(table: Table, summary: list[dict], models: tuple[str, ...], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    metric = "throughput" if table.name == "scaling" else "valid_f1"
    labels = list(dict.fromkeys(e["label"] for e in summary))
    width = 0.8 / len(models)
    fig, ax = plt.subplots(figsize=(max(6.0, 1.1 * len(labels) * len(models)), 4.0))
    for k, model in enumerate(models):
        entries = [e for e in summary if e["model"] == model]
        xs = [labels.index(e["label"]) + (k - (len(models) - 1) / 2) * width for e in entries]
        means = [e[metric][0] for e in entries]
        stds = [0.0 if math.isnan(e[metric][1]) else e[metric][1] for e in entries]
        ax.bar(xs, means, width, yerr=stds, capsize=3, label=MODEL_LABELS.get(model, model))
        paper = [_paper_f1(e) for e in entries]
        if metric == "valid_f1" and any(p is not None for p in paper):
            ax.scatter([x for x, p in zip(xs, paper) if p is not None], [p for p in paper if p is not None],
                       marker="D", s=24, color="black", zorder=3, label="paper" if k == 0 else None)
    ax.set_xticks(range(len(labels)), labels, rotation=20, ha="right")
    ax.set_ylabel(LABELS[metric])
    ax.set_title(table.title)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


@dataclass
class Outputs:
    records: list[dict]
    summary: list[dict]
    markdown: str
    uris: dict[str, str]


def write_outputs(table: Table, rows: tuple[Row, ...], trials: list[dict], models: tuple[str, ...], exp_uri: str,
                  targets: tuple[float, ...] = ()) -> Outputs:
    """`targets`: the valid F1s whose time a table with `time_to_f1` reports."""
    records = collect(table, rows, trials, exp_uri, targets)
    summary = summarise(table, rows, records, models, targets)
    text = markdown(table, summary, targets)
    names = [row.name for row in rows]
    if table.reference in names:
        found = differences.differences(records, names, list(models), table.reference)
        text += "\n" + differences.markdown(found, {row.name: row.label for row in rows}, MODEL_LABELS)
    uris = {name: storage.join(exp_uri, name) for name in ("trials.csv", "table.md", "table.png")}
    storage.write_bytes_atomic(uris["trials.csv"], csv_text(records).encode())
    storage.write_bytes_atomic(uris["table.md"], text.encode())
    with tempfile.TemporaryDirectory() as tmp:
        png = Path(tmp) / "table.png"
        plot(table, summary, models, png)
        storage.put_file_atomic(png, uris["table.png"])
    if table.name == "scaling" and targets:
        uris[TIME_TO_F1_NAME] = write_time_to_f1(exp_uri, time_to_f1_points(table, summary, targets))
    return Outputs(records, summary, text, uris)


def time_to_f1_points(table: Table, summary: list[dict], targets: tuple[float, ...]) -> dict:
    """target F1 → [(workers, mean seconds)] over the worker rows of the scaling table."""
    workers = {row.name: int(o.split("=", 1)[1]) for row in table.rows for o in row.overrides
               if o.startswith("run.num_workers=") and row.name.startswith("workers-")}
    return {target: [(workers[e["row"]], e[time_key(target)][0]) for e in summary if e["row"] in workers]
            for target in targets}
