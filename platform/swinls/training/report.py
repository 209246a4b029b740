"""The per-epoch table the jobs print."""

from __future__ import annotations

import math

SCORES = ("precision", "recall", "f1", "iou", "ap", "best_f1")
# what every epoch reports, to rank or stop trials by (holdout_* only with holdout regions)
EPOCH_METRICS = ("train_loss", "lr", "train_seconds", "seconds") + tuple(
    f"{split}_{score}" for split in ("valid", "holdout") for score in SCORES)

COLUMNS = [("phase", 20, "{}"), ("phase_epoch", 5, "{}"), ("train_loss", 10, "{:.4f}"), ("valid_precision", 9, "{:.3f}"),
           ("valid_recall", 9, "{:.3f}"), ("valid_f1", 8, "{:.3f}"), ("valid_iou", 8, "{:.3f}"), ("valid_ap", 8, "{:.3f}"), ("holdout_f1", 10, "{:.3f}"),
           ("seconds", 7, "{:.1f}")]
TITLES = {"phase_epoch": "ep", "train_loss": "loss", "valid_precision": "P", "valid_recall": "R", "valid_f1": "F1",
          "valid_iou": "IoU", "valid_ap": "AP", "holdout_f1": "holdout F1", "seconds": "s"}


def epoch_table_header() -> str:
    return " ".join(f"{TITLES.get(name, name):>{width}}" for name, width, _ in COLUMNS)


def epoch_row(metrics: dict) -> str:
    cells = []
    for name, width, fmt in COLUMNS:
        value = metrics.get(name)
        text = "-" if value is None else "undef" if isinstance(value, float) and math.isnan(value) else fmt.format(value)
        cells.append(f"{text:>{width}}")
    return " ".join(cells)
