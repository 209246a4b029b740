"""Learning curves from a run's recorded history: loss, F1 and AP per epoch (train, valid, held
out), the phases marked. Drawn from the numbers the run kept, so an old run can be drawn again
(`jobs/plot.py`)."""

from __future__ import annotations

import io
import math

from swinls import storage

CURVES_NAME = "curves.png"
PANELS = (("loss (each phase its own)", (("train_loss", "train"),)),
          ("F1", (("valid_f1", "valid"), ("holdout_f1", "held out"))),
          ("AP", (("valid_ap", "valid"), ("holdout_ap", "held out"))))


def _value(entry: dict, key: str) -> float:
    value = entry.get(key)
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else math.nan


def curves_figure(history: list[dict], title: str = ""):
    """A matplotlib Figure of three panels; x is the run's epoch (1, 2, …) across its phases."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    figure = Figure(figsize=(11, 3.4), layout="constrained")
    axes = figure.subplots(1, len(PANELS), sharex=True)
    epochs = [int(entry.get("epoch", i + 1)) for i, entry in enumerate(history)]
    starts = [(epochs[i], entry["phase"]) for i, entry in enumerate(history)
              if entry.get("phase") and (i == 0 or history[i - 1].get("phase") != entry["phase"])]
    for ax, (name, series) in zip(axes, PANELS):
        for key, label in series:
            values = [_value(entry, key) for entry in history]
            if not all(math.isnan(v) for v in values):
                ax.plot(epochs, values, marker="o", markersize=3, label=label, gid=key)
        for epoch, phase in starts:
            ax.axvline(epoch - 0.5, color="grey", linewidth=0.8, linestyle=":")
            ax.annotate(phase, (epoch - 0.45, 0.98), xycoords=("data", "axes fraction"), fontsize=7, va="top",
                        ha="left", rotation=90, color="grey")  # upright: one-epoch phases sit side by side
        ax.set_title(name)
        ax.set_xlabel("epoch")
        if ax.lines:
            ax.legend(fontsize=8)
    if title:
        figure.suptitle(title, fontsize=10)
    return figure


def curves_png(history: list[dict], title: str = "") -> bytes:
    buffer = io.BytesIO()
    curves_figure(history, title).savefig(buffer, format="png", dpi=100)
    return buffer.getvalue()


def write_curves(history: list[dict], run_uri: str, title: str = "") -> str:
    """`curves.png` beside the run's checkpoints (local or s3://), written whole or not at all."""
    uri = storage.join(run_uri, CURVES_NAME)
    storage.write_bytes_atomic(uri, curves_png(history, title))
    return uri
