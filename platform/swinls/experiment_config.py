"""The experiment config: everything one training run needs (data, model, both stages,
self-training, resources), as frozen dataclasses read by the generic loader (`config.py`).
`docs/config.md` is generated from these classes (tests/test_docs.py keeps it true)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Iterable, Literal, Mapping

import yaml

from swinls.augment import PAPER_RECIPE
from swinls.config import ConfigError, apply_overrides, from_dict, located, merge, to_dict, yaml_mapping
from swinls.data.selection import DataConfig
from swinls.losses import PAPER_STAGE1, PAPER_STAGE2, LossWeights
from swinls.models.config import ModelConfig




@dataclass(frozen=True)
class StageConfig:
    epochs: int = 30  # 0 skips the stage
    lr: float = 1e-4  # at lr_reference_batch (run.lr_scaling adapts it to other global batches)
    weight_decay: float = 0.01
    optimizer: Literal["adamw", "sgd"] = "adamw"
    schedule: Literal["cosine", "constant"] = "cosine"  # cosine: decays over the stage, after the warm-up
    warmup_epochs: int = 0  # linear warm-up from 0
    loss: LossWeights = PAPER_STAGE1
    freeze_encoder: bool = False  # stage 2 of the paper: only the decoder learns

    def __post_init__(self) -> None:
        if self.epochs < 0 or self.lr <= 0 or self.warmup_epochs < 0:
            raise ValueError("epochs and warmup_epochs must not be negative and lr must be positive")


@dataclass(frozen=True)
class SelfTrainConfig:
    """After stage 2: pseudo-label the unlabeled split with the top-A% most confident pixels of
    each predicted class (the rest ignored), then train both stages again on labeled + pseudo."""

    rounds: int = 1  # 0 turns self-training off
    top_percent: float = 100.0  # the paper's A; 0 keeps no pseudo-label: the same extra training on labelled rows alone (a control)
    stage1: StageConfig = StageConfig(epochs=10, lr=5e-5)
    stage2: StageConfig = StageConfig(epochs=3, lr=1e-5, loss=PAPER_STAGE2, freeze_encoder=True)
    png_samples: int = 0  # pseudo-label maps saved as PNG for a look (the paper's Figure 3)

    def __post_init__(self) -> None:
        if self.rounds < 0 or not 0.0 <= self.top_percent <= 100.0:
            raise ValueError(f"selftrain.rounds must be >= 0 and top_percent in [0, 100], got {self.rounds}, {self.top_percent}")


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

    name: str = "swinls"  # the run's folder under storage; the same name resumes
    storage: str = "runs"  # where runs live: a local folder or s3://bucket/prefix (the jobs: under the project)
    data: DataConfig = field(default_factory=lambda: DataConfig(augment=PAPER_RECIPE))
    model: ModelConfig = field(default_factory=ModelConfig)
    stage1: StageConfig = StageConfig()
    # a gentle stage 2: a large step on plain CE undoes the balance stage 1 bought
    stage2: StageConfig = StageConfig(epochs=5, lr=1e-5, loss=PAPER_STAGE2, freeze_encoder=True)
    selftrain: SelfTrainConfig = SelfTrainConfig()
    run: RunConfig = RunConfig()


def experiment_from_data(data: Mapping[str, Any], keys: tuple = ()) -> ExperimentConfig:
    """The experiment config from plain data, over the recipe it names (`recipe: tiny`)."""
    from swinls.recipes import with_recipe

    return from_dict(ExperimentConfig, with_recipe(data), keys)


def load_experiment(path: str | None = None, overrides: Iterable[str] = (), base: Mapping[str, Any] | None = None) -> ExperimentConfig:
    """Defaults ← `base` ← YAML file ← `key.sub=value` overrides, strictly checked; an error in
    the file says its line."""
    data, lines = dict(base or {}), {}
    if path:
        from swinls import storage

        written, lines = yaml_mapping(storage.read_bytes(path).decode(), str(path))
        data = merge(data, written)
    data = apply_overrides(data, overrides)
    try:
        return experiment_from_data(data)
    except ConfigError as exc:
        if path and exc.keys in lines and not _overridden(exc.keys, overrides):
            raise located(exc, str(path), lines) from None
        raise


def _overridden(keys: tuple, overrides: Iterable[str]) -> bool:
    """Whether an override set `keys` or a section above it."""
    from swinls.config import parse_override

    set_keys = (tuple(parse_override(text)[0]) for text in overrides)
    return any(tuple(keys[:len(set_key)]) == set_key for set_key in set_keys)


def config_yaml(config: Any) -> str:
    return yaml.safe_dump(to_dict(config), sort_keys=False)
