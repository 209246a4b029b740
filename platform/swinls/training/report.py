"""The per-epoch table the jobs print."""

from __future__ import annotations

import math

SCORES = ("precision", "recall", "f1", "iou", "ap", "best_f1")
# what every epoch reports, to rank or stop trials by (holdout_* only with holdout regions)
EPOCH_METRICS = ("train_loss", "lr", "train_seconds", "seconds") + tuple(
    f"{split}_{score}" for split in ("valid", "holdout") for score in SCORES)

COLUMNS = [("phase", 20, "{}"), ("phase_epoch", 5, "{}"), ("train_loss", 10, "{:.4f}"), ("valid_precision", 9, "{:.3f}"),
           ("valid_recall", 9, "{:.3f}"), ("valid_f1", 8, "{:.3f}"), ("valid_iou", 8, "{:.3f}"), ("valid_ap", 8, "{:.3f}"), ("holdout_f1", 10, "{:.3f}"),
           ("patches_per_s", 9, "{:.1f}"), ("seconds", 7, "{:.1f}")]
LEFT = ("time_left", 8, "{}")  # live lines only: what the driver expects the run still needs
TITLES = {"patches_per_s": "patches/s", "time_left": "left", "phase_epoch": "ep", "train_loss": "loss", "valid_precision": "P", "valid_recall": "R", "valid_f1": "F1",
          "valid_iou": "IoU", "valid_ap": "AP", "holdout_f1": "holdout F1", "seconds": "s"}


def _columns(live: bool) -> list[tuple[str, int, str]]:
    return COLUMNS + [LEFT] if live else COLUMNS


def epoch_table_header(live: bool = False) -> str:
    return " ".join(f"{TITLES.get(name, name):>{width}}" for name, width, _ in _columns(live))


def patches_per_second(metrics: dict) -> float | None:
    """Training throughput of the epoch, over all workers (train_patches is their sum)."""
    patches, seconds = metrics.get("train_patches"), metrics.get("train_seconds")
    return patches / seconds if patches and seconds else None


def epoch_row(metrics: dict, live: bool = False) -> str:
    cells = []
    metrics = dict(metrics, patches_per_s=patches_per_second(metrics))
    for name, width, fmt in _columns(live):
        value = metrics.get(name)
        text = "-" if value is None else "undef" if isinstance(value, float) and math.isnan(value) else fmt.format(value)
        cells.append(f"{text:>{width}}")
    return " ".join(cells)
