"""The Ray Data pipeline: shards streamed from storage, projected and normalised by Ray tasks,
split across training workers, turned into augmented torch batches on each worker's device.

Small datasets (Landslide4Sense RGB is under 400 MB as float16) are materialised once in the
object store and re-iterated every epoch without touching storage again; large ones stream.
"""

from __future__ import annotations

import os
from typing import Iterator

from swinls import storage
from swinls.augment.ops import Augmenter
from swinls.data.batches import Batch, to_batch
from swinls.data.selection import ShardData
from swinls.data.transform import BatchProjector

TRAIN_SPLIT = "train"
ROWS_PER_BLOCK = 16


def should_materialize(data: ShardData, split: str) -> bool:
    choice = data.config.materialize
    if choice == "always":
        return True
    if choice == "never":
        return False
    return data.projected_bytes(split) <= data.config.materialize_limit_mb * 2**20


class ShardReader:
    """A Ray Data UDF: read one shard (only the needed columns), yield projected row groups.

    The manifest already lists every shard, so no listing or footer scan of the bucket is
    needed (Ray's read_parquet starts a pool of footer-reading actors on every pass, which on
    a small machine costs more than reading the data).
    """

    def __init__(self, projector: BatchProjector) -> None:
        self.projector = projector

    def __call__(self, units: dict):
        import pyarrow.parquet as pq

        for uri in units["uri"]:
            fs, path = storage.filesystem(str(uri))
            with fs.open(path, "rb") as handle:
                parquet = pq.ParquetFile(handle)
                for group in range(parquet.num_row_groups):
                    yield self.projector(parquet.read_row_group(group, columns=self.projector.columns()))


def build_dataset(data: ShardData, split: str, materialize: bool | None = None):
    import ray.data

    uris = data.shard_uris(split)
    if not uris:
        raise ValueError(f"split {split!r} of {data.config.uri} has no shards (regions: {', '.join(data.train_regions)})")
    units = ray.data.from_items([{"uri": uri} for uri in uris], override_num_blocks=len(uris))
    dataset = units.map_batches(ShardReader(BatchProjector.for_data(data)), batch_size=1, batch_format="numpy")
    if should_materialize(data, split) if materialize is None else materialize:
        # small blocks, so that workers share evaluation rows and shuffles have something to mix
        dataset = dataset.repartition(max(1, -(-data.rows(split) // ROWS_PER_BLOCK))).materialize()
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
