"""How much work a run is, and about how long it takes, before it starts (`--dry-run`).

Work is counted in patch passes: every epoch trains on the training split and evaluates the
validation (and held-out) split; self-training first predicts the unlabelled split, then trains
on labelled + pseudo-labelled rows. A training pass costs three forward passes (forward, backward,
step); an evaluation pass one.

Time is a range, and its basis is printed with it:
- CPU: training patches/s measured by `benchmarks/models.py` on a 2-core machine (RGB, batch 8,
  2 torch threads; 2026-12-03), scaled by the torch threads here; a model not measured there
  gets no time, only its count of passes.
- GPU: an estimate from FLOPs (`benchmarks/models.py`) over an H100's 989 bf16 TFLOP/s at 3–12 %
  utilisation: vision-transformer training in eager PyTorch rarely passes ~10 % of an H100's dense
  bf16 peak, and batches of sixteen 128×128 patches sit below that. Not measured here (no GPU was
  lent); `benchmarks/gpu_train.py` measures the real figure (MFU) on a GPU.
Stage 2 (a frozen encoder) is counted as a full training pass: an upper bound.
"""

from __future__ import annotations

from dataclasses import dataclass

# benchmarks/models.py, 3 bands, 128×128: forward GFLOPs per patch and CPU training patches/s
MEASURED = {
    ("swinls", "nano"): (0.31, 58.1),
    ("swinls", "tiny"): (4.50, 10.8),
    ("swinls", "small"): (7.30, 7.0),
    ("swinls", "base"): (11.87, 4.7),
    ("unet", "resnet34"): (3.90, 10.7),
    ("deeplabv3", "resnet34"): (13.65, 5.1),
}
MEASURED_THREADS = 2
GPU_PEAK_TFLOPS = 989.0  # H100 SXM, dense bf16
GPU_UTILISATION = (0.03, 0.12)  # assumed, see above


# the 2022 release: TrainData, ValidData, TestData patches (one region)
LANDSLIDE4SENSE_ROWS = {"train": 3799, "valid": 245, "unlabeled": 800}


def model_key(model) -> tuple[str, str]:
    return (model.name, model.size if model.name == "swinls" else model.encoder)


@dataclass(frozen=True)
class Work:
    train_passes: int  # patches through a training step, over all epochs and trials
    eval_passes: int  # patches through a forward pass only
    seconds: tuple[float, float] | None  # the time range, None when there is no basis
    basis: str

    @property
    def forward_equivalents(self) -> int:
        return 3 * self.train_passes + self.eval_passes


def passes(config, rows: dict[str, int]) -> tuple[int, int]:
    """(training, evaluation) patch passes of one run, from the rows of each split."""
    evaluated = rows.get("valid", 0) + rows.get("holdout", 0)
    train = evaluation = 0
    for stage in (config.stage1, config.stage2):
        train += stage.epochs * rows.get("train", 0)
        evaluation += stage.epochs * evaluated
    for _ in range(config.selftrain.rounds):
        evaluation += rows.get("unlabeled", 0)  # the pseudo-labelling pass
        for stage in (config.selftrain.stage1, config.selftrain.stage2):
            train += stage.epochs * (rows.get("train", 0) + rows.get("unlabeled", 0))
            evaluation += stage.epochs * evaluated
    return train, evaluation


def rate(config, threads: int, gpus: float) -> tuple[tuple[float, float] | None, str]:
    """Training patches/s (low, high) of one run, and where the figure comes from."""
    key = model_key(config.model)
    measured = MEASURED.get(key)
    name = f"{key[0]} {key[1]}"
    if config.run.use_gpu:
        if measured is None:
            return None, f"no FLOP count for {name} in benchmarks/models.py"
        per_patch = 3 * measured[0] * 1e9
        low, high = (GPU_PEAK_TFLOPS * 1e12 * u / per_patch * gpus for u in GPU_UTILISATION)
        return (low, high), (f"estimate: {name} {3 * measured[0]:.1f} GFLOP per training patch over "
                             f"{gpus:g} H100-class GPU(s) at {GPU_UTILISATION[0]:.0%}–{GPU_UTILISATION[1]:.0%} of "
                             f"{GPU_PEAK_TFLOPS:.0f} bf16 TFLOP/s")
    scale = max(1, threads) / MEASURED_THREADS
    if measured is not None:
        speed = measured[1] * scale
        return (0.8 * speed, 1.25 * speed), (f"measured: {name} trains {measured[1]:g} patches/s on "
                                             f"{MEASURED_THREADS} CPU threads (benchmarks/models.py), ×{scale:g} "
                                             f"for {threads} here, ±25 %")
    return None, f"no CPU figure for {name} in benchmarks/models.py"


def estimate(config, rows: dict[str, int], *, trials: int = 1, parallel: int = 1, threads: int = 1) -> Work:
    train, evaluation = passes(config, rows)
    train, evaluation = train * trials, evaluation * trials
    gpus = config.run.num_workers * (config.run.gpus_per_worker if config.run.use_gpu else 0)
    speed, basis = rate(config, threads, gpus or 1)
    if speed is None:
        return Work(train, evaluation, None, basis)
    effective = 3 * train + evaluation  # forward-pass equivalents: a training pass is three
    # trials side by side on GPUs each have their own; on CPUs they share this machine's threads
    side_by_side = max(1, parallel) if config.run.use_gpu else 1
    seconds = tuple(effective / 3 / s / side_by_side for s in (speed[1], speed[0]))
    return Work(train, evaluation, seconds, basis)


def duration(seconds: float) -> str:
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.0f} min"
    if seconds < 72 * 3600:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:.1f} days"


def describe(work: Work) -> str:
    span = "unknown" if work.seconds is None else f"{duration(work.seconds[0])} to {duration(work.seconds[1])}"
    return (f"work: {work.train_passes:,} training and {work.eval_passes:,} evaluation patch passes; "
            f"time {span} ({work.basis})")
