"""Optional MLflow tracking: one MLflow run fed from any thread, written by a thread of its own.

Off unless a tracking URI is given (`--mlflow URI`, or MLFLOW_TRACKING_URI in the environment).
Parameters are the resolved experiment config, flattened (`stage1.lr`); metrics are every numeric
field of each epoch's report, with the run's epoch as the step; artifacts are the small pictures
(curves, tables), while checkpoints and models stay in the platform's storage and the run holds
their URIs as tags. Calls are batched off the training thread, and a server that cannot be
reached costs one warning: the run goes on untracked, never slower, never failed by it.
"""

from __future__ import annotations

import os
import queue
import tempfile
import threading
import time
import warnings
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from swinls.errors import SwinLSError

STEP_KEYS = ("epoch", "phase_epoch", "phase_epochs", "epochs_total")  # the step and its parts, not metrics
BATCH_SECONDS = 2.0  # how long the writer gathers metrics before one log_batch
FINISH_SECONDS = 30.0  # the most a run's end waits for tracking
PARENT_TAG = "mlflow.parentRunId"


class TrackingError(SwinLSError, RuntimeError):
    pass


def tracking_uri(flag: str | None) -> str | None:
    return flag or os.environ.get("MLFLOW_TRACKING_URI") or None


def shown(uri: str) -> str:
    """A tracking URI fit for a log line: without user and password."""
    parts = urlsplit(uri)
    if parts.username or parts.password:
        host = parts.hostname + (f":{parts.port}" if parts.port else "")
        return urlunsplit((parts.scheme, host, parts.path, parts.query, parts.fragment))
    return uri


def client(uri: str):
    """An MlflowClient for `uri` whose requests to a server that is down cost seconds, not MLflow's
    minutes of retries (unless MLFLOW_HTTP_REQUEST_MAX_RETRIES and _TIMEOUT say otherwise)."""
    try:
        from mlflow import MlflowClient
    except ImportError:
        raise TrackingError("MLflow tracking needs the tracking extra: pip install -e '.[tracking]'") from None
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "2")
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_TIMEOUT", "10")
    return MlflowClient(tracking_uri=uri)


def flat_params(data: Any, prefix: str = "") -> dict[str, str]:
    """A nested config as MLflow parameters: `stage1.lr` → "0.001"."""
    if isinstance(data, dict):
        out = {}
        for key, value in data.items():
            out.update(flat_params(value, f"{prefix}{key}."))
        return out
    return {prefix[:-1]: str(data)[:6000]}


def epoch_metrics(entry: dict) -> dict[str, float]:
    return {key: float(value) for key, value in entry.items()
            if isinstance(value, (int, float)) and not isinstance(value, bool) and key not in STEP_KEYS}


class Tracker:
    """An MLflow run. `epoch`, `tags` and `artifact` queue work and return at once; `finish`
    waits (at most FINISH_SECONDS) for the queue to drain and ends the run."""

    def __init__(self, uri: str, experiment: str, run_name: str, *, params: dict | None = None,
                 tags: dict | None = None, parent_run_id: str | None = None) -> None:
        self.uri, self.run_id, self.failed = uri, None, False
        self._queue: queue.Queue = queue.Queue()
        self._client = client(uri)
        try:
            found = self._client.get_experiment_by_name(experiment)
            experiment_id = found.experiment_id if found else self._client.create_experiment(experiment)
            run_tags = dict(tags or {})
            if parent_run_id:
                run_tags[PARENT_TAG] = parent_run_id
            self.run_id = self._client.create_run(experiment_id, run_name=run_name, tags=run_tags).info.run_id
        except Exception as exc:  # noqa: BLE001 - any failure of the server or the network
            self._fail(exc)
            return
        if params:
            self._queue.put(("params", params))
        self._thread = threading.Thread(target=self._write, name="swinls-mlflow", daemon=True)
        self._thread.start()

    @property
    def active(self) -> bool:
        return self.run_id is not None and not self.failed

    def _fail(self, exc: Exception) -> None:
        if not self.failed:
            self.failed = True
            warnings.warn(f"MLflow tracking at {shown(self.uri)} stopped, the run goes on untracked: "
                          f"{type(exc).__name__}: {str(exc)[:300]}", stacklevel=2)

    def epoch(self, entry: dict) -> None:
        if self.active and entry.get("epoch") is not None:
            self._queue.put(("epoch", dict(entry)))

    def tags(self, **tags: str) -> None:
        if self.active:
            self._queue.put(("tags", tags))

    def artifact(self, name: str, data: bytes) -> None:
        if self.active:
            self._queue.put(("artifact", (name, data)))

    def finish(self, status: str = "FINISHED") -> None:
        if not self.active:
            return
        self._queue.put(("end", status))
        self._thread.join(FINISH_SECONDS)
        if self._thread.is_alive():
            warnings.warn(f"MLflow tracking at {shown(self.uri)} did not finish within {FINISH_SECONDS:.0f} s; "
                          "what was not written is left out", stacklevel=2)

    def _write(self) -> None:
        from mlflow.entities import Metric, Param, RunTag

        pending: list = []
        flushed = time.monotonic()
        while True:
            try:
                kind, value = self._queue.get(timeout=BATCH_SECONDS)
            except queue.Empty:
                kind, value = "flush", None
            try:
                if kind == "epoch":
                    stamp = int(time.time() * 1000)
                    pending += [Metric(k, v, stamp, int(value["epoch"])) for k, v in epoch_metrics(value).items()]
                    if time.monotonic() - flushed < BATCH_SECONDS:
                        continue
                flushed = time.monotonic()
                for start in range(0, len(pending), 1000):  # MLflow's most metrics in one batch
                    self._client.log_batch(self.run_id, metrics=pending[start:start + 1000])
                pending = []
                if kind == "params":
                    items = [Param(k, v) for k, v in value.items()]
                    for start in range(0, len(items), 100):
                        self._client.log_batch(self.run_id, params=items[start:start + 100])
                elif kind == "tags":
                    self._client.log_batch(self.run_id, tags=[RunTag(k, str(v)) for k, v in value.items()])
                elif kind == "artifact":
                    name, data = value
                    with tempfile.TemporaryDirectory() as tmp:
                        (Path(tmp) / name).write_bytes(data)
                        self._client.log_artifact(self.run_id, str(Path(tmp) / name))
                elif kind == "end":
                    self._client.set_terminated(self.run_id, status=value)
                    return
            except Exception as exc:  # noqa: BLE001 - tracking never fails the run
                self._fail(exc)
                return


def tracked(tracker: Tracker | None, on_epoch):
    """`on_epoch` that also queues each epoch's report for the tracker (when there is one)."""
    if tracker is None:
        return on_epoch

    def both(entry: dict) -> None:
        tracker.epoch(entry)
        on_epoch(entry)
    return both


def start_tracking(flag: str | None, experiment: str, run_name: str, **kwargs) -> Tracker | None:
    """A Tracker when a tracking URI is given, else None (tracking off)."""
    uri = tracking_uri(flag)
    if uri is None:
        return None
    return Tracker(uri, experiment, run_name, **kwargs)
