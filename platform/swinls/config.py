"""Typed configs: dataclasses built strictly from dicts, YAML and `key.sub=value` overrides.

Each component declares its own frozen dataclass beside its code. This module turns plain data
into those dataclasses and back: an unknown or misspelled key is an error that names its full
dotted path (and the closest valid key), a value of the wrong type is an error naming the key.
"""

from __future__ import annotations

import dataclasses
import difflib
import types
import typing
from typing import Any, Iterable, Mapping, TypeVar

import yaml

T = TypeVar("T")


class ConfigError(ValueError):
    pass


def _suggest(key: str, valid: Iterable[str]) -> str:
    close = difflib.get_close_matches(key, list(valid), n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


def _convert(value: Any, annotation: Any, path: str) -> Any:
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if annotation is Any:
        return value
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        errors = []
        for option in (a for a in args if a is not type(None)):
            try:
                return _convert(value, option, path)
            except ConfigError as exc:
                errors.append(str(exc))
        raise ConfigError(errors[0] if len(errors) == 1 else f"{path}: {value!r} fits none of {annotation}")
    if origin is typing.Literal:
        if value not in args:
            raise ConfigError(f"{path}: {value!r} is not one of {', '.join(repr(a) for a in args)}")
        return value
    if dataclasses.is_dataclass(annotation):
        if isinstance(value, annotation):
            return value
        if not isinstance(value, Mapping):
            raise ConfigError(f"{path}: expected a mapping of {annotation.__name__} settings, got {value!r}")
        return from_dict(annotation, value, path)
    if origin in (tuple, list):
        if isinstance(value, str) or not isinstance(value, (list, tuple)):
            raise ConfigError(f"{path}: expected a list, got {value!r}")
        if origin is tuple and args and args[-1] is not Ellipsis:
            if len(args) != len(value):
                raise ConfigError(f"{path}: expected {len(args)} values, got {len(value)}")
            return tuple(_convert(v, a, f"{path}[{i}]") for i, (v, a) in enumerate(zip(value, args)))
        item = args[0] if args else Any
        converted = [_convert(v, item, f"{path}[{i}]") for i, v in enumerate(value)]
        return tuple(converted) if origin is tuple else converted
    if origin in (dict, Mapping) or annotation is dict:
        if not isinstance(value, Mapping):
            raise ConfigError(f"{path}: expected a mapping, got {value!r}")
        return dict(value)
    if annotation is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{path}: expected true or false, got {value!r}")
        return value
    if annotation is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{path}: expected an integer, got {value!r}")
        return value
    if annotation is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{path}: expected a number, got {value!r}")
        return float(value)
    if annotation is str:
        if not isinstance(value, str):
            raise ConfigError(f"{path}: expected a string, got {value!r}")
        return value
    return value


def from_dict(cls: type[T], data: Mapping[str, Any] | None, path: str = "") -> T:
    """Build `cls` from a mapping; unknown keys and wrong types are errors naming the key."""
    data = dict(data or {})
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}
    unknown = [k for k in data if k not in fields]
    if unknown:
        key = unknown[0]
        where = f"{path}.{key}" if path else key
        raise ConfigError(f"unknown config key {where!r}{_suggest(key, fields)}; valid keys here: {', '.join(fields)}")
    defaults = _default_instance(cls)
    kwargs = {}
    for name, value in data.items():
        default = getattr(defaults, name, None)
        if dataclasses.is_dataclass(default) and isinstance(value, Mapping):
            # a partial section overrides this config's own default for it, key by key
            value = _merge(to_dict(default), value)
        kwargs[name] = _convert(value, hints[name], f"{path}.{name}" if path else name)
    try:
        return cls(**kwargs)
    except ConfigError:
        raise
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"{path or cls.__name__}: {exc}") from exc


def _default_instance(cls: type) -> Any:
    try:
        return cls()
    except TypeError:  # some field has no default
        return None


def to_dict(config: Any) -> Any:
    """Plain data (dicts, lists, scalars) for YAML/JSON."""
    if dataclasses.is_dataclass(config):
        return {f.name: to_dict(getattr(config, f.name)) for f in dataclasses.fields(config)}
    if isinstance(config, (list, tuple)):
        return [to_dict(v) for v in config]
    if isinstance(config, Mapping):
        return {k: to_dict(v) for k, v in config.items()}
    return config


def parse_override(text: str) -> tuple[list[str], Any]:
    """`a.b.c=value`, the value read as YAML (so 3, 0.5, true, [B4, B3] work)."""
    if "=" not in text:
        raise ConfigError(f"override {text!r} must look like key.sub=value")
    key, raw = text.split("=", 1)
    keys = [k for k in key.strip().split(".") if k]
    if not keys:
        raise ConfigError(f"override {text!r} has no key")
    return keys, yaml.safe_load(raw) if raw.strip() else ""


def apply_overrides(data: Mapping[str, Any], overrides: Iterable[str]) -> dict:
    out = _deep_copy(data)
    for text in overrides:
        keys, value = parse_override(text)
        node = out
        for key in keys[:-1]:
            child = node.get(key)
            if child is None:
                child = node[key] = {}
            if not isinstance(child, dict):
                raise ConfigError(f"override {text!r}: {key!r} is not a section")
            node = child
        node[keys[-1]] = value
    return out


def _deep_copy(data: Any) -> Any:
    if isinstance(data, Mapping):
        return {k: _deep_copy(v) for k, v in data.items()}
    if isinstance(data, list):
        return [_deep_copy(v) for v in data]
    return data


def load_yaml(path: str) -> dict:
    from swinls import storage

    try:
        data = yaml.safe_load(storage.read_bytes(path)) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML ({exc})") from exc
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping at the top level")
    return data


# -- the experiment ---------------------------------------------------------------------------

from dataclasses import dataclass, field  # noqa: E402
from typing import Literal  # noqa: E402

from swinls.augment import PAPER_RECIPE  # noqa: E402
from swinls.data.selection import DataConfig  # noqa: E402
from swinls.losses import PAPER_STAGE1, PAPER_STAGE2, LossWeights  # noqa: E402
from swinls.models.config import ModelConfig  # noqa: E402


@dataclass(frozen=True)
class StageConfig:
    epochs: int = 30
    lr: float = 1e-4
    weight_decay: float = 0.01
    optimizer: Literal["adamw", "sgd"] = "adamw"
    schedule: Literal["cosine", "constant"] = "cosine"
    warmup_epochs: int = 0
    loss: LossWeights = PAPER_STAGE1
    freeze_encoder: bool = False

    def __post_init__(self) -> None:
        if self.epochs < 0 or self.lr <= 0 or self.warmup_epochs < 0:
            raise ValueError("epochs and warmup_epochs must not be negative and lr must be positive")


@dataclass(frozen=True)
class SelfTrainConfig:
    """After stage 2: pseudo-label the unlabeled split with the top-A% most confident pixels of
    each predicted class (the rest ignored), then train both stages again on labeled + pseudo."""

    rounds: int = 1  # 0 turns self-training off
    top_percent: float = 100.0  # the paper's A
    stage1: StageConfig = StageConfig(epochs=10, lr=5e-5)
    stage2: StageConfig = StageConfig(epochs=3, lr=1e-5, loss=PAPER_STAGE2, freeze_encoder=True)
    png_samples: int = 0  # pseudo-label maps saved as PNG for a look (the paper's Figure 3)

    def __post_init__(self) -> None:
        if self.rounds < 0 or not 0.0 < self.top_percent <= 100.0:
            raise ValueError(f"selftrain.rounds must be >= 0 and top_percent in (0, 100], got {self.rounds}, {self.top_percent}")


@dataclass(frozen=True)
class RunConfig:
    num_workers: int = 1
    use_gpu: bool = False
    cpus_per_worker: float = 1.0
    gpus_per_worker: float = 1.0  # with use_gpu; a fraction (0.25) lets small trials share a GPU
    bf16: bool | None = None  # bfloat16 autocast; None: on when the run uses GPUs (accel.GpuSettings)
    # the learning rates of the stages hold at this global batch (batch_size × num_workers); at
    # another, lr_scaling adapts them: "sqrt" for AdamW at large batches, "linear" for SGD
    lr_scaling: Literal["none", "linear", "sqrt"] = "none"
    lr_reference_batch: int = 16
    seed: int = 0
    max_failures: int = 2  # worker deaths Ray Train recovers from, resuming from the last checkpoint
    checkpoint_every: int = 1  # epochs
    keep_checkpoints: int = 2  # besides the last of each phase

    def __post_init__(self) -> None:
        if self.num_workers < 1 or self.checkpoint_every < 1 or self.keep_checkpoints < 1 or self.lr_reference_batch < 1:
            raise ValueError("run.num_workers, run.checkpoint_every, run.keep_checkpoints and run.lr_reference_batch must be at least 1")
        if not (0 < self.gpus_per_worker <= 1 or float(self.gpus_per_worker).is_integer()):
            # Ray's own rule: a fraction of one GPU, or whole GPUs
            raise ValueError(f"run.gpus_per_worker must be a fraction in (0, 1] or a whole number, got {self.gpus_per_worker}")


@dataclass(frozen=True)
class ExperimentConfig:
    """The paper's recipe by default: RGB, Swin-B, flips + rotate/shift, stage 1 = weighted CE +
    Lovász + image-level loss, stage 2 = frozen encoder + CE, one round of self-training, A=100%."""

    name: str = "swinls"
    storage: str = "runs"  # where runs live: a local folder or s3://bucket/prefix
    data: DataConfig = field(default_factory=lambda: DataConfig(augment=PAPER_RECIPE))
    model: ModelConfig = field(default_factory=ModelConfig)
    stage1: StageConfig = StageConfig()
    # a gentle stage 2: a large step on plain CE undoes the balance stage 1 bought
    stage2: StageConfig = StageConfig(epochs=5, lr=1e-5, loss=PAPER_STAGE2, freeze_encoder=True)
    selftrain: SelfTrainConfig = SelfTrainConfig()
    run: RunConfig = RunConfig()


def load_experiment(path: str | None = None, overrides: Iterable[str] = (), base: Mapping[str, Any] | None = None) -> ExperimentConfig:
    """Defaults ← `base` ← YAML file ← `key.sub=value` overrides, strictly checked."""
    data = dict(base or {})
    if path:
        data = _merge(data, load_yaml(path))
    data = apply_overrides(data, overrides)
    return from_dict(ExperimentConfig, data)


def _merge(base: Mapping[str, Any], update: Mapping[str, Any]) -> dict:
    out = _deep_copy(base)
    for key, value in update.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), dict):
            out[key] = _merge(out[key], value)
        else:
            out[key] = _deep_copy(value)
    return out


def config_yaml(config: Any) -> str:
    return yaml.safe_dump(to_dict(config), sort_keys=False)
