"""A trial's score: the search metric over the trial's last epochs (the space's `scope`).

Every epoch a trial reports also carries `score`, the mean of the metric over the run's last
`score_epochs` epochs so far; Optuna, ASHA (unless it names its own metric), the ranked table and
the publication of the best model all read it. The window follows the run, not the Train fit:
a self-training run is several fits, a resumed trial continues its saved history, and a worker
group that Ray Train restarts re-reports epochs, which replace the ones it reported before.
"""

from __future__ import annotations

from swinls.search.space import SCORE, SearchSpace


class TrialScore:
    """The metric by run epoch, and its mean over the last `epochs` of them."""

    def __init__(self, metric: str, epochs: int, history: list[dict] = ()) -> None:
        self.metric, self.epochs = metric, epochs
        self.values: dict[int, float] = {}
        for metrics in history:
            self.add(metrics)

    def add(self, metrics: dict) -> float | None:
        """Record one epoch's metrics; the score as of that epoch."""
        epoch, value = metrics.get("epoch"), metrics.get(self.metric)
        if epoch is None or value is None:
            return None
        # a restarted worker group reports from its last checkpoint again: later epochs are void
        self.values = {e: v for e, v in self.values.items() if e < epoch}
        self.values[epoch] = float(value)
        return self.value()

    def value(self) -> float | None:
        window = [self.values[e] for e in sorted(self.values)[-self.epochs:]]
        return sum(window) / len(window) if window else None  # a NaN epoch makes the score NaN


def scored(metrics: dict, score: TrialScore, first: tuple[str, ...] = ()) -> dict:
    """The metrics with the trial's score added, the keys in `first` leading: Tune's live table
    shows the first four numbers of a result beside its own columns."""
    value = score.add(metrics)
    metrics = metrics if value is None else dict(metrics, **{SCORE: value})
    return {**{key: metrics[key] for key in first if key in metrics}, **metrics}


def live_columns(space: SearchSpace) -> tuple[str, ...]:
    """What a user watching the search wants per trial: its score, the metric it is ranked by, the
    one the scheduler stops by, and held-out F1 (when there is a held-out region)."""
    keys = (SCORE, space.metric, space.scheduler.get("metric", SCORE), "holdout_f1", "epoch")
    return tuple(dict.fromkeys(keys))
