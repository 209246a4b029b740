"""Reading a split straight from its shards, without Ray: for tests, benchmarks and prediction."""

from __future__ import annotations

from typing import Iterator

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from swinls import storage
from swinls.data.selection import ShardData
from swinls.data.transform import BatchProjector


def iter_rows(data: ShardData, split: str, batch_size: int, shuffle_seed: int | None = None) -> Iterator[dict[str, np.ndarray]]:
    """Projected, normalised numpy batches of exactly `batch_size` rows (the last may be short)."""
    projector = BatchProjector.for_data(data, split)
    uris = data.shard_uris(split)
    if shuffle_seed is not None:
        uris = [uris[i] for i in np.random.default_rng(shuffle_seed).permutation(len(uris))]
    pending: list[pa.Table] = []
    held = 0
    for uri in uris:
        fs, path = storage.filesystem(uri)
        with fs.open(path, "rb") as handle:
            parquet = pq.ParquetFile(handle)
            for group in range(parquet.num_row_groups):
                table = projector.select(parquet.read_row_group(group, columns=projector.columns()))
                if shuffle_seed is not None:
                    order = np.random.default_rng([shuffle_seed, group, len(pending)]).permutation(table.num_rows)
                    table = table.take(order)
                pending.append(table)
                held += table.num_rows
                while held >= batch_size:
                    merged = pa.concat_tables(pending).combine_chunks()
                    yield projector(merged.slice(0, batch_size))
                    rest = merged.slice(batch_size)
                    pending, held = ([rest] if rest.num_rows else []), rest.num_rows
    if held:
        yield projector(pa.concat_tables(pending).combine_chunks())


def read_split(data: ShardData, split: str) -> dict[str, np.ndarray]:
    """A whole split in memory (small datasets and tests)."""
    parts = list(iter_rows(data, split, batch_size=256))
    if not parts:
        h, w = data.patch_shape
        return {"image": np.zeros((0, len(data.channels), h, w), np.float16),
                "mask": np.zeros((0, h, w), np.uint8), "key": np.zeros(0, np.int64)}
    return {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}
