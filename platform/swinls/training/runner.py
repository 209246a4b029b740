"""The driver of one run: save the resolved config, then run each block that is not done yet —
as a Ray Train `TorchTrainer` fit (DDP workers, Ray Data shards) or in this process (`local`).

Self-training needs a fit per block: the rows of a round's training set (labelled + pseudo-
labelled) only exist once the previous block has written its pseudo-labels.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from swinls import selftrain, storage
from swinls.checkpoints import RunStore
from swinls.config import to_dict
from swinls.experiment_config import ExperimentConfig, config_yaml
from swinls.data.selection import ShardData
from swinls.training.plan import Block, plan, resume_point


@dataclass
class RunResult:
    run_uri: str
    checkpoint: str | None
    history: list[dict] = field(default_factory=list)
    trained: bool = False  # False when the run was already complete: nothing ran, nothing was reported

    @property
    def final(self) -> dict:
        return self.history[-1] if self.history else {}


def run_uri_for(config: ExperimentConfig) -> str:
    return storage.join(config.storage, config.name)


def _block_done(blocks: list[Block], index: int, store: RunStore, run_uri: str) -> bool:
    first_pending, _ = resume_point(blocks, store.latest(), run_uri)
    return first_pending > blocks[index].phases[-1].index


def run_experiment(config: ExperimentConfig, *, run_uri: str | None = None, local: bool = False,
                   callbacks: list | None = None, printer=None, pid_file: str | None = None) -> RunResult:
    """Run what is not done yet of `config`; `printer` gets each epoch's report in this process,
    also when the epochs run in Ray Train workers (then without the checkpoint)."""
    run_uri = run_uri or run_uri_for(config)
    store = RunStore(run_uri)
    store.write_config(config_yaml(config))
    data = ShardData(config.data)
    normalization = data.normalization_record()
    blocks = plan(config)
    trained = False
    for index, block in enumerate(blocks):
        if _block_done(blocks, index, store, run_uri):
            continue
        trained = True
        if local:
            _run_local(config, run_uri, blocks, index, data, normalization, printer)
        elif printer is None:
            _run_ray(config, run_uri, blocks, index, data, normalization, callbacks, pid_file)
        else:
            from swinls.training.forwarding import forwarded_epochs

            with forwarded_epochs(printer, history=lambda: (store.latest() or {}).get("history", [])) as forwarder:
                _run_ray(config, run_uri, blocks, index, data, normalization, [*(callbacks or []), forwarder], pid_file)
    pointer = store.latest() or {}
    checkpoint = store.checkpoint_uri(pointer["checkpoint"]) if pointer else None
    history = pointer.get("history", [])
    if trained and history:
        _draw_curves(history, run_uri, config.name)
    return RunResult(run_uri, checkpoint, history, trained)


def _draw_curves(history: list[dict], run_uri: str, title: str) -> None:
    """curves.png beside the checkpoints; a picture that cannot be written is a warning, not a failed run."""
    import warnings

    from swinls.tracking.curves import write_curves

    try:
        write_curves(history, run_uri, title)
    except Exception as exc:  # noqa: BLE001 - the run itself is done and stored
        warnings.warn(f"{run_uri}: the learning curves were not drawn ({type(exc).__name__}: {exc})", stacklevel=2)


def needed_splits(data: ShardData, block: Block) -> list[str]:
    splits = ["train", "valid"] + (["holdout"] if data.holdout_regions else [])
    return splits + (["unlabeled"] if block.labels_round else [])


def resident_splits(data: ShardData, block: Block) -> tuple[str, ...]:
    """The splits a fit holds on each worker's device: while their projected bytes together stay
    within `data.resident_limit_mb` ("auto"), all ("always") or none ("never")."""
    from swinls.data.resident import fits_on_device

    chosen, total = [], 0
    for split in needed_splits(data, block):
        size = data.projected_bytes(split) + (data.projected_bytes("unlabeled") if split == "train" and block.train_with_round else 0)
        if fits_on_device(total + size, data.config.resident, data.config.resident_limit_mb):
            chosen.append(split)
            total += size
    return tuple(chosen)


def _run_local(config, run_uri, blocks, index, data, normalization, printer) -> None:
    from swinls.accel import pick_device
    from swinls.host_memory import keep_freed_memory
    from swinls.training.context import LocalContext
    from swinls.training.loop import run_block

    keep_freed_memory()
    ctx = LocalContext(data, pick_device(config.run.use_gpu), run_uri, blocks[index].train_with_round, printer=printer)
    run_block(config, run_uri, blocks, index, ctx, normalization)


def _datasets(data: ShardData, block: Block, run_uri: str, resident: tuple[str, ...] = (), seed: int = 0) -> dict:
    """Ray Data pipelines for the splits not held on the devices."""
    from swinls.data.ray_data import build_dataset

    datasets = {}
    for split in needed_splits(data, block):
        if split in resident:
            continue
        # training passes shuffle their block order by the run's seed, new every epoch
        datasets[split] = build_dataset(data, split, seed=seed if split == "train" else None)
        if split == "train" and block.train_with_round:
            pseudo = build_dataset(data, "unlabeled", seed=seed).map_batches(selftrain.PseudoLabeler(run_uri, block.train_with_round),
                                                                  batch_format="numpy")
            datasets[split] = datasets[split].union(pseudo)
    return datasets


def ray_storage(run_uri: str) -> tuple[str, object | None]:
    """Where Ray Train keeps its own run state, beside ours, on the same filesystem."""
    import pyarrow.fs as pafs

    target = storage.join(run_uri, "ray")
    if storage.is_s3(target):
        fs, path = storage.filesystem(target)
        return path, pafs.PyFileSystem(pafs.FSSpecHandler(fs))
    return storage.filesystem(target)[1], None


def scaling_config(run):
    """Ray Train's workers: CPUs each and, with GPUs, a share of one (trials can share a GPU)."""
    import ray.train

    resources = {"CPU": run.cpus_per_worker}
    if run.use_gpu:
        resources["GPU"] = run.gpus_per_worker
    return ray.train.ScalingConfig(num_workers=run.num_workers, use_gpu=run.use_gpu, resources_per_worker=resources)


def _train_worker(loop_config: dict) -> None:
    """What Ray Train runs on every worker. Only the workers import the networks (timm, about
    1.4 s a process): not the trial, nor Train's controller, which unpickle this."""
    from swinls.training.loop import worker_entry

    worker_entry(loop_config)


def _run_ray(config, run_uri, blocks, index, data, normalization, callbacks, pid_file) -> None:
    import ray.train
    from ray.train.torch import TorchTrainer

    from swinls.data.ray_data import split_data_config

    storage_path, filesystem = ray_storage(run_uri)
    resident = resident_splits(data, blocks[index])
    loop_config = {"experiment": to_dict(config), "run_uri": run_uri, "block": index, "normalization": normalization,
                   "pid_file": pid_file, "resident": list(resident)}
    trainer = TorchTrainer(
        _train_worker,
        train_loop_config=loop_config,
        scaling_config=scaling_config(config.run),
        run_config=ray.train.RunConfig(name=f"block-{index}", storage_path=storage_path, storage_filesystem=filesystem,
                                       failure_config=ray.train.FailureConfig(max_failures=config.run.max_failures),
                                       callbacks=callbacks or None),
        datasets=_datasets(data, blocks[index], run_uri, resident, config.run.seed) or None,
        dataset_config=split_data_config(config.data.deterministic),
    )
    trainer.fit()
