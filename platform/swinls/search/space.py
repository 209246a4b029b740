"""Search spaces: YAML files of `search_spaces/`, checked whole before any trial starts.

    metric: valid_f1            # any per-epoch metric the training loop reports
    mode: max
    scope: last-3-avg           # a trial's score: the metric's mean over its last 3 epochs; or last
    budget: {samples: 8, max_concurrent: 0}        # 0: as many as the cluster's resources fit
    scheduler: {type: asha, grace_period: 2, reduction_factor: 2, metric: valid_ap}   # or {type: none}
    sampler: tpe                # Optuna's TPE; random for a baseline; or {type: tpe, startup_trials: 4}
    resources: {num_workers: 1, cpus_per_worker: 1, use_gpu: false, gpus_per_worker: 1, driver_cpus: 1}
    base: {model: {size: nano}, stage1: {epochs: 4}}   # experiment config shared by every trial
    parameters:                 # experiment config keys, dotted
      data.bands: {choices: [RGB, NGB, RGB+NIR]}
      stage1.lr: {low: 1.0e-4, high: 3.0e-3, log: true}
      stage1.loss.lovasz: {low: 0.0, high: 1.0}
      selftrain.rounds: {choices: [0, 1]}
      selftrain.top_percent: {low: 50, high: 100, when: {selftrain.rounds: [1]}}

Optuna samples it define-by-run, so a parameter with `when` is only drawn when the parameters
it depends on took one of the listed values. The file is read by the same strict loader as an
experiment config (`config.py`), from the dataclasses below: every error names the key and its line.

A trial's score is what Optuna optimises, ranks trials by and publishes the best model for. With
`scope: last` it is the final epoch's metric; `last-N-avg` (Ray's own name for it) averages the
final N epochs, so one lucky or unlucky epoch does not decide the ranking: at a high learning rate
the F1 of one trial can jump 0.25 -> 0.05 -> 0.23 between epochs.

ASHA stops trials by the trial's score unless the scheduler names its own: argmax F1 sits at 0
for the first epochs of most trials (nothing is predicted landslide yet), so stopping on it
there is a coin toss; average precision already ranks them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Literal

import yaml

from swinls import storage
from swinls.bands import BandError, resolve_band_set
from swinls.config import ConfigError, apply_overrides, dotted, from_dict, located, merge, unknown_key, yaml_mapping
from swinls.experiment_config import ExperimentConfig, RunConfig, experiment_from_data

# ASHA's clock and what a trial's results count epochs by: the run's own epoch count, which a
# resumed trial continues (Tune's training_iteration would start again at 1 after a restart)
EPOCH = "epoch"
SCORE = "score"  # what trials report as their score (search/score.py); ASHA's default metric
DEFAULT_STARTUP_TRIALS = 10  # Optuna's own
# the resources section holds RunConfig's resource fields (RunConfig checks them) and the driver's CPUs
RUN_RESOURCES = ("num_workers", "cpus_per_worker", "use_gpu", "gpus_per_worker")
DRIVER_CPUS = "driver_cpus"


class SpaceError(ConfigError):
    pass


# -- the file, as the loader reads it ---------------------------------------------------------

@dataclass(frozen=True)
class Budget:
    samples: int = 4
    max_concurrent: int = 0  # 0: as many as the cluster's resources fit

    def __post_init__(self) -> None:
        if self.samples < 1 or self.max_concurrent < 0:
            raise ValueError(f"samples must be at least 1 and max_concurrent at least 0, got {self.samples}, {self.max_concurrent}")


@dataclass(frozen=True)
class SchedulerSpec:
    type: Literal["asha", "none"] = "asha"
    grace_period: int = 2  # epochs every trial gets before it can be stopped
    reduction_factor: float = 2.0
    metric: str | None = None  # default: the trial's score
    mode: Literal["max", "min"] | None = None  # default: the space's mode for the score, else the metric's natural one


@dataclass(frozen=True)
class SamplerSpec:
    type: Literal["tpe", "random"] = "tpe"
    startup_trials: int | None = None  # TPE's random draws before it models the results (Optuna: 10)


@dataclass(frozen=True)
class ParameterSpec:
    choices: list | None = None
    low: int | float | None = None
    high: int | float | None = None
    log: bool = False
    type: Literal["int", "float"] | None = None  # default: int when low and high are both whole numbers
    step: int | float | None = None
    when: dict[str, Any] = field(default_factory=dict)  # {other parameter: value or [values]}


@dataclass(frozen=True)
class SpaceFile:
    metric: str = "valid_f1"
    mode: Literal["max", "min"] = "max"
    scope: str = "last"  # or last-N-avg
    budget: Budget = Budget()
    scheduler: SchedulerSpec = SchedulerSpec()
    sampler: Literal["tpe", "random"] | SamplerSpec = "tpe"
    resources: dict[str, Any] = field(default_factory=dict)  # run.num_workers ... and driver_cpus
    base: dict[str, Any] = field(default_factory=dict)  # the experiment config every trial starts from
    parameters: dict[str, ParameterSpec] = field(default_factory=dict)


# -- the space, as a search uses it ---------------------------------------------------------

@dataclass(frozen=True)
class Parameter:
    key: str
    line: int
    choices: tuple | None = None
    low: float | None = None
    high: float | None = None
    log: bool = False
    integer: bool = False
    step: float | None = None
    when: dict[str, tuple] = field(default_factory=dict)

    def where(self) -> str:
        return f"parameter {self.key!r} (line {self.line})"

    def sample(self, trial) -> Any:
        if self.choices is not None:
            return trial.suggest_categorical(self.key, list(self.choices))
        if self.integer:
            return trial.suggest_int(self.key, int(self.low), int(self.high), log=self.log, step=int(self.step or 1))
        return trial.suggest_float(self.key, float(self.low), float(self.high), log=self.log, step=self.step)

    def extremes(self) -> list[Any]:
        if self.choices is not None:
            return list(self.choices)
        return [int(self.low), int(self.high)] if self.integer else [float(self.low), float(self.high)]


@dataclass(frozen=True)
class SearchSpace:
    source: str
    metric: str
    mode: str
    samples: int
    max_concurrent: int
    scheduler: dict
    sampler: str
    resources: dict  # RunConfig's resource fields as the space sets them
    driver_cpus: float  # the Tune trial function that drives each Ray Train run
    base: dict
    parameters: tuple[Parameter, ...]
    startup_trials: int = DEFAULT_STARTUP_TRIALS
    score_epochs: int = 1  # a trial's score averages the metric over its last this many epochs

    @property
    def scope(self) -> str:
        return "last" if self.score_epochs == 1 else f"last-{self.score_epochs}-avg"

    @property
    def run(self) -> RunConfig:
        """Every trial's run settings (resources included), before any parameter is drawn."""
        return self.experiment({}).run

    def define_by_run(self, trial) -> None:
        """For Optuna: draw every parameter whose conditions hold, in file order."""
        drawn: dict[str, Any] = {}
        for parameter in self.parameters:
            if all(drawn.get(k) in values for k, values in parameter.when.items()):
                drawn[parameter.key] = parameter.sample(trial)
        return None

    def experiment(self, sampled: dict[str, Any], extra: list[str] = ()) -> ExperimentConfig:
        """The trial's experiment config: base, then the resources, then the sampled values."""
        data = merge(self.base, {"run": self.resources}) if self.resources else dict(self.base)
        data = apply_overrides(data, list(extra))
        for key, value in sampled.items():
            node = data
            parts = key.split(".")
            for part in parts[:-1]:
                node = node.setdefault(part, {})
            node[parts[-1]] = value
        return experiment_from_data(data)


def parse_space(text: str, source: str = "search space", with_lines: bool = True) -> SearchSpace:
    """`with_lines=False` for a text the user did not write (a file with a command line's
    overrides applied, dumped again): its line numbers would point nowhere."""
    try:
        data, lines = yaml_mapping(text, source)
    except ConfigError as exc:  # not YAML, or a key written twice
        raise SpaceError(str(exc), exc.keys) from None
    lines = lines if with_lines else {}

    def fail(message: str, keys: tuple) -> SpaceError:
        return SpaceError(str(located(ConfigError(message, keys), source, lines)), keys)

    try:
        spec = from_dict(SpaceFile, data)
    except SpaceError:
        raise
    except ConfigError as exc:
        raise fail(str(exc), exc.keys) from None
    metric = _metric(spec.metric, ("metric",), fail)
    score_epochs = _score_epochs(spec.scope, fail)
    scheduler = {k: getattr(spec.scheduler, k) for k in (data.get("scheduler") or {})}
    scheduler["metric"] = SCORE if spec.scheduler.metric is None else \
        _metric(spec.scheduler.metric, ("scheduler", "metric"), fail, also=(SCORE,))
    if scheduler.get("mode") is None:  # the space's mode for its own metric or the score, else the metric's natural one
        scheduler["mode"] = spec.mode if scheduler["metric"] in (metric, SCORE) else _natural_mode(scheduler["metric"])
    sampler = spec.sampler if isinstance(spec.sampler, SamplerSpec) else SamplerSpec(type=spec.sampler)
    if sampler.startup_trials is not None and sampler.type != "tpe":
        raise fail(f"sampler.startup_trials only applies to tpe, not {sampler.type}", ("sampler", "startup_trials"))
    startup = DEFAULT_STARTUP_TRIALS if sampler.startup_trials is None else sampler.startup_trials
    if startup < 1:
        raise fail(f"sampler.startup_trials must be a whole number of at least 1, got {startup!r}", ("sampler", "startup_trials"))
    resources = dict(spec.resources)
    driver_cpus = resources.pop(DRIVER_CPUS, 1.0)
    for key in resources:
        if key not in RUN_RESOURCES:
            error = unknown_key(("resources",), key, (*RUN_RESOURCES, DRIVER_CPUS))
            raise fail(str(error), error.keys)
    if isinstance(driver_cpus, bool) or not isinstance(driver_cpus, (int, float)) or driver_cpus <= 0:
        raise fail(f"resources.driver_cpus must be a positive number, got {driver_cpus!r}", ("resources", DRIVER_CPUS))
    parameters = tuple(_parameter(key, p, lines.get(("parameters", key), 0), fail) for key, p in spec.parameters.items())
    space = SearchSpace(source, metric, spec.mode, spec.budget.samples, spec.budget.max_concurrent, scheduler, sampler.type,
                        resources, float(driver_cpus), dict(spec.base), parameters, startup, score_epochs)
    _check_against_config(space, fail)
    return space


def _parameter(key: str, spec: ParameterSpec, line: int, fail) -> Parameter:
    keys = ("parameters", key)
    where = f"parameter {key!r}"
    when = {k: tuple(v if isinstance(v, list) else [v]) for k, v in spec.when.items()}
    if spec.choices is not None:
        if not spec.choices:
            raise fail(f"{where}: choices must be a non-empty list", (*keys, "choices"))
        if key == "data.bands":
            for choice in spec.choices:
                try:
                    resolve_band_set(choice)
                except BandError as exc:
                    raise fail(f"{where}: {exc}", (*keys, "choices")) from None
        return Parameter(key, line, choices=tuple(tuple(c) if isinstance(c, list) else c for c in spec.choices), when=when)
    if spec.low is None or spec.high is None:
        raise fail(f"{where}: needs choices, or both low and high", keys)
    low, high = spec.low, spec.high
    if not all(math.isfinite(v) for v in (low, high)):
        raise fail(f"{where}: low and high must be finite numbers, got {low!r} and {high!r}", keys)
    if not low < high:
        raise fail(f"{where}: bad range, low ({low}) must be below high ({high})", keys)
    if spec.log and low <= 0:
        raise fail(f"{where}: a log range must start above 0, got low = {low}", (*keys, "low"))
    integer = spec.type == "int" or (isinstance(low, int) and isinstance(high, int) and spec.type != "float")
    return Parameter(key, line, low=low, high=high, log=spec.log, integer=integer, step=spec.step, when=when)


def _metric(name: str, keys: tuple, fail, also: tuple[str, ...] = ()) -> str:
    from swinls.training.report import EPOCH_METRICS

    known = EPOCH_METRICS + also
    if name not in known:
        raise fail(f"{dotted(keys)} {name!r} is not reported by the training loop; one of: {', '.join(known)}", keys)
    return name


def _score_epochs(scope: str, fail) -> int:
    """`last` -> 1; `last-N-avg` -> N (Ray Tune's names for the same choice in get_best_result)."""
    if scope == "last":
        return 1
    parts = scope.split("-")
    if len(parts) == 3 and parts[0] == "last" and parts[2] == "avg" and parts[1].isdigit() and int(parts[1]) >= 1:
        return int(parts[1])
    raise fail(f"scope must be last or last-N-avg (N a whole number of epochs, e.g. last-3-avg), got {scope!r}", ("scope",))


def _natural_mode(metric: str) -> str:
    return "min" if metric.endswith(("loss", "seconds")) else "max"


def _valid_without_resources(space: SearchSpace) -> bool:
    try:
        experiment_from_data(space.base)
        return True
    except ConfigError:
        return False


def _check_against_config(space: SearchSpace, fail) -> None:
    """The base with the resources must be a valid experiment config, and every parameter an
    experiment config key whose every value the config accepts."""
    try:
        space.experiment({})
    except ConfigError as exc:
        if exc.keys[:1] == ("run",) and space.resources and _valid_without_resources(space):
            raise fail(f"resources: {exc}", ("resources", *exc.keys[1:])) from None
        raise fail(f"base: {exc}", ("base", *exc.keys)) from None
    names = {p.key for p in space.parameters}
    for parameter in space.parameters:
        keys = ("parameters", parameter.key)
        for dependency in parameter.when:
            if dependency not in names:
                raise fail(f"parameter {parameter.key!r}: 'when' refers to {dependency!r}, which is not a parameter", (*keys, "when"))
        for value in parameter.extremes():
            try:
                space.experiment({parameter.key: list(value) if isinstance(value, tuple) else value})
            except ConfigError as exc:
                message = str(exc)
                if "unknown config key" in message:
                    message = f"unknown parameter: {message}"
                raise fail(f"parameter {parameter.key!r}: {message}", keys) from None
            except ValueError as exc:
                raise fail(f"parameter {parameter.key!r}: value {value!r} is refused: {exc}", keys) from None


def override_space(text: str, *, samples: int | None = None, max_concurrent: int | None = None,
                   workers: int | None = None, cpus_per_worker: float | None = None, use_gpu: bool = False,
                   gpus_per_worker: float | None = None, base: list[str] = ()) -> str:
    """The space's YAML with a command line's budget and resources applied, and `base` overrides
    (`key.sub=value`) on its experiment config; check the result with `parse_space`."""
    data = yaml.safe_load(text) or {}
    if samples is not None:
        data.setdefault("budget", {})["samples"] = samples
    if max_concurrent is not None:
        data.setdefault("budget", {})["max_concurrent"] = max_concurrent
    resources = data.setdefault("resources", {})
    for key, value in (("num_workers", workers), ("cpus_per_worker", cpus_per_worker), ("gpus_per_worker", gpus_per_worker)):
        if value is not None:
            resources[key] = value
    if use_gpu:
        resources["use_gpu"] = True
    if base:
        data["base"] = apply_overrides(data.get("base") or {}, list(base))
    return yaml.safe_dump(data, sort_keys=False)


def load_space(uri: str) -> SearchSpace:
    return parse_space(storage.read_bytes(uri).decode(), source=str(uri))
