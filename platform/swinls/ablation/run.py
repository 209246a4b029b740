"""Running an ablation: its grid as one Ray Tune experiment, then its outputs.

    <storage>/<name>/ablation.yaml     what was asked: the shared settings, the grids of rows × models × seeds
    <storage>/<name>/trials/<trial>/   each trial's run (config, checkpoints, metric history)
    <storage>/<name>/tune/             Tune's own state
    <storage>/<name>/trials.csv, table.md, table.png

An ablation is its shared part — table, settings, `--set` overrides — and the grids asked under
its name. A rerun with the same name must have the same shared part (else it is
refused, naming the difference); it may ask for more rows, models or seeds, which add to the
grid (SwinLS today, U-Net tomorrow, one table). Every run trains the whole grid, where each
finished trial reports its saved last epoch without training, and writes the outputs for it. The
scaling table's target F1s are not part of it: they are read off the trials' histories, so a rerun
with other targets only rewrites the outputs.
"""

from __future__ import annotations

import difflib
import time
from dataclasses import dataclass, field

import yaml
from ray.tune import Callback

from swinls import storage
from swinls.ablation.report import Outputs, write_outputs
from swinls.ablation.tables import DEFAULT_TARGET_F1S, AblationError, get_table, grid, select_rows
from swinls.ablation.trial import run_ablation_trial, trains_in_actor, trial_config, trial_name
from swinls.config import ConfigError
from swinls.errors import AllTrialsFailed, NothingToRankOn
from swinls.metrics import undefined_everywhere
from swinls.search.callbacks import EpochLines, WaitingNotice
from swinls.search.attempts import error_line, new_attempt
from swinls.search.experiment import tune_storage
from swinls.training.progress import flush_print


# --smoke-test: one epoch per stage and the fastest models (nano, which is not a Swin; a ResNet-18
# for the baselines): it checks that a table runs, not what it says; on the built-in synthetic
# data, two training regions
SMOKE_OVERRIDES = ("stage1.epochs=1", "stage1.warmup_epochs=0", "stage2.epochs=1", "selftrain.stage1.epochs=1",
                   "selftrain.stage2.epochs=1", "run.checkpoint_every=1", "model.size=nano", "model.encoder=resnet18")
SMOKE_SYNTHETIC_REGIONS = ("steep-forest", "terraced-farmland")


def holdout_regions(choice: str, *, synthetic: bool) -> tuple[str, ...]:
    """`--holdout`: `auto` holds out the region the built-in synthetic data is made to be held
    out (volcanic-arc), and none on a dataset of your own (one region, like Landslide4Sense, has
    none to spare); `none`; or region names, comma-separated."""
    from swinls.synthetic import DEFAULT_HOLDOUT

    if choice == "auto":
        return (DEFAULT_HOLDOUT,) if synthetic else ()
    if choice == "none":
        return ()
    return tuple(r.strip() for r in choice.split(",") if r.strip())


@dataclass
class AblationRequest:
    table: str
    settings: dict  # the shared experiment config (the YAML), as plain data
    overrides: list[str] = field(default_factory=list)  # `--set`: after the table's recipe, before its rows
    seeds: int = 3
    rows: list[str] = field(default_factory=list)  # empty: every row
    models: list[str] = field(default_factory=list)  # empty: the table's models
    target_f1s: tuple[float, ...] = DEFAULT_TARGET_F1S  # the scaling table's "time to a fixed valid F1", a column each
    max_concurrent: int = 0  # 0: as many as the cluster fits

    def shared(self) -> dict:
        """What every trial under one name must agree on."""
        return {"table": self.table, "settings": self.settings, "overrides": list(self.overrides)}

    def asked(self, rows, models) -> dict:
        return {"rows": [r.name for r in rows], "models": list(models), "seeds": self.seeds}


GRID_KEYS = ("rows", "models", "seeds")


def merge_request(uri: str, shared: dict, asked: dict) -> list[dict]:
    """The grids asked under this name, this one added; the saved record (`ablation.yaml`) is
    written atomically, and only a request with the same shared part may add to it."""
    grids = [asked]
    if storage.exists(uri):
        saved = yaml.safe_load(storage.read_bytes(uri).decode()) or {}
        saved_grids = grids_of(saved)
        for key in ("grids", *GRID_KEYS):
            saved.pop(key, None)
        saved.setdefault("overrides", [])
        saved.pop("target_f1", None)  # records from when the target was part of the request; it is the report's now
        if saved != shared:
            old, new = (yaml.safe_dump(d, sort_keys=True).splitlines() for d in (saved, shared))
            diff = "\n".join(difflib.unified_diff(old, new, "saved", "given", lineterm="", n=0))
            raise AblationError(f"{uri} holds an ablation with other shared settings; rerun it with the same "
                                f"table, --config and --set (rows, models and seeds may grow), "
                                f"or choose another --name:\n{diff}")
        if asked in saved_grids:
            return saved_grids
        grids = saved_grids + [asked]
    storage.write_bytes_atomic(uri, yaml.safe_dump({**shared, "grids": grids}, sort_keys=False).encode())
    return grids


def grids_of(saved: dict) -> list[dict]:
    """The grids an `ablation.yaml` record holds (one written before grids could grow holds its
    grid at the top level)."""
    return saved.get("grids") or [{k: saved[k] for k in GRID_KEYS if k in saved}]


def held_by(table, trials: list[dict]) -> tuple[tuple, tuple[str, ...]]:
    """The table's rows and models that `trials` hold, in the table's order."""
    rows = tuple(r for r in table.rows if any(t["row"] == r.name for t in trials))
    models = tuple(m for m in table.models if any(t["model"] == m for t in trials))
    return rows, models


def union_grid(table, grids: list[dict]) -> list[dict]:
    """Every trial of the grids asked, once, in the table's order of rows and models, then seeds."""
    keys = {(t["row"], t["model"], t["seed"]) for g in grids if g["rows"]  # [] is no row (scaling on a small cluster)
            for t in grid(table, select_rows(table, g["rows"]), g["seeds"], tuple(g["models"]))}
    row_order = {r.name: i for i, r in enumerate(table.rows)}
    model_order = {m: i for i, m in enumerate(table.models)}
    ordered = sorted(keys, key=lambda k: (row_order[k[0]], model_order[k[1]], k[2]))
    return [{"row": r, "model": m, "seed": s} for r, m, s in ordered]


def _key(trial: dict) -> tuple[str, str, int]:
    return trial["row"], trial["model"], trial["seed"]


def _trial_configs(table, request: AblationRequest, exp_uri: str, trials: list[dict]) -> dict:
    configs = {}
    for trial in trials:
        try:
            configs[_key(trial)] = trial_config(
                table, request.settings, exp_uri, trial["row"], trial["model"], trial["seed"], request.overrides)
        except (ConfigError, ValueError) as exc:
            raise AblationError(f"table {table.name}, row {trial['row']} ({trial['model']}): {exc}") from None
    return configs


def check_request(request: AblationRequest):
    """The table, rows, models and every trial's config checked, before any data or Ray; returns
    the trials' configs, the run settings (resources) of the one that needs the most first."""
    table = get_table(request.table)
    trials = grid(table, select_rows(table, request.rows), request.seeds, tuple(request.models) or table.models)
    configs = _trial_configs(table, request, "checked", trials)
    if not configs:
        raise AblationError(f"table {table.name}: the rows and models asked make no trial")
    return sorted(configs.values(), key=lambda c: (c.run.use_gpu, c.run.num_workers * c.run.gpus_per_worker,
                                                   c.run.num_workers), reverse=True)


def _trial_resources(table, config) -> dict:
    """Training in the Tune actor: it holds the worker's CPUs and GPU share; otherwise the actor
    only drives a Ray Train fit whose workers ask for their own."""
    run = config.run
    if not trains_in_actor(table, config):
        return {"CPU": 1}
    resources = {"CPU": run.cpus_per_worker}
    if run.use_gpu:
        resources["GPU"] = run.gpus_per_worker
    return resources


def _fits_cluster(config, cluster: dict) -> bool:
    run = config.run
    if run.use_gpu:
        return run.num_workers * run.gpus_per_worker <= cluster.get("GPU", 0) + 1e-9
    return run.num_workers * run.cpus_per_worker + 1 <= cluster.get("CPU", 0)


def run_ablation(request: AblationRequest, *, storage_uri: str, name: str, verbose: int = 1,
                 local_cores: int | None = None, tracking: tuple[str, str] | None = None) -> Outputs:
    """`tracking`: (MLflow URI, the table's run id): each trial a child run of it."""
    import ray
    import ray.tune

    table = get_table(request.table)
    rows = select_rows(table, request.rows)
    models = tuple(request.models) or table.models
    trials = grid(table, rows, request.seeds, models)
    exp_uri = storage.join(storage_uri, name)
    configs = _trial_configs(table, request, exp_uri, trials)  # every trial's config is checked before any starts
    if table.name == "scaling":  # as many workers as the cluster has, no more
        cluster = ray.cluster_resources()
        keep = {key for key, config in configs.items() if _fits_cluster(config, cluster)}
        dropped = sorted({key[0] for key in configs} - {key[0] for key in keep})
        if dropped and verbose:
            print(f"scaling: {', '.join(dropped)} need more than this cluster has; left out")
        rows = tuple(r for r in rows if r.name not in dropped)
        trials = [t for t in trials if _key(t) in keep]
    grids = merge_request(storage.join(exp_uri, "ablation.yaml"), request.shared(), request.asked(rows, models))
    trials = union_grid(table, grids)  # with what earlier runs under this name asked
    configs.update(_trial_configs(table, request, exp_uri, [t for t in trials if _key(t) not in configs]))
    if table.name == "scaling":  # earlier grids' rows too
        trials = [t for t in trials if _fits_cluster(configs[_key(t)], cluster)]
    configs = {_key(t): configs[_key(t)] for t in trials}
    rows, models = held_by(table, trials)

    per_trial = {trial_name(*key): _trial_resources(table, c) for key, c in configs.items()}
    trainable = ray.tune.with_resources(
        ray.tune.with_parameters(run_ablation_trial, table=table, settings=request.settings, exp_uri=exp_uri,
                                 user=list(request.overrides), attempt=new_attempt(), tracking=tracking),
        lambda params: per_trial[params["trial"]])
    concurrency = request.max_concurrent or _concurrency(list(per_trial.values()), local_cores)
    tune_path, tune_fs = tune_storage(exp_uri)
    tuner = ray.tune.Tuner(
        trainable,
        param_space={"trial": ray.tune.grid_search([trial_name(t["row"], t["model"], t["seed"]) for t in trials])},
        tune_config=ray.tune.TuneConfig(max_concurrent_trials=concurrency),
        run_config=ray.tune.RunConfig(name=f"grid-{time.strftime('%Y%m%d-%H%M%S')}", storage_path=tune_path,
                                      storage_filesystem=tune_fs, verbose=0,
                                      callbacks=[Progress(len(trials), verbose)] + (_live(configs) if verbose else []),
                                      failure_config=ray.tune.FailureConfig(max_failures=1)),
    )
    results = tuner.fit()
    outputs = write_outputs(table, rows, trials, models, exp_uri, tuple(request.target_f1s))
    errors = [error_line(result.error) for result in results if result.error]
    if errors and len(errors) == len(results):
        raise AllTrialsFailed(f"all {len(errors)} trials failed: {errors[0]} (outputs so far: {outputs.uris.get('table.md', exp_uri)})")
    check_rankable(outputs.records, outputs.uris.get("table.md", exp_uri))
    return outputs


def report_ablation(table_name: str, *, storage_uri: str, name: str,
                    target_f1s: tuple[float, ...] = DEFAULT_TARGET_F1S) -> Outputs:
    """The outputs of what finished so far under `name` (`--report-only`): nothing trains and no Ray
    starts, so a long ablation can be read while it runs, or after it was stopped; an unfinished
    trial is in trials.csv as `incomplete` or `missing` and in no mean."""
    table = get_table(table_name)
    exp_uri = storage.join(storage_uri, name)
    uri = storage.join(exp_uri, "ablation.yaml")
    if not storage.exists(uri):
        raise AblationError(f"{uri}: no ablation has run under --name {name} here, so there is nothing to report")
    saved = yaml.safe_load(storage.read_bytes(uri).decode()) or {}
    if saved.get("table") != table.name:
        raise AblationError(f"{uri} holds table {saved.get('table')!r}, not {table.name!r}")
    trials = union_grid(table, grids_of(saved))
    rows, models = held_by(table, trials)
    return write_outputs(table, rows, trials, models, exp_uri, target_f1s)


def _live(configs: dict) -> list:
    """The driver's lines while trials run: each epoch, and a notice while trials wait to start."""
    run = max((c.run for c in configs.values()), key=lambda r: (r.use_gpu, r.num_workers * r.cpus_per_worker))
    worker = {"CPU": run.cpus_per_worker, "GPU": run.gpus_per_worker if run.use_gpu else 0}
    return [EpochLines(flush_print), WaitingNotice(worker, run.num_workers, flush_print)]


def check_rankable(records: list[dict], where: str) -> None:
    """Rows are compared by valid F1: when no finished trial has one, the table compares nothing."""
    unrankable = undefined_everywhere("valid_f1", [r.get("valid_f1") for r in records if r["status"] == "complete"])
    if unrankable:
        raise NothingToRankOn(f"{unrankable} (outputs: {where})")


class Progress(Callback):
    """One line per finished trial instead of Tune's tables of every metric."""

    def __init__(self, total: int, verbose: int = 1) -> None:
        self.total, self.verbose, self.done = total, verbose, 0
        self.started = time.perf_counter()

    def on_trial_complete(self, iteration, trials, trial, **info):
        self._line(trial, "done")

    def on_trial_error(self, iteration, trials, trial, **info):
        self._line(trial, "FAILED")

    def _line(self, trial, status: str) -> None:
        self.done += 1
        if not self.verbose:
            return
        last = trial.last_result or {}
        figures = " · ".join(f"{label} {last[key]:.3f}" for key, label in
                             (("valid_f1", "valid F1"), ("holdout_f1", "held-out F1")) if isinstance(last.get(key), float))
        elapsed = time.perf_counter() - self.started
        print(f"[{self.done}/{self.total} · {elapsed / 60:.1f} min] {status} {trial.config.get('trial')}: "
              f"{figures or 'no result'}", flush=True)


def _concurrency(resources: list[dict], local_cores: int | None) -> int:
    """Trials at once: on a local Ray, one per core the largest trial needs (its logical CPUs are
    more than its cores, for Ray Data); on a cluster, what fits the cluster it can scale to."""
    import ray

    cpus = max(r.get("CPU", 1) for r in resources)
    if local_cores:
        return max(1, int(local_cores // cpus))
    from swinls.search.capacity import cluster_config_path, max_resources, trials_that_fit

    path = cluster_config_path()
    available = max_resources(path.read_text(), str(path)) if path else ray.cluster_resources()
    gpus = max(r.get("GPU", 0) for r in resources)
    return trials_that_fit(available, num_workers=1, cpus_per_worker=cpus, driver_cpus=0, use_gpu=gpus > 0,
                           gpus_per_worker=gpus or 1.0)
