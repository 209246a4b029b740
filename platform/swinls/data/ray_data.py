"""The Ray Data pipeline: shards streamed from storage, projected and normalised by Ray tasks,
split across training workers, turned into augmented torch batches on each worker's device.

Small datasets (Landslide4Sense RGB is under 400 MB as float16) are materialised once in the
object store and re-iterated every epoch without touching storage again; large ones stream.
"""

from __future__ import annotations

import os
from typing import Iterator

import pyarrow.fs as pafs

from swinls import storage
from swinls.augment import Augmenter
from swinls.data.batches import Batch, to_batch
from swinls.data.selection import ShardData
from swinls.data.transform import BatchProjector

TRAIN_SPLIT = "train"


def pyarrow_filesystem(uri: str) -> tuple[pafs.FileSystem, str]:
    """The same fsspec filesystem `storage` uses, seen by pyarrow (no credentials inside)."""
    fs, path = storage.filesystem(uri)
    return pafs.PyFileSystem(pafs.FSSpecHandler(fs)), path


def should_materialize(data: ShardData, split: str) -> bool:
    choice = data.config.materialize
    if choice == "always":
        return True
    if choice == "never":
        return False
    return data.projected_bytes(split) <= data.config.materialize_limit_mb * 2**20


def build_dataset(data: ShardData, split: str, materialize: bool | None = None):
    import ray.data

    uris = data.shard_uris(split)
    if not uris:
        raise ValueError(f"split {split!r} of {data.config.uri} has no shards (regions: {', '.join(data.train_regions)})")
    filesystem, _ = pyarrow_filesystem(uris[0])
    paths = [storage.filesystem(u)[1] for u in uris]
    projector = BatchProjector.for_data(data)
    dataset = ray.data.read_parquet(paths, filesystem=filesystem, columns=projector.columns())
    dataset = dataset.map_batches(projector, batch_format="pyarrow", batch_size=32, zero_copy_batch=True)
    if should_materialize(data, split) if materialize is None else materialize:
        dataset = dataset.materialize()
    return dataset


def split_data_config():
    """Training rows are split equally (DDP needs the same number of steps on every worker; at
    most world_size-1 rows sit out an epoch); evaluation splits are split exactly, so every row
    is counted once in the metrics."""
    import ray.train

    class ExactEvaluationSplit(ray.train.DataConfig):
        def configure(self, datasets, world_size, worker_handles, worker_node_ids, **kwargs):
            train = {k: v for k, v in datasets.items() if k == TRAIN_SPLIT}
            output = super().configure(train, world_size, worker_handles, worker_node_ids, **kwargs)
            for name, dataset in datasets.items():
                if name == TRAIN_SPLIT:
                    continue
                dataset = dataset.copy(dataset)
                dataset.context.execution_options = self.default_ingest_options()
                for rank, iterator in enumerate(dataset.streaming_split(world_size, equal=False)):
                    output[rank][name] = iterator
            return output

    return ExactEvaluationSplit()


def iter_worker_batches(iterator, *, batch_size: int, device="cpu", augmenter: Augmenter | None = None,
                        epoch: int = 0, shuffle_buffer: int = 0, seed: int = 0) -> Iterator[Batch]:
    """One epoch of a worker's shard as torch batches (augmented when an augmenter is given)."""
    shuffle = {"local_shuffle_buffer_size": shuffle_buffer, "local_shuffle_seed": seed * 100_003 + epoch} if shuffle_buffer else {}
    for rows in iterator.iter_batches(batch_size=batch_size, batch_format="numpy", prefetch_batches=2, **shuffle):
        yield to_batch(rows, device, augmenter, epoch)


def local_cpus(training_workers: int, cpus_per_worker: float = 1.0) -> int:
    """Logical CPUs for a local Ray: the machine's, but always room for Ray Data beside training
    (on a 2-core machine, 2 training workers holding both CPUs would starve the pipeline)."""
    return max(os.cpu_count() or 1, int(training_workers * cpus_per_worker)) + 2


def init_local_ray(training_workers: int = 1, num_cpus: int | None = None, **kwargs):
    import ray

    if ray.is_initialized():
        return
    ray.init(num_cpus=num_cpus or local_cpus(training_workers), include_dashboard=False,
             log_to_driver=kwargs.pop("log_to_driver", True), **kwargs)
