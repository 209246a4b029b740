"""Rank 0's per-epoch report, from Ray Train's controller to the driver.

Under Ray the epochs run in Train workers whose output does not reach the driver (the jobs start
Ray with `log_to_driver=False`, so that `ray job logs` is not Ray's logging of every worker).
Rank 0's report reaches Ray Train's controller; `EpochForwarder`, a Train callback there, puts it
on a queue (a small Ray actor) that a thread of the driver prints from.

A report can be lost where the epoch is not: a worker that dies after its rank 0 wrote the
epoch's checkpoint and before every rank reported it (Train's report is collective), or a fit
that ends before the controller passed on its last report. The run's checkpoint history has
every epoch, so `InOrderEpochs` fills such a gap from it, in order, as soon as a later epoch
arrives, and at the end of the fit.
"""

from __future__ import annotations

import contextlib
import threading

from ray.train import UserCallback

from swinls.training.progress import line_fields


class EpochForwarder(UserCallback):
    """Ray Train callback (it runs in the controller): rank 0's report onto the driver's queue."""

    def __init__(self, queue) -> None:
        self.queue = queue

    def after_report(self, run_context, metrics: list[dict], checkpoint) -> None:
        if metrics and metrics[0]:
            try:
                self.queue.put_nowait(line_fields(metrics[0]))
            except Exception:  # noqa: BLE001 - a line lost is not worth a training run
                pass


class InOrderEpochs:
    """Passes each forwarded epoch on, first any epoch the run recorded and no report brought
    (`history()`: the run's checkpoint history so far). A repeated epoch (a restarted attempt)
    passes as it comes."""

    def __init__(self, on_epoch, history) -> None:
        self.on_epoch, self.history = on_epoch, history
        self.last = max((h.get("epoch", 0) for h in self._recorded()), default=0)

    def _recorded(self) -> list[dict]:
        try:
            return list(self.history())
        except Exception:  # noqa: BLE001 - storage unreachable: the lines that came still print
            return []

    def __call__(self, item: dict) -> None:
        epoch = item.get("epoch")
        if isinstance(epoch, int) and epoch > self.last + 1:
            self._fill(before=epoch)
        self.on_epoch(item)
        if isinstance(epoch, int):
            self.last = max(self.last, epoch)

    def finish(self) -> None:
        self._fill()

    def _fill(self, before: int | None = None) -> None:
        for entry in self._recorded():
            if entry.get("epoch", 0) > self.last and (before is None or entry["epoch"] < before):
                self.on_epoch(line_fields(entry))
                self.last = entry["epoch"]


def queue_here():
    """A Ray queue actor on this process's node, holding no CPU: on a worker node that goes (a
    spot reclaim), the queue would go with it. The affinity is hard: Ray 2.60 puts a soft one's
    zero-CPU actor on another node about half the time, and a trial lost its queue, then itself,
    to the reclaim of a node it did not train on. Hard is safe: this node is alive, it runs us."""
    import ray
    from ray.util.queue import Queue
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    here = NodeAffinitySchedulingStrategy(ray.get_runtime_context().get_node_id(), soft=False)
    return Queue(actor_options={"num_cpus": 0, "scheduling_strategy": here})


@contextlib.contextmanager
def forwarded_epochs(on_epoch, history=lambda: ()):
    """Yields a Train callback whose reports reach `on_epoch` in this process, from a thread,
    until the block ends (every line queued by then is printed, then any epoch of `history()`
    that no report brought)."""
    from ray.util.queue import Empty

    queue = queue_here()
    stop = threading.Event()
    on_epoch = InOrderEpochs(on_epoch, history)

    def drain() -> None:
        while True:
            try:
                item = queue.get(timeout=0.5)
            except Empty:
                if stop.is_set():
                    return
                continue
            except Exception:  # noqa: BLE001 - the queue is gone: no more lines, the run goes on
                return
            on_epoch(item)

    thread = threading.Thread(target=drain, name="swinls-epoch-lines", daemon=True)
    thread.start()
    try:
        yield EpochForwarder(queue)
    finally:
        stop.set()
        thread.join(timeout=30)
        queue.shutdown()
        on_epoch.finish()
