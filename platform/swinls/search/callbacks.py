"""Tune callbacks of the search: keep the Optuna study in storage, publish the best model."""

from __future__ import annotations

import logging
import math
import os
import tempfile
import time
import warnings
from pathlib import Path

import ray.tune

from swinls import storage
from swinls.published import publish_best
from swinls.search.space import EPOCH, SCORE
from swinls.training.progress import LiveLines
from swinls.training.report import epoch_table_header
from swinls.work_estimate import duration

log = logging.getLogger(__name__)


def upload_study(exp_uri: str, study_file: str) -> None:
    if Path(study_file).exists():
        storage.put_file_atomic(study_file, storage.join(exp_uri, "optuna", "study.db"))


def finish_study(exp_uri: str, study_file: str) -> None:
    """The study and Optuna's optimisation-history and parameter-importance plots, as PNG."""
    upload_study(exp_uri, study_file)
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import optuna
    from optuna.visualization import matplotlib as ov

    study = optuna.load_study(study_name="study", storage=f"sqlite:///{study_file}")
    with tempfile.TemporaryDirectory() as tmp:
        for name, plot in (("optimization_history.png", ov.plot_optimization_history),
                           ("param_importances.png", ov.plot_param_importances)):
            try:
                with warnings.catch_warnings():  # Optuna marks its matplotlib backend experimental
                    warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
                    # a conditional parameter seen in one trial: true of any small search, and the
                    # plot is a picture to look at, not a figure anything is decided by
                    warnings.filterwarnings("ignore", "Some regimes for parameter", UserWarning)
                    axes = plot(study)
            except (ValueError, RuntimeError) as exc:  # e.g. importances need two finished trials
                log.warning("no %s: %s", name, exc)
                continue
            figure = axes.figure if hasattr(axes, "figure") else axes[0].figure
            figure.savefig(Path(tmp) / name, dpi=100, bbox_inches="tight")
            plt.close(figure)
            storage.put_file_atomic(Path(tmp) / name, storage.join(exp_uri, "optuna", name))


class StudyAndBestCallback(ray.tune.Callback):
    """After each trial: the study goes to storage; a complete trial that beats the published best
    becomes the new best (model + card, pointer flipped last)."""

    def __init__(self, exp_uri: str, experiment: str, objective: dict, study_file: str) -> None:
        """`objective`: the search's metric, scope and mode; trials are compared by their score."""
        self.exp_uri, self.experiment, self.objective = exp_uri, experiment, objective
        self.mode = objective["mode"]
        self.study_file = study_file

    def _current_best(self) -> float | None:
        try:
            pointer = storage.latest_version(storage.join(self.exp_uri, "best"))
        except FileNotFoundError:
            return None
        return pointer.get("metadata", {}).get("objective", {}).get("value")

    def _better(self, value: float, best: float | None) -> bool:
        if value is None or (isinstance(value, float) and math.isnan(value)):
            return False
        return best is None or (value > best if self.mode == "max" else value < best)

    def on_trial_complete(self, iteration, trials, trial, **info) -> None:
        upload_study(self.exp_uri, self.study_file)
        result = trial.last_result or {}
        value = result.get(SCORE)
        if not result.get("run_complete") or not result.get("checkpoint"):
            return  # stopped early or failed: not a finished model
        if self._better(value, self._current_best()):
            objective = dict(self.objective, value=value, final=result.get(self.objective["metric"]))
            version = publish_best(storage.join(self.exp_uri, "best"), result["checkpoint"], experiment=self.experiment,
                                   trial=trial.trial_id, objective=objective)
            log.info("trial %s is the new best (%s %s = %.4f): version %s", trial.trial_id, self.objective["scope"],
                     self.objective["metric"], value, version)


class StopAtTarget(ray.tune.Stopper):
    """Ends the whole search once a complete trial reaches `target` (e.g. "F1 0.7 is enough")."""

    def __init__(self, metric: str, mode: str, target: float) -> None:
        self.metric, self.mode, self.target = metric, mode, target
        self.reached = False

    def __call__(self, trial_id: str, result: dict) -> bool:
        value = result.get(self.metric)
        if result.get("run_complete") and value is not None and not math.isnan(value):
            self.reached |= value >= self.target if self.mode == "max" else value <= self.target
        return False

    def stop_all(self) -> bool:
        return self.reached


class EpochLines(ray.tune.Callback):
    """One line per trial epoch on the driver (what `ray job logs` shows): the trial, then the
    epoch table's row with the trial's own time left."""

    def __init__(self, printer=print) -> None:
        self.printer = printer
        self.lines: dict[str, LiveLines] = {}

    def on_trial_result(self, iteration, trials, trial, result, **info) -> None:
        if "phase_epoch" not in result:
            return
        if not self.lines:
            self.printer(f"{'trial':<24} {epoch_table_header(live=True)}")
        label = str(trial.config.get("trial") or trial.trial_id)
        lines = self.lines.setdefault(trial.trial_id, LiveLines(self.printer, prefix=f"{label[:24]:<24} "))
        lines(result)


WAIT_NOTICE_ENV = "SWINLS_WAIT_NOTICE_S"


class WaitingNotice(ray.tune.Callback):
    """Says so while a trial waits for resources instead of leaving the log silent: a trial that
    cannot be placed at all, whose Ray Train workers have not started a first epoch, or that has
    reported epochs and then gone quiet for much longer than an epoch takes (its workers lost with
    a node and waiting to be placed again). On an autoscaling cluster that is nodes being added
    (minutes); elsewhere, resources held by others."""

    STALLED_EPOCHS = 3  # quiet for this many of its own epochs: not a slow epoch any more

    def __init__(self, worker: dict[str, float], workers: int, printer=print, after_s: float | None = None,
                 every_s: float = 300.0) -> None:
        self.worker, self.workers, self.printer, self.every_s = worker, workers, printer, every_s
        self.after_s = float(os.environ.get(WAIT_NOTICE_ENV, 60)) if after_s is None else after_s
        self.waiting_since: dict[tuple, float] = {}
        self.said: dict[tuple, float] = {}
        self.last_result_at: dict[str, float] = {}
        self.started_at: dict[str, float] = {}
        self.epoch_s: dict[str, float] = {}

    def on_trial_start(self, iteration, trials, trial, **info) -> None:
        self.started_at.setdefault(trial.trial_id, time.monotonic())

    def on_trial_result(self, iteration, trials, trial, result, **info) -> None:
        now = time.monotonic()
        # the first epoch is timed from the trial's start (start-up included: a longer wait, never
        # a false one); an epoch slower than `after_s` would otherwise read as a lost node at once
        since = self.last_result_at.get(trial.trial_id, self.started_at.get(trial.trial_id))
        if since is not None:
            self.epoch_s[trial.trial_id] = now - since
        self.last_result_at[trial.trial_id] = now

    def on_step_begin(self, iteration, trials, **info) -> None:
        now = time.monotonic()
        running = [t for t in trials if t.status == "RUNNING"]
        waiting = [t for t in running if not t.last_result] or ([] if running else [t for t in trials if t.status == "PENDING"][:1])
        keys = {(t.trial_id, t.status): t for t in waiting}  # placed, then waiting for workers: two waits
        for key, trial in keys.items():
            self._maybe_say(key, self.waiting_since.setdefault(key, now), now, trial)
        for trial in running:
            last = self.last_result_at.get(trial.trial_id)
            if last is None or not trial.last_result:
                continue
            quiet_after = max(self.after_s, self.STALLED_EPOCHS * self.epoch_s.get(trial.trial_id, 0.0))
            key = (trial.trial_id, "stalled", last)  # a new epoch ends this wait
            if now - last >= quiet_after:
                keys[key] = trial
                self._maybe_say(key, last, now, trial, after_s=0.0)
        for key in set(self.waiting_since) - set(keys):
            self.waiting_since.pop(key)

    def _maybe_say(self, key: tuple, since: float, now: float, trial, after_s: float | None = None) -> None:
        self.waiting_since[key] = since
        if now - since >= (self.after_s if after_s is None else after_s) and now - self.said.get(key, -1e18) >= self.every_s:
            self.said[key] = now
            self.printer(self._line(trial, now - since, stalled=key[1] == "stalled"))

    def _line(self, trial, seconds: float, stalled: bool = False) -> str:
        from swinls.search.capacity import cluster_config_path

        free = {k: v for k, v in ray.available_resources().items() if k in ("CPU", "GPU")}
        asks = ", ".join(f"{v:g} {k}" for k, v in self.worker.items() if v)
        if stalled:
            epoch = (trial.last_result or {}).get(EPOCH)
            usual = self.epoch_s.get(trial.trial_id)
            what = (f"no epoch since epoch {epoch}" + (f" (an epoch took {duration(usual)})" if usual else "")
                    + ": its Ray Train workers are restarting, or waiting for a node to replace one that was lost")
        elif trial.status == "RUNNING":
            what = "its Ray Train workers have not started"
        else:
            what = "no trial could be placed"
        if cluster_config_path():
            scaling = "; the cluster's autoscaler can add nodes, which takes minutes"
        elif trial.status == "RUNNING" and all(free.get(k, 0) >= v * self.workers for k, v in self.worker.items() if v):
            # room for its workers: not a wait for other work, they are (re)starting
            scaling = f"; there is room for them now, so they are {'restarting' if stalled else 'starting'}"
        else:
            scaling = "; nothing will add nodes here, so it waits for other work to release them"
        return (f"waiting {duration(seconds)}: {what} (trial {trial.config.get('trial') or trial.trial_id}; "
                f"{self.workers} worker(s) of {asks} each; free now: "
                f"{', '.join(f'{v:g} {k}' for k, v in free.items()) or 'nothing'}){scaling}")
