"""The Ray Data pipeline: shards streamed from storage, projected and normalised by Ray tasks,
split across training workers, turned into augmented torch batches on each worker's device.

Small datasets (Landslide4Sense RGB is under 400 MB as float16) are materialised once in the
object store and re-iterated every epoch without touching storage again; large ones stream.
"""

from __future__ import annotations

import contextlib
from typing import Iterator

import numpy as np
from fsspec.implementations.local import LocalFileSystem

from swinls import storage
from swinls.augment.ops import Augmenter
from swinls.bands import BANDS
from swinls.data.batches import Batch, on_device, to_batch
from swinls.data.block_cache import BlockCache, default_root
from swinls.data.selection import ShardData
from swinls.data.transform import BatchProjector

TRAIN_SPLIT = "train"
ROWS_PER_BLOCK = 16
ROWS_PER_STREAMED_BLOCK = 32
WHOLE_OBJECT_FRACTION = 0.75


def should_materialize(data: ShardData, split: str) -> bool:
    choice = data.config.materialize
    if choice == "always":
        return True
    if choice == "never":
        return False
    return data.projected_bytes(split) <= data.config.materialize_limit_mb * 2**20


class ShardReader:
    """A Ray Data UDF: read one shard (only the needed columns), yield it projected in blocks of
    `ROWS_PER_STREAMED_BLOCK` rows (a row group is a whole shard by default: 117 MB of 14 bands).
    With a `cache`, a shard projected once on a node is read back from that node's disk on later
    passes (`block_cache.py`); a unit without its sha256 is never cached.

    The manifest already lists every shard, so no listing or footer scan of the bucket is
    needed (Ray's read_parquet starts a pool of footer-reading actors on every pass, which on
    a small machine costs more than reading the data).
    """

    def __init__(self, projector: BatchProjector, rows_per_block: int = ROWS_PER_STREAMED_BLOCK,
                 cache: tuple[str, int] | None = None) -> None:
        self.projector, self.rows_per_block, self.cache = projector, rows_per_block, cache
        # most of a shard is its bands: with most of them needed, one GET of the whole object
        # beats a footer request and then ranges
        self.whole_object = len(projector.inputs) >= WHOLE_OBJECT_FRACTION * len(BANDS)

    def __call__(self, units: dict):
        from swinls.host_memory import keep_freed_memory

        keep_freed_memory()  # a shard is ~100 MB through several buffers: reuse pages, don't fault them
        digests = units.get("sha256", [None] * len(units["uri"]))
        for uri, digest in zip(units["uri"], digests):
            if not (self.cache and digest):
                yield from self._project(str(uri))
                continue
            cache = BlockCache(*self.cache)
            entry = cache.entry(str(digest), self.projector.signature())
            cached = cache.read(entry, self.rows_per_block)
            yield from cached if cached is not None else cache.write_through(entry, self._project(str(uri)))

    def _project(self, uri: str):
        with _open_shard(uri, self.projector.columns(), self.whole_object) as parquet:
            for group in range(parquet.num_row_groups):
                table = self.projector.select(parquet.read_row_group(group, columns=self.projector.columns()))
                for start in range(0, table.num_rows, self.rows_per_block):
                    yield self.projector(table.slice(start, self.rows_per_block))


@contextlib.contextmanager
def _open_shard(uri: str, columns: list[str], whole_object: bool = False):
    """A shard as a ParquetFile: from object storage, the whole object in one request or the
    footer and then only the byte ranges of `columns`, fetched concurrently; a local file read
    by pyarrow itself (fsspec's range cache would only add copies)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from fsspec.parquet import open_parquet_file

    fs, path = storage.filesystem(uri)
    if isinstance(fs, LocalFileSystem):
        yield pq.ParquetFile(path, memory_map=True)
        return
    if whole_object:
        yield pq.ParquetFile(pa.BufferReader(fs.cat_file(path)))
        return
    with open_parquet_file(path, fs=fs, columns=columns, engine="pyarrow") as handle:
        yield pq.ParquetFile(handle)


def build_dataset(data: ShardData, split: str, materialize: bool | None = None, seed: int | None = None):
    """The split's rows as a Ray dataset. With a `seed` its blocks come in a new order on every
    pass (every epoch), the same orders for the same seed: for a stream, the order in which
    shards are read, so that a pass mixes regions instead of reading them one after another as
    the manifest lists them; for a materialised split, the order of its small blocks."""
    import ray.data

    uris = data.shard_uris(split)
    if not uris:
        raise ValueError(f"split {split!r} of {data.config.uri} has no shards (regions: {', '.join(data.train_regions)})")
    units = ray.data.from_items([{"uri": uri, "sha256": shard.sha256} for uri, shard in zip(uris, data.shards(split))],
                                override_num_blocks=len(uris))
    # rows in block order whatever task finishes first: the same seed gives the same run
    units.context.execution_options.preserve_order = data.config.deterministic
    materialized = should_materialize(data, split) if materialize is None else materialize
    if seed is not None and not materialized:
        units = units.randomize_block_order(seed=_per_pass(seed))
    cache = None if materialized else stream_cache(data.config)
    dataset = units.map_batches(ShardReader(BatchProjector.for_data(data, split), cache=cache), batch_size=1,
                                batch_format="numpy")
    if materialized:
        # small blocks, so that workers share evaluation rows and shuffles have something to mix
        dataset = dataset.repartition(max(1, -(-data.rows(split) // ROWS_PER_BLOCK))).materialize()
        if seed is not None:
            dataset = dataset.randomize_block_order(seed=_per_pass(seed))
    return dataset


def stream_cache(config) -> tuple[str, int] | None:
    """(folder, budget in MB) of the node-local cache a streamed split uses, None when off."""
    if config.stream_cache_mb <= 0:
        return None
    return (config.stream_cache_dir or str(default_root()), config.stream_cache_mb)


def _per_pass(seed: int):
    """Ray's seed that changes with every execution of the dataset (an epoch), reproducibly."""
    from ray.data import RandomSeedConfig

    return RandomSeedConfig(seed=seed, reseed_after_execution=True)


def split_data_config(deterministic: bool = True):
    """Training rows are split equally (DDP needs the same number of steps on every worker; at
    most world_size-1 rows sit out an epoch); evaluation splits are split exactly, so every row
    is counted once in the metrics. `deterministic` keeps block order through the split, which
    otherwise follows task timing and makes two runs of one config differ after the first epoch."""
    import copy

    import ray.train

    options = ray.train.DataConfig.default_ingest_options()
    options.preserve_order = deterministic

    class ExactEvaluationSplit(ray.train.DataConfig):
        def configure(self, datasets, world_size, worker_handles, worker_node_ids, **kwargs):
            train = {k: v for k, v in datasets.items() if k == TRAIN_SPLIT}
            output = super().configure(train, world_size, worker_handles, worker_node_ids, **kwargs)
            for name, dataset in datasets.items():
                if name == TRAIN_SPLIT:
                    continue
                dataset = dataset.copy(dataset)
                dataset.context.execution_options = copy.deepcopy(options)
                for rank, iterator in enumerate(dataset.streaming_split(world_size, equal=False)):
                    output[rank][name] = iterator
            return output

    return ExactEvaluationSplit(execution_options=options)


def _collate(augmenter: Augmenter | None, epoch: int):
    """Rows to tensors, run by Ray in its prefetch threads so that it overlaps with training.
    Without an augmenter the rows keep their stored dtypes (float16, uint8): half the bytes to
    pin and copy to the device, widened there."""
    import torch
    from ray.data.collate_fn import NumpyBatchCollateFn

    class Collate(NumpyBatchCollateFn):
        def __call__(self, rows):
            if augmenter is not None:
                batch = to_batch(rows, "cpu", augmenter, epoch)
                return {"image": batch.image, "mask": batch.mask, "key": batch.keys}
            return {name: torch.from_numpy(np.array(rows[name], copy=True)) for name in ("image", "mask", "key")}

    return Collate()


def iter_worker_batches(iterator, *, batch_size: int, device="cpu", augmenter: Augmenter | None = None,
                        epoch: int = 0, shuffle_buffer: int = 0, seed: int = 0, prefetch: int = 2,
                        augment_in_prefetch: bool = False) -> Iterator[Batch]:
    """One epoch of a worker's shard as torch batches on `device`, augmented when given an
    augmenter — on the device, in the consuming thread, by default. `augment_in_prefetch` moves
    CPU augmentation into Ray's prefetch threads: faster for a pure input pipeline, but beside
    a training step it oversubscribes the cores torch's own threads already use. Batches reach
    a GPU from pinned memory with non-blocking copies; nothing here waits for the device."""
    import torch

    device = torch.device(device)
    in_prefetch = augment_in_prefetch and device.type == "cpu"
    shuffle = {"local_shuffle_buffer_size": shuffle_buffer, "local_shuffle_seed": seed * 100_003 + epoch} if shuffle_buffer else {}
    batches = iterator.iter_torch_batches(batch_size=batch_size, collate_fn=_collate(augmenter if in_prefetch else None, epoch),
                                          device=device, prefetch_batches=prefetch, pin_memory=device.type == "cuda", **shuffle)
    for tensors in batches:
        yield on_device(tensors["image"], tensors["mask"], tensors["key"], None if in_prefetch else augmenter, epoch)
