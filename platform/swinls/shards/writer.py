"""Rolling Parquet shard writer: bounded memory, content-addressed, atomic appearance.

Rows are buffered one row group at a time and written to a local spool file; when a shard is
full it is hashed and uploaded under `shards/<region>/<split>-<seq>-<sha256[:12]>.parquet`.
Names follow content, so re-ingesting the same input names the same files and nothing is
rewritten; a shard that already exists under its name is not uploaded again.
"""

from __future__ import annotations

import os
import tempfile

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from swinls import storage
from swinls.shards.manifest import ShardEntry
from swinls.shards.schema import IGNORE, META_COLUMNS

BAND_COMPRESSIONS = ("none", "lz4", "zstd")
ZSTD_LEVEL = 1  # measured: level 1 keeps most of zstd's size gain and decodes fastest
PARQUET_OPTIONS = dict(
    use_dictionary=["region", "split"],
    write_statistics=["id", "region", "split", "labeled", "has_landslide", "positive_pixels"],
)


def column_compression(schema: pa.Schema, band_compression: str) -> dict[str, dict]:
    """zstd for the ids and masks (mostly zeros: a fraction of their size), `band_compression`
    for the image planes. Float16 reflectance barely compresses (zstd saved 15 % on the synthetic
    regions) while decoding it took most of a streamed epoch's CPU: 1,700 rows/s of 14 bands
    against 12,000 uncompressed (benchmarks/input_pipeline.py), so bands are stored plain."""
    if band_compression not in BAND_COMPRESSIONS:
        raise ValueError(f"band compression must be one of {', '.join(BAND_COMPRESSIONS)}, got {band_compression!r}")
    bands = set(schema.names[len(META_COLUMNS):-1])
    codecs = {name: band_compression if name in bands else "zstd" for name in schema.names}
    levels = {name: ZSTD_LEVEL for name, codec in codecs.items() if codec == "zstd"}
    return dict(compression=codecs, compression_level=levels)


class ShardWriter:
    def __init__(self, dataset_uri: str, region: str, split: str, schema: pa.Schema,
                 rows_per_shard: int, rows_per_group: int, spool_dir: str, band_compression: str = "none") -> None:
        self.dataset_uri = dataset_uri
        self.region, self.split = region, split
        self.schema = schema
        self.rows_per_shard, self.rows_per_group = rows_per_shard, rows_per_group
        self.spool_dir = spool_dir
        self.compression = column_compression(schema, band_compression)
        self.entries: list[ShardEntry] = []
        self.created: list[str] = []  # URIs this writer uploaded (for cleanup on failure)
        self._buffer: dict[str, list] = {name: [] for name in schema.names}
        self._writer: pq.ParquetWriter | None = None
        self._spool: str | None = None
        self._stats = self._empty_stats()

    @staticmethod
    def _empty_stats() -> dict:
        return dict(rows=0, labeled_rows=0, rows_with_landslide=0, positive_pixels=0, labeled_pixels=0)

    def add(self, meta: dict, planes: list[bytes], mask: np.ndarray | None) -> None:
        for name in META_COLUMNS:
            self._buffer[name].append(meta.get(name))
        band_names = self.schema.names[len(META_COLUMNS):-1]
        for name, plane in zip(band_names, planes):
            self._buffer[name].append(plane)
        self._buffer["mask"].append(None if mask is None else np.ascontiguousarray(mask, dtype=np.uint8).tobytes())
        stats = self._stats
        stats["rows"] += 1
        if mask is not None:
            stats["labeled_rows"] += 1
            positives = int((mask == 1).sum())
            stats["positive_pixels"] += positives
            stats["labeled_pixels"] += int((mask != IGNORE).sum())
            stats["rows_with_landslide"] += int(positives > 0)
        if len(self._buffer["id"]) >= self.rows_per_group:
            self._flush_group()
        if stats["rows"] >= self.rows_per_shard:
            self._finish_shard()

    def _flush_group(self) -> None:
        if not self._buffer["id"]:
            return
        if self._writer is None:
            fd, self._spool = tempfile.mkstemp(dir=self.spool_dir, suffix=".parquet")
            os.close(fd)
            self._writer = pq.ParquetWriter(self._spool, self.schema, **self.compression, **PARQUET_OPTIONS)
        batch = pa.RecordBatch.from_pydict(self._buffer, schema=self.schema)
        self._writer.write_batch(batch, row_group_size=self.rows_per_group)
        self._buffer = {name: [] for name in self.schema.names}

    def _finish_shard(self) -> None:
        self._flush_group()
        if self._writer is None:
            return
        self._writer.close()
        self._writer = None
        spool, self._spool = self._spool, None
        try:
            digest = storage.sha256_file(spool)
            seq = len(self.entries)
            relative = f"shards/{self.region}/{self.split}-{seq:05d}-{digest[:12]}.parquet"
            target = storage.join(self.dataset_uri, relative)
            if not storage.exists(target):
                storage.put_file_atomic(spool, target)
                self.created.append(target)
            self.entries.append(ShardEntry(path=relative, region=self.region, split=self.split,
                                           sha256=digest, bytes=os.path.getsize(spool), **self._stats))
        finally:
            os.unlink(spool)
        self._stats = self._empty_stats()

    def close(self) -> list[ShardEntry]:
        self._finish_shard()
        return self.entries

    def abort(self) -> None:
        if self._writer is not None:
            self._writer.close()
            self._writer = None
        if self._spool and os.path.exists(self._spool):
            os.unlink(self._spool)
