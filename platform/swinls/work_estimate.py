"""How much work a run is, and about how long it takes, before it starts (`--dry-run`).

Work is counted in patch passes: every epoch trains on the training split and evaluates the
validation (and held-out) split; self-training first predicts the unlabelled split, then trains
on labelled + pseudo-labelled rows. A training pass costs three forward passes (forward, backward,
step); an evaluation pass one.

Time is a range, and its basis is printed with it:
- CPU: the lowest and highest training patches/s of three runs of `benchmarks/models.py` on a
  2-core VM (RGB, 2 torch threads; 2026-12-03 and 2026-12-04), scaled by the torch
  threads here; a model not measured there gets no time, only its count of passes.
- GPU: stage-1 training patches/s measured by `benchmarks/gpu_train.py` on one H200 (eager
  PyTorch, bf16, the split held on the device; 2026-12-04) at the batch sizes below; between them
  the step time is interpolated (at these sizes a step takes about as long at batch 16 as at 256:
  kernel launches, not arithmetic, bound it), beyond them extrapolated. Workers scale it linearly
  (an assumption: DDP on one node). An H100 is of the same class; smaller GPUs are slower.
Stage 2 (a frozen encoder) is counted as a full training pass: an upper bound.
"""

from __future__ import annotations

from dataclasses import dataclass

# benchmarks/models.py, 3 bands, 128×128: forward GFLOPs per patch and CPU training patches/s
# (lowest, highest of three runs)
MEASURED = {
    ("swinls", "nano"): (0.31, (37.5, 58.1)),
    ("swinls", "proxy"): (0.40, (29.5, 42.2)),
    ("swinls", "tiny"): (4.50, (7.5, 10.8)),
    ("swinls", "small"): (7.30, (4.5, 7.0)),
    ("swinls", "base"): (11.87, (3.1, 4.7)),
    ("unet", "resnet34"): (3.90, (9.8, 11.1)),
    ("deeplabv3", "resnet34"): (13.65, (4.4, 5.1)),
}
MEASURED_THREADS = 2
# benchmarks/gpu_train.py on one H200, eager bf16: (batch, training patches/s)
MEASURED_GPU = {
    ("swinls", "tiny"): ((16, 253.3), (64, 950.1), (256, 3294.8)),
    ("swinls", "base"): ((16, 148.4), (64, 572.8), (256, 2194.4)),
    ("unet", "resnet34"): ((16, 554.2), (64, 2174.5)),
    ("deeplabv3", "resnet34"): ((16, 554.5), (64, 2487.8)),
}
MEASURED_GPU_NAME = "one H200"


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
        points = MEASURED_GPU.get(key)
        if points is None:
            return None, f"no GPU figure for {name} in benchmarks/gpu_train.py"
        batch = config.data.batch_size
        speed = gpu_rate(points, batch) * gpus
        return (0.8 * speed, 1.25 * speed), (f"measured: {name} trains {gpu_rate(points, batch):.0f} patches/s at batch "
                                             f"{batch} on {MEASURED_GPU_NAME} (benchmarks/gpu_train.py), ×{gpus:g} "
                                             "GPU(s), ±25 %")
    scale = max(1, threads) / MEASURED_THREADS
    if measured is not None:
        low, high = measured[1]
        return (low * scale, high * scale), (f"measured: {name} trains {low:g}–{high:g} patches/s on "
                                             f"{MEASURED_THREADS} CPU threads over 3 runs (benchmarks/models.py), "
                                             f"×{scale:g} for {threads} here")
    return None, f"no CPU figure for {name} in benchmarks/models.py"


def gpu_rate(points: tuple[tuple[int, float], ...], batch: int) -> float:
    """Patches/s at `batch`: the step time interpolated linearly in the batch between measured
    points, extrapolated beyond the largest, and below the smallest no shorter than its step."""
    steps = [(b, b / rate) for b, rate in points]  # (batch, seconds a step)
    if batch <= steps[0][0] or len(steps) == 1:
        return batch / steps[0][1]
    pairs = list(zip(steps, steps[1:]))
    (b0, t0), (b1, t1) = next(((p, q) for p, q in pairs if batch <= q[0]), pairs[-1])
    return batch / (t0 + (t1 - t0) * (batch - b0) / (b1 - b0))


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
