"""MLflow child runs for the trials of a search or an ablation, and the parent's closing artifacts.

A trial gets `tracking` = (tracking URI, the parent's run id) from its job; its child run holds
its resolved config, its sampled values or grid cell as tags, every epoch's report, its final
checkpoint's URI and its curves. Without `tracking` every function here does nothing."""

from __future__ import annotations

from swinls import storage
from swinls.tracking.curves import CURVES_NAME
from swinls.tracking.mlflow_run import Tracker, flat_params


def trial_tracker(tracking: tuple[str, str] | None, experiment: str, run_name: str, config, tags: dict) -> Tracker | None:
    if tracking is None:
        return None
    from swinls.config import to_dict

    uri, parent = tracking
    return Tracker(uri, experiment, run_name, params=flat_params(to_dict(config)), parent_run_id=parent,
                   tags={"swinls.run_uri": storage.join(config.storage, config.name), **tags})


def end_trial(tracker: Tracker | None, result=None, failed: bool = False) -> None:
    """The trial's checkpoint and curves, then its status (FAILED when it raised)."""
    if tracker is None:
        return
    if failed or result is None:
        tracker.finish("FAILED")
        return
    tracker.tags(**{"swinls.checkpoint": result.checkpoint or ""})
    log_curves(tracker, result.run_uri)
    tracker.finish()


def log_curves(tracker: Tracker, run_uri: str) -> None:
    """The curves.png the run wrote when it ended (training.runner), as an artifact: not drawn twice."""
    uri = storage.join(run_uri, CURVES_NAME)
    if storage.exists(uri):
        tracker.artifact(CURVES_NAME, storage.read_bytes(uri))


def log_files(tracker: Tracker | None, uris: dict[str, str]) -> None:
    """Small outputs (a table's markdown and picture) as the parent run's artifacts."""
    if tracker is None:
        return
    for name, uri in uris.items():
        if name.endswith((".md", ".png", ".csv")) and storage.exists(uri):
            tracker.artifact(name, storage.read_bytes(uri))
