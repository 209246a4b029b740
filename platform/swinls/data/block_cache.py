"""A node-local disk cache of a streamed split's projected blocks.

A split too large to hold in memory streams from storage every epoch: each pass reads every
shard again, decodes it and projects it (band selection, normalisation, row keys). With the
cache, the first pass does that once per shard and keeps the result on the node's local disk;
later passes on that node read the finished arrays back (memory-mapped), which costs a copy.
This is what a cloud GPU node's local NVMe is for: the bucket is read once per node, not once
per epoch.

An entry is keyed by the shard's sha256 from the manifest and by everything the projection
depends on, so a changed shard, band set, normalisation or validation carve never reads an old
entry. An entry appears by renaming a finished folder (a pass that stops halfway leaves no
entry), is checked against its recorded sizes when read (a damaged one is removed and the shard
read from storage again), and the least recently used entries go when the cache would pass its
budget: `data.stream_cache_mb`, and never more than half of the disk's free space.

No Ray here: the shard reader that Ray Data runs calls it.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import tempfile
import time
import uuid
from pathlib import Path
from typing import Iterable, Iterator

import numpy as np

ARRAYS = ("image", "mask", "key")
META = "meta.json"
STALE_TEMPORARY_S = 3600.0  # an unfinished entry this old belongs to a process that died


def default_root() -> Path:
    return Path(tempfile.gettempdir()) / "swinls-stream-cache"


class BlockCache:
    def __init__(self, root: str | Path, limit_mb: int) -> None:
        self.root, self.limit = Path(root), int(limit_mb) * 2**20

    def entry(self, shard_sha256: str, signature: str) -> Path:
        return self.root / hashlib.sha256(f"{shard_sha256}\n{signature}".encode()).hexdigest()[:40]

    def read(self, entry: Path, rows_per_block: int) -> Iterator[dict[str, np.ndarray]] | None:
        """The entry's rows in blocks, or None when it is absent or damaged (then removed)."""
        arrays = self._open(entry)
        return None if arrays is None else _blocks(arrays, rows_per_block)

    def _open(self, entry: Path) -> dict[str, np.ndarray] | None:
        try:
            meta = json.loads((entry / META).read_text())
            arrays = {}
            for name in ARRAYS:
                spec = meta[name]
                path = entry / f"{name}.bin"
                shape, dtype = tuple(spec["shape"]), np.dtype(spec["dtype"])
                if path.stat().st_size != int(np.prod(shape)) * dtype.itemsize:
                    raise ValueError(f"{path}: {path.stat().st_size} bytes, expected {shape} of {dtype}")
                arrays[name] = np.memmap(path, dtype=dtype, mode="r", shape=shape) if shape[0] else np.empty(shape, dtype)
            os.utime(entry)  # most recently used
            return arrays
        except FileNotFoundError:  # absent, or evicted by another process meanwhile
            return None
        except (OSError, ValueError, KeyError, TypeError):  # damaged: read the shard again
            shutil.rmtree(entry, ignore_errors=True)
            return None

    def write_through(self, entry: Path, blocks: Iterable[dict[str, np.ndarray]]) -> Iterator[dict[str, np.ndarray]]:
        """Yield `blocks` unchanged while writing them to a temporary folder that becomes the
        entry once the last block is written; a pass that stops early, a full disk or a budget
        too small leaves no entry and costs the pass nothing."""
        self.root.mkdir(parents=True, exist_ok=True)
        temporary = self.root / f".tmp-{uuid.uuid4().hex}"
        temporary.mkdir()
        rows, specs, writing = 0, {}, True  # specs: each array's row shape and dtype
        try:
            with contextlib.ExitStack() as files:
                handles = {name: files.enter_context(open(temporary / f"{name}.bin", "wb")) for name in ARRAYS}
                for block in blocks:
                    if writing:
                        try:
                            for name, handle in handles.items():
                                array = np.ascontiguousarray(block[name])
                                handle.write(memoryview(array).cast("B"))
                                specs[name] = {"shape": list(array.shape[1:]), "dtype": array.dtype.str}
                            rows += len(block["key"])
                        except OSError:  # the disk is full: stream without keeping
                            writing = False
                    yield block
            if writing and rows:
                self._commit(temporary, entry, {name: {**spec, "shape": [rows, *spec["shape"]]} for name, spec in specs.items()})
        finally:
            shutil.rmtree(temporary, ignore_errors=True)

    def _commit(self, temporary: Path, entry: Path, meta: dict) -> None:
        (temporary / META).write_text(json.dumps(meta))
        if not self._make_room(_size(temporary)):
            return
        try:
            os.rename(temporary, entry)
        except OSError:  # another reader on this node finished the same entry first: keep theirs
            pass

    def _make_room(self, size: int) -> bool:
        """Remove least recently used entries until `size` more bytes fit the budget; False
        when they cannot (the entry alone is too large)."""
        entries = [(_mtime(path), _size(path), path) for path in self._entries()]
        used = sum(entry_size for _, entry_size, _ in entries)
        budget = min(self.limit, (shutil.disk_usage(self.root).free + used) // 2)
        if size > budget:
            return False
        for _, entry_size, path in sorted(entries, key=lambda entry: entry[0]):
            if used + size <= budget:
                break
            shutil.rmtree(path, ignore_errors=True)
            used -= entry_size
        return used + size <= budget

    def _entries(self) -> list[Path]:
        """Finished entries; unfinished ones left by a process that died are removed."""
        entries = []
        for path in self.root.iterdir():
            if not path.name.startswith(".tmp-"):
                entries.append(path)
            elif time.time() - _mtime(path) > STALE_TEMPORARY_S:
                shutil.rmtree(path, ignore_errors=True)
        return entries


def _mtime(path: Path) -> float:
    try:
        return path.stat().st_mtime
    except FileNotFoundError:  # removed by another process meanwhile
        return time.time()


def _size(folder: Path) -> int:
    try:
        return sum(path.stat().st_size for path in folder.iterdir())
    except FileNotFoundError:  # removed by another process meanwhile
        return 0


def _blocks(arrays: dict[str, np.ndarray], rows_per_block: int) -> Iterator[dict[str, np.ndarray]]:
    rows = len(arrays["key"])
    for start in range(0, rows, rows_per_block):
        # copies: Ray takes the block into its object store, and the file may be evicted later
        yield {name: np.array(array[start:start + rows_per_block]) for name, array in arrays.items()}
