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
it depends on took one of the listed values. Every error names the parameter and its line.

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
from typing import Any

import yaml

from swinls import storage
from swinls.bands import BandError, resolve_band_set
from swinls.config import ConfigError, ExperimentConfig, apply_overrides, from_dict

SCORE = "score"  # what trials report as their score (search/score.py); ASHA's default metric

TOP_KEYS = ("metric", "mode", "scope", "budget", "scheduler", "sampler", "resources", "base", "parameters")
SAMPLERS = ("tpe", "random")
SCHEDULER_KEYS = ("type", "grace_period", "reduction_factor", "metric", "mode")
DEFAULT_STARTUP_TRIALS = 10  # Optuna's own
PARAM_KEYS = ("choices", "low", "high", "log", "type", "step", "when")


class SpaceError(ValueError):
    pass


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
class Resources:
    num_workers: int = 1
    cpus_per_worker: float = 1.0
    use_gpu: bool = False
    gpus_per_worker: float = 1.0  # with use_gpu: 0.25 puts four single-worker trials on one GPU
    driver_cpus: float = 1.0  # the Tune trial function that drives each Ray Train run

    def __post_init__(self) -> None:
        if not (0 < self.gpus_per_worker <= 1 or float(self.gpus_per_worker).is_integer()):
            raise ValueError(f"gpus_per_worker must be a fraction in (0, 1] or a whole number of GPUs, got {self.gpus_per_worker}")


@dataclass(frozen=True)
class SearchSpace:
    source: str
    metric: str
    mode: str
    samples: int
    max_concurrent: int
    scheduler: dict
    sampler: str
    resources: Resources
    base: dict
    parameters: tuple[Parameter, ...]
    startup_trials: int = DEFAULT_STARTUP_TRIALS  # TPE's random draws before it models the results
    score_epochs: int = 1  # a trial's score averages the metric over its last this many epochs

    @property
    def scope(self) -> str:
        return "last" if self.score_epochs == 1 else f"last-{self.score_epochs}-avg"

    def define_by_run(self, trial) -> None:
        """For Optuna: draw every parameter whose conditions hold, in file order."""
        drawn: dict[str, Any] = {}
        for parameter in self.parameters:
            if all(drawn.get(k) in values for k, values in parameter.when.items()):
                drawn[parameter.key] = parameter.sample(trial)
        return None

    def experiment(self, sampled: dict[str, Any], extra: list[str] = ()) -> ExperimentConfig:
        """The trial's experiment config: base, then the resources, then the sampled values."""
        data = apply_overrides(self.base, [f"run.{k}={v}" for k, v in self.resources_overrides().items()] + list(extra))
        for key, value in sampled.items():
            node = data
            parts = key.split(".")
            for part in parts[:-1]:
                node = node.setdefault(part, {})
            node[parts[-1]] = value
        return from_dict(ExperimentConfig, data)

    def resources_overrides(self) -> dict:
        r = self.resources
        return {"num_workers": r.num_workers, "cpus_per_worker": r.cpus_per_worker, "use_gpu": str(r.use_gpu).lower(),
                "gpus_per_worker": r.gpus_per_worker}


def _lines(text: str, source: str) -> dict[str, int]:
    """Line numbers of the keys under `parameters`."""
    try:
        root = yaml.compose(text)
    except yaml.YAMLError as exc:
        raise SpaceError(f"{source}: not valid YAML ({exc})") from exc
    lines = {}
    if isinstance(root, yaml.MappingNode):
        for key, value in root.value:
            if key.value == "parameters" and isinstance(value, yaml.MappingNode):
                for pkey, _ in value.value:
                    line = pkey.start_mark.line + 1
                    if pkey.value in lines:  # YAML would silently keep the last one
                        raise SpaceError(f"{source}: parameter {pkey.value!r} appears twice (lines {lines[pkey.value]} and {line})")
                    lines[pkey.value] = line
    return lines


def _parameter(key: str, spec: Any, line: int, source: str) -> Parameter:
    where = f"{source}: parameter {key!r} (line {line})"
    if not isinstance(spec, dict):
        raise SpaceError(f"{where}: expected a mapping with choices, or low and high")
    unknown = [k for k in spec if k not in PARAM_KEYS]
    if unknown:
        raise SpaceError(f"{where}: unknown setting {unknown[0]!r}; valid: {', '.join(PARAM_KEYS)}")
    when = {k: tuple(v if isinstance(v, list) else [v]) for k, v in (spec.get("when") or {}).items()}
    if "choices" in spec:
        choices = spec["choices"]
        if not isinstance(choices, list) or not choices:
            raise SpaceError(f"{where}: choices must be a non-empty list")
        if key == "data.bands":
            for choice in choices:
                try:
                    resolve_band_set(choice)
                except BandError as exc:
                    raise SpaceError(f"{where}: {exc}") from None
        return Parameter(key, line, choices=tuple(tuple(c) if isinstance(c, list) else c for c in choices), when=when)
    if "low" not in spec or "high" not in spec:
        raise SpaceError(f"{where}: needs choices, or both low and high")
    low, high = spec["low"], spec["high"]
    if not all(isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) for v in (low, high)):
        raise SpaceError(f"{where}: low and high must be numbers, got {low!r} and {high!r}")
    if not low < high:
        raise SpaceError(f"{where}: bad range, low ({low}) must be below high ({high})")
    log = bool(spec.get("log", False))
    if log and low <= 0:
        raise SpaceError(f"{where}: a log range must start above 0, got low = {low}")
    integer = spec.get("type") == "int" or (isinstance(low, int) and isinstance(high, int) and spec.get("type") != "float")
    if spec.get("type") not in (None, "int", "float"):
        raise SpaceError(f"{where}: type must be int or float, got {spec['type']!r}")
    return Parameter(key, line, low=low, high=high, log=log, integer=integer, step=spec.get("step"), when=when)


def parse_space(text: str, source: str = "search space") -> SearchSpace:
    lines = _lines(text, source)
    data = yaml.safe_load(text) or {}
    if not isinstance(data, dict):
        raise SpaceError(f"{source}: expected a mapping at the top level")
    unknown = [k for k in data if k not in TOP_KEYS]
    if unknown:
        raise SpaceError(f"{source}: unknown key {unknown[0]!r}; valid keys: {', '.join(TOP_KEYS)}")
    mode = data.get("mode", "max")
    if mode not in ("max", "min"):
        raise SpaceError(f"{source}: mode must be max or min, got {mode!r}")
    budget = dict(data.get("budget") or {})
    bad_budget = [k for k in budget if k not in ("samples", "max_concurrent")]
    if bad_budget:
        raise SpaceError(f"{source}: unknown budget key {bad_budget[0]!r}; valid: samples, max_concurrent")
    metric = _metric(data.get("metric", "valid_f1"), "metric", source)
    score_epochs = _score_epochs(data.get("scope", "last"), source)
    scheduler = dict(data.get("scheduler") or {"type": "asha"})
    if scheduler.get("type", "asha") not in ("asha", "none"):
        raise SpaceError(f"{source}: scheduler.type must be asha or none, got {scheduler.get('type')!r}")
    bad_scheduler = [k for k in scheduler if k not in SCHEDULER_KEYS]
    if bad_scheduler:
        raise SpaceError(f"{source}: unknown scheduler key {bad_scheduler[0]!r}; valid: {', '.join(SCHEDULER_KEYS)}")
    if "metric" in scheduler:
        scheduler["metric"] = _metric(scheduler["metric"], "scheduler.metric", source, also=(SCORE,))
        scheduler.setdefault("mode", mode if scheduler["metric"] in (metric, SCORE) else _natural_mode(scheduler["metric"]))
    else:
        scheduler.update(metric=SCORE, mode=scheduler.get("mode", mode))
    if scheduler["mode"] not in ("max", "min"):
        raise SpaceError(f"{source}: scheduler.mode must be max or min, got {scheduler['mode']!r}")
    sampler, startup_trials = _sampler(data.get("sampler", "tpe"), source)
    try:
        resources = from_dict(Resources, data.get("resources") or {}, "resources")
    except ConfigError as exc:
        raise SpaceError(f"{source}: {exc}") from None
    parameters = tuple(_parameter(k, v, lines.get(k, 0), source) for k, v in (data.get("parameters") or {}).items())
    space = SearchSpace(source, metric, mode, int(budget.get("samples", 4)),
                        int(budget.get("max_concurrent", 0)), scheduler, sampler, resources, dict(data.get("base") or {}), parameters,
                        startup_trials, score_epochs)
    _check_against_config(space)
    return space


def _metric(name: Any, key: str, source: str, also: tuple[str, ...] = ()) -> str:
    from swinls.training.report import EPOCH_METRICS

    known = EPOCH_METRICS + also
    if name not in known:
        raise SpaceError(f"{source}: {key} {name!r} is not reported by the training loop; one of: {', '.join(known)}")
    return name


def _score_epochs(scope: Any, source: str) -> int:
    """`last` -> 1; `last-N-avg` -> N (Ray Tune's names for the same choice in get_best_result)."""
    if scope == "last":
        return 1
    parts = scope.split("-") if isinstance(scope, str) else []
    if len(parts) == 3 and parts[0] == "last" and parts[2] == "avg" and parts[1].isdigit() and int(parts[1]) >= 1:
        return int(parts[1])
    raise SpaceError(f"{source}: scope must be last or last-N-avg (N a whole number of epochs, e.g. last-3-avg), got {scope!r}")


def _natural_mode(metric: str) -> str:
    return "min" if metric.endswith(("loss", "seconds")) else "max"


def _sampler(spec: Any, source: str) -> tuple[str, int]:
    """`tpe`, `random`, or a mapping with `type` and TPE's `startup_trials`: on a budget of a few
    dozen trials, Optuna's default of 10 random draws is a large share of it."""
    spec = {"type": spec} if isinstance(spec, str) else spec
    if not isinstance(spec, dict):
        raise SpaceError(f"{source}: sampler must be a name ({', '.join(SAMPLERS)}) or a mapping with type")
    unknown = [k for k in spec if k not in ("type", "startup_trials")]
    if unknown:
        raise SpaceError(f"{source}: unknown sampler key {unknown[0]!r}; valid: type, startup_trials")
    kind = spec.get("type", "tpe")
    if kind not in SAMPLERS:
        raise SpaceError(f"{source}: sampler must be one of {', '.join(SAMPLERS)}, got {kind!r}")
    startup = spec.get("startup_trials", DEFAULT_STARTUP_TRIALS)
    if kind != "tpe" and "startup_trials" in spec:
        raise SpaceError(f"{source}: sampler.startup_trials only applies to tpe, not {kind}")
    if not isinstance(startup, int) or isinstance(startup, bool) or startup < 1:
        raise SpaceError(f"{source}: sampler.startup_trials must be a whole number of at least 1, got {startup!r}")
    return kind, startup


def _check_against_config(space: SearchSpace) -> None:
    """Every parameter must be an experiment config key whose every value the config accepts."""
    try:
        space.experiment({})
    except (ConfigError, ValueError) as exc:
        raise SpaceError(f"{space.source}: base: {exc}") from None
    keys = {p.key for p in space.parameters}
    for parameter in space.parameters:
        for dependency in parameter.when:
            if dependency not in keys:
                raise SpaceError(f"{space.source}: {parameter.where()}: 'when' refers to {dependency!r}, which is not a parameter")
        for value in parameter.extremes():
            try:
                space.experiment({parameter.key: list(value) if isinstance(value, tuple) else value})
            except ConfigError as exc:
                message = str(exc)
                if "unknown config key" in message:
                    message = f"unknown parameter: {message}"
                raise SpaceError(f"{space.source}: {parameter.where()}: {message}") from None
            except ValueError as exc:
                raise SpaceError(f"{space.source}: {parameter.where()}: value {value!r} is refused: {exc}") from None


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
