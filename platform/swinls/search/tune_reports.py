"""Rank 0's reports from Ray Train's controller to the Tune trial that runs the fit.

Ray's own bridge (`ray.tune.integration.ray_train.TuneReportCallback`, Ray 2.60) puts the
controller's reports on a queue actor that the trial actor's main thread reads, while the trial
function's own reports, and the last one Tune adds when the function returns, go through a
second, one-slot queue. A controller report still waiting in the first queue when the function
reports finds that slot taken, and both threads block on it for good: the trial never ends, nor
the search (seen on a three-node cluster: every trial finished, the job still waiting).

Here the controller's reports go onto a queue of ours, the fit runs in a helper thread, and the
trial function's own thread passes each report to Tune: every report takes Tune's one ordinary
path, in order, and the function returns only after the last of them.
"""

from __future__ import annotations

import threading
from typing import Callable, TypeVar

from ray.train import UserCallback

T = TypeVar("T")


class QueuedReports(UserCallback):
    """Ray Train callback (it runs in the controller): rank 0's metrics onto the trial's queue."""

    def __init__(self, queue) -> None:
        self.queue = queue

    def after_report(self, run_context, metrics: list[dict], checkpoint) -> None:
        if metrics:
            self.queue.put(dict(metrics[0]))  # waits for the queue actor: in it before the fit goes on


def fit_reporting_to_tune(fit: Callable[[UserCallback], T], transform: Callable[[dict], dict] = dict) -> T:
    """`fit(callback)` in a helper thread; each report the callback receives, through `transform`,
    goes to `ray.tune.report` from this thread. Returns what `fit` returns, raises what it raises."""
    import ray.tune
    from ray.util.queue import Empty

    from swinls.training.forwarding import queue_here

    queue = queue_here()
    outcome: dict = {}

    def run() -> None:
        try:
            outcome["result"] = fit(QueuedReports(queue))
        except BaseException as exc:  # noqa: BLE001 - raised again in the trial's thread
            outcome["error"] = exc

    thread = threading.Thread(target=run, name="swinls-train-fit", daemon=True)
    thread.start()
    try:
        while True:
            try:
                item = queue.get(timeout=0.2)
            except Empty:
                if thread.is_alive():
                    continue
                if queue.empty():  # every put of the fit happened before it ended
                    break
                continue
            ray.tune.report(transform(item))
        thread.join()
    finally:
        queue.shutdown()
    if "error" in outcome:
        raise outcome["error"]
    return outcome["result"]
