"""The search: Ray Tune with Optuna (define-by-run) and ASHA over epochs; each trial a Tune
function that drives its own Ray Train run (the Ray 2.60 pattern).

    <storage>/<experiment>/space.yaml         the search space, as given
    <storage>/<experiment>/tune/              Tune's experiment state (what --resume restores)
    <storage>/<experiment>/trials/<trial>/    each trial's run: config, checkpoints, pseudo-labels
    <storage>/<experiment>/optuna/study.db    the Optuna study (SQLite: Optuna's tools open it) + plots
    <storage>/<experiment>/best/              the best model and its card, published atomically
"""

from __future__ import annotations

from swinls.errors import SwinLSError

import functools
import hashlib
import json
import math
import os
from dataclasses import dataclass
from pathlib import Path

from swinls import storage
from swinls.search.attempts import error_line, new_attempt, train_once_per_attempt
from swinls.search.space import EPOCH, SCORE, SearchSpace, parse_space
from swinls.training.plan import all_phases, plan

STUDY_NAME = "study"
DRIVER_RESOURCE = "swinls_driver"
SEARCH_EXPERIMENT = "swinls-search"  # the MLflow experiment of searches and their trials


class ExperimentExists(SwinLSError, RuntimeError):
    pass


@dataclass
class SearchResult:
    experiment_uri: str
    trials: list[dict]  # ranked, best first
    best_uri: str | None
    best_model_uri: str | None


def experiment_uri(storage_uri: str, name: str) -> str:
    return storage.join(storage_uri, name)


def local_study_file(exp_uri: str) -> Path:
    """Optuna writes its SQLite study locally (the driver's disk); it is uploaded after each trial."""
    digest = hashlib.sha1(exp_uri.encode()).hexdigest()[:16]
    path = Path(os.environ.get("SWINLS_STUDY_CACHE", Path.home() / ".cache" / "swinls" / "studies")) / f"{digest}.db"
    path.parent.mkdir(parents=True, exist_ok=True)
    return path


def max_epochs(space: SearchSpace) -> int:
    phases = all_phases(plan(space.experiment({})))
    return max(1, sum(p.stage.epochs for p in phases if p.is_training))


def concurrency(space: SearchSpace) -> tuple[int, str]:
    """How many trials run at once, and why: `budget.max_concurrent`, or as many as fit the
    cluster it can scale to (search/capacity.py), keeping a CPU for Ray Data, with room for every
    trial's driver on the head when drivers are pinned there."""
    if space.max_concurrent:
        return space.max_concurrent, "the space's budget.max_concurrent"
    import ray

    from swinls.search.capacity import cluster_config_path, concurrency_for, driver_slots, max_resources

    path = cluster_config_path()
    largest = max_resources(path.read_text(), str(path)) if path else None
    r = space.run
    drivers = driver_slots([n["Resources"] for n in ray.nodes() if n.get("Alive")], space.driver_cpus, DRIVER_RESOURCE)
    return concurrency_for(ray.cluster_resources(), largest, drivers=drivers, num_workers=r.num_workers,
                           cpus_per_worker=r.cpus_per_worker, driver_cpus=space.driver_cpus, use_gpu=r.use_gpu,
                           gpus_per_worker=r.gpus_per_worker)


def trial_experiment(space: SearchSpace, sampled: dict, data_uri: str, exp_uri: str, trial_id: str):
    """The experiment config of one trial. Values are JSON-quoted: an override is read as YAML,
    where a trial id such as 21866242 would otherwise become a number."""
    where = {"data.uri": data_uri, "storage": storage.join(exp_uri, "trials"), "name": trial_id}
    return space.experiment(sampled, extra=[f"{key}={json.dumps(value)}" for key, value in where.items()])


def run_trial(config: dict, *, space: SearchSpace, data_uri: str, exp_uri: str, attempt: str,
              tracking: tuple[str, str] | None = None) -> None:
    """One trial, run by Tune: a whole experiment (both stages, self-training) on Ray Train.
    `attempt`: this invocation of the search (search/attempts.py). `tracking`: (MLflow URI, the
    search's run id): the trial is a child run of the search's."""
    import ray.tune

    from swinls.checkpoints import RunStore
    from swinls.search.score import TrialScore, live_columns, scored
    from swinls.search.tune_reports import fit_reporting_to_tune
    from swinls.tracking.trials import end_trial, trial_tracker
    from swinls.training import run_experiment
    from swinls.training.runner import run_uri_for

    trial_id = ray.tune.get_context().get_trial_id()
    experiment = trial_experiment(space, config, data_uri, exp_uri, trial_id)
    run_uri = run_uri_for(experiment)
    saved = RunStore(run_uri).latest() or {}  # a resumed trial's score continues its history
    score = TrialScore(space.metric, space.score_epochs, saved.get("history", []))
    tracker = trial_tracker(tracking, SEARCH_EXPERIMENT, trial_id, experiment,
                            {"swinls.job": "tune trial", **{f"swinls.sampled.{k}": str(v) for k, v in config.items()}})

    def report(metrics: dict) -> dict:
        if tracker:
            tracker.epoch(metrics)
        return scored(metrics, score, live_columns(space))

    try:
        result = train_once_per_attempt(run_uri, attempt, lambda: fit_reporting_to_tune(
            lambda callback: run_experiment(experiment, callbacks=[callback]), report))
    except BaseException:
        end_trial(tracker, failed=True)
        raise
    end_trial(tracker, result)
    if result.history:
        # The final epoch once more, from here: the run may have finished before an interrupted
        # search was resumed, or its worker may have written the last checkpoint and died with its
        # node before reporting it, and Tune would take a finished trial for one stopped early
        # (never published, PRUNED in the study). A repeated epoch replaces itself everywhere.
        final = TrialScore(space.metric, space.score_epochs, result.history[:-1])
        ray.tune.report(dict(scored(result.final, final, live_columns(space)), checkpoint=result.checkpoint))


def check_study(study_file: Path, exp_uri: str) -> None:
    """Tune's restore would log a searcher that cannot load its study and then wait forever with
    no trial; say what is missing instead."""
    import optuna

    missing = f"{exp_uri}: cannot resume, its Optuna study ({storage.join(exp_uri, 'optuna', 'study.db')})"
    if not study_file.exists():
        raise FileNotFoundError(f"{missing} is not in storage")
    try:
        optuna.load_study(study_name=STUDY_NAME, storage=f"sqlite:///{study_file}")
    except KeyError as exc:
        raise FileNotFoundError(f"{missing} holds no study named {STUDY_NAME!r}") from exc


def tune_storage(exp_uri: str):
    """Where Tune keeps an experiment's state: `<experiment>/tune`, on the experiment's filesystem."""
    import pyarrow.fs as pafs

    target = storage.join(exp_uri, "tune")
    fs, path = storage.filesystem(target)
    return path, (pafs.PyFileSystem(pafs.FSSpecHandler(fs)) if storage.is_s3(target) else None)


def make_sampler(space: SearchSpace, seed: int):
    import optuna

    if space.sampler == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    return optuna.samplers.TPESampler(seed=seed, n_startup_trials=space.startup_trials)


def run_search(space_text: str, *, data_uri: str, storage_uri: str, name: str, resume: bool = False,
               space_source: str = "search space", seed: int = 0, verbose: int = 1,
               stop_at: float | None = None, tracking: tuple[str, str] | None = None) -> SearchResult:
    """Run (or with `resume`, continue) a search. `stop_at`: end it early once a complete trial
    reaches this value of the metric. `tracking`: (MLflow URI, the search's run id)."""
    import optuna
    import ray.tune
    from ray.tune.schedulers import ASHAScheduler

    from swinls.search.callbacks import EpochLines, StopAtTarget, StudyAndBestCallback, WaitingNotice, upload_study
    from swinls.training.progress import flush_print
    from swinls.search.optuna_search import PruneAwareOptunaSearch

    space = parse_space(space_text, space_source)  # every error before any trial starts
    exp_uri = experiment_uri(storage_uri, name)
    tune_path, tune_fs = tune_storage(exp_uri)
    study_file = local_study_file(exp_uri)
    driver = {"CPU": space.driver_cpus}
    if ray.cluster_resources().get(DRIVER_RESOURCE):  # cluster.yaml marks the head: drivers stay off spot workers
        driver[DRIVER_RESOURCE] = 1
    trainable = ray.tune.with_resources(
        ray.tune.with_parameters(run_trial, space=space, data_uri=data_uri, exp_uri=exp_uri, attempt=new_attempt(),
                                 tracking=tracking), driver)
    space_uri = storage.join(exp_uri, "space.yaml")
    if resume:
        if not storage.exists(space_uri):
            raise FileNotFoundError(f"{exp_uri}: no experiment to resume")
        if not study_file.exists() and storage.exists(storage.join(exp_uri, "optuna", "study.db")):
            study_file.write_bytes(storage.read_bytes(storage.join(exp_uri, "optuna", "study.db")))
        check_study(study_file, exp_uri)
        tuner = ray.tune.Tuner.restore(f"{tune_path}/{name}", trainable=trainable, resume_unfinished=True, restart_errored=True,
                                       storage_filesystem=tune_fs)
    else:
        if storage.exists(space_uri):
            raise ExperimentExists(f"{exp_uri} already holds an experiment; resume it with --resume or choose another --name")
        storage.write_bytes_atomic(space_uri, space_text.encode())
        study_file.unlink(missing_ok=True)
        sampler = make_sampler(space, seed)
        searcher = PruneAwareOptunaSearch(space=space.define_by_run, metric=SCORE, mode=space.mode,
                                          on_save=functools.partial(upload_study, exp_uri, str(study_file)),
                                          storage=optuna.storages.RDBStorage(f"sqlite:///{study_file}"),
                                          study_name=STUDY_NAME, sampler=sampler)
        scheduler = None
        if space.scheduler.get("type", "asha") == "asha":
            scheduler = ASHAScheduler(time_attr=EPOCH, max_t=max_epochs(space),
                                      metric=space.scheduler["metric"], mode=space.scheduler["mode"],
                                      grace_period=int(space.scheduler.get("grace_period", 2)),
                                      reduction_factor=float(space.scheduler.get("reduction_factor", 2)))
        objective = {"metric": space.metric, "scope": space.scope, "mode": space.mode}
        callback = StudyAndBestCallback(exp_uri, name, objective, str(study_file))
        r = space.run
        waiting = WaitingNotice({"CPU": r.cpus_per_worker, "GPU": r.gpus_per_worker if r.use_gpu else 0}, r.num_workers,
                                flush_print)
        at_once, why = concurrency(space)
        if verbose:
            flush_print(f"trials at once: up to {at_once} ({why})")
        tuner = ray.tune.Tuner(
            trainable,
            # metric and mode live in the searcher and the scheduler, which may stop trials by another metric
            tune_config=ray.tune.TuneConfig(search_alg=searcher, scheduler=scheduler,
                                            num_samples=space.samples, max_concurrent_trials=at_once),
            run_config=ray.tune.RunConfig(name=name, storage_path=tune_path, storage_filesystem=tune_fs,
                                          callbacks=[callback] + ([EpochLines(flush_print), waiting] if verbose else []), verbose=verbose,
                                          stop=StopAtTarget(SCORE, space.mode, stop_at) if stop_at is not None else None,
                                          failure_config=ray.tune.FailureConfig(max_failures=1)),
        )
    results = tuner.fit()
    from swinls.search.callbacks import finish_study
    from swinls.tracking.overviews import write_trials

    finish_study(exp_uri, str(study_file))
    trials = rank_trials(results, space)
    write_trials(exp_uri, [t["trial"] for t in trials], space.metric)
    best_uri = storage.join(exp_uri, "best")
    try:
        best_model = storage.join(storage.latest_version(best_uri)["uri"], "model.pt")
    except FileNotFoundError:  # no trial finished its whole run
        best_model = None
    return SearchResult(exp_uri, trials, best_uri if best_model else None, best_model)


def rank_trials(results, space: SearchSpace) -> list[dict]:
    """Best first by score (`value`); `final` is the metric at the trial's last epoch."""
    from swinls.search.score import live_columns

    rows = []
    for result in results:
        last = result.metrics or {}
        status = "error" if result.error else ("complete" if last.get("run_complete") else "pruned")
        params = {k: v for k, v in (result.config or {}).items()}
        rows.append({"trial": last.get("trial_id") or Path(str(result.path)).name, "status": status,
                     "value": last.get(SCORE), "final": last.get(space.metric), "epochs": last.get(EPOCH), "params": params,
                     # what the live table showed beside the score, at the trial's last epoch
                     "also": {key: last[key] for key in live_columns(space)
                              if key not in (SCORE, EPOCH, space.metric) and key in last},
                     "started": last.get("timestamp", 0) - last.get("time_total_s", 0),
                     "error": error_line(result.error)})
    sign = -1 if space.mode == "max" else 1

    def key(row):
        value = row["value"]
        missing = value is None or (isinstance(value, float) and math.isnan(value))
        return (row["status"] != "complete", missing, sign * (value or 0.0))

    return sorted(rows, key=key)
