"""Live per-epoch lines on the driver, whatever process trained the epoch.

In a plain process the loop's reports come here directly; under Ray they are forwarded to the
driver (`forwarding.py`), and a search's trials report to Tune, whose callbacks run in the driver
(`search/callbacks.py:EpochLines`).
"""

from __future__ import annotations

from swinls.training.report import EPOCH_METRICS, epoch_row
from swinls.work_estimate import duration

# what a line needs of a report: a checkpoint URI or a trial's config would only cost the queue
# (every score too: the driver's MLflow run logs what the lines bring)
LINE_KEYS = ("phase", "phase_epoch", "phase_epochs", "epoch", "epochs_total", "train_patches") + EPOCH_METRICS


def flush_print(line: str) -> None:
    print(line, flush=True)  # a job's log is a pipe: unflushed, a line can wait for hours


class TimeLeft:
    """The run's remaining epochs times the mean epoch seen so far (by this driver: a resumed run
    starts the mean again). Pseudo-labelling between blocks is not in it."""

    def __init__(self) -> None:
        self.seconds: list[float] = []

    def __call__(self, metrics: dict) -> str | None:
        if metrics.get("seconds") is not None:
            self.seconds.append(float(metrics["seconds"]))
        total, done = metrics.get("epochs_total"), metrics.get("epoch")
        if not self.seconds or total is None or done is None:
            return None
        return duration(max(0, total - done) * sum(self.seconds) / len(self.seconds))


class LiveLines:
    """Formats each epoch's report as one row of the epoch table with a time left."""

    def __init__(self, printer, prefix: str = "") -> None:
        self.printer, self.prefix = printer, prefix
        self.left = TimeLeft()

    def __call__(self, metrics: dict) -> None:
        self.printer(self.prefix + epoch_row(dict(metrics, time_left=self.left(metrics)), live=True))


def line_fields(metrics: dict) -> dict:
    return {key: metrics[key] for key in LINE_KEYS if key in metrics}
