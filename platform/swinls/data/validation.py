"""Where each training region's validation comes from: its `ValidData` patches when they are
labelled, else a carve of its `TrainData`.

The 2022 Landslide4Sense release ships `ValidData/img` without masks; validating on it counts no
pixel at all. A region whose validation split holds no labelled pixel is therefore validated on a
fixed fraction of its own training patches, which it then does not train on. Which patches: each
patch draws a fixed number from a hash of (region, patch id), and the region's ⌈fraction × n⌉
lowest draws validate (at least one patch, and at least one left to train on). The same patches on
every run, every worker and every ingest of the same source; a region added later changes nothing
for the others, and patches added to a region move its carve by at most their own number. When the
region's `ValidData` masks arrive and are ingested, its validation is `ValidData` again and every
training patch trains.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass
from functools import lru_cache
from typing import Iterable, Literal

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from swinls import storage
from swinls.shards.manifest import Manifest

CARVE_SALT = "swinls/valid-carve"
VERDICT_SALT = "swinls/verdict"  # another draw: which validation patches a verdict keeps to itself


def carve_draw(region: str, patch_id: str, salt: str = CARVE_SALT) -> float:
    """A patch's fixed draw in [0, 1)."""
    digest = hashlib.blake2b(f"{salt}/{region}/{patch_id}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "little") / 2**64


def carve_size(patches: int, fraction: float) -> int:
    """How many of a region's training patches validate."""
    if patches < 2:
        return 0  # one patch cannot be both trained and validated on
    return min(patches - 1, max(1, math.ceil(fraction * patches)))


def carve_cutoff(region: str, ids: Iterable[str], fraction: float) -> float:
    """The draw at or below which a patch of the region validates (-1: none does)."""
    draws = sorted(carve_draw(region, patch_id) for patch_id in ids)
    size = carve_size(len(draws), fraction)
    return draws[size - 1] if size else -1.0


@dataclass(frozen=True)
class RowFilter:
    """The rows of a carved region's training shards one side keeps (rows of other regions pass)."""

    cutoffs: tuple[tuple[str, float], ...]  # (carved region, its cutoff draw)
    keep: Literal["train", "valid", "verdict"]
    verdict: float = 0.0  # the share of validation set aside for the verdict (`verdict` keeps it, `valid` the rest)

    @property
    def carved(self) -> tuple[str, ...]:
        return tuple(region for region, _ in self.cutoffs)

    def mask(self, regions: Iterable[str], ids: Iterable[str]) -> np.ndarray:
        cutoffs = dict(self.cutoffs)
        keep = []
        for region, patch_id in zip(regions, ids):
            validates = region not in cutoffs or carve_draw(region, patch_id) <= cutoffs[region]
            if self.keep == "train":
                keep.append(region not in cutoffs or not validates)
            elif not self.verdict:
                keep.append(validates)
            else:
                set_aside = carve_draw(region, patch_id, VERDICT_SALT) < self.verdict
                keep.append(validates and set_aside == (self.keep == "verdict"))
        return np.asarray(keep, dtype=bool)

    def apply(self, table: pa.Table) -> pa.Table:
        mask = self.mask(table.column("region").to_pylist(), table.column("id").to_pylist())
        return table if mask.all() else table.filter(pa.array(mask))


@dataclass(frozen=True)
class ValidationPlan:
    fraction: float
    labelled: tuple[str, ...]  # validated on their own labelled ValidData
    carved: tuple[str, ...]  # validated on the carve of their TrainData
    cutoffs: tuple[tuple[str, float], ...] = ()  # per carved region (see carve_cutoff)
    carved_rows: tuple[tuple[str, int], ...] = ()  # per carved region, the patches that validate
    verdict: float = 0.0  # of the validation patches, the share only a verdict sees

    def row_filter(self, split: str) -> RowFilter | None:
        if split not in ("train", "valid", "verdict") or not (self.carved or (self.verdict and split != "train")):
            return None
        return RowFilter(self.cutoffs, split, self.verdict)

    def shards(self, manifest: Manifest, split: str) -> list:
        """The shards a split reads before row filtering: training reads every training shard,
        validation the labelled regions' ValidData and the carved regions' TrainData."""
        if split == "train":
            return manifest.shards(["train"], [*self.labelled, *self.carved])
        if split in ("valid", "verdict"):
            return [*manifest.shards(["valid"], self.labelled), *manifest.shards(["train"], self.carved)]
        raise ValueError(f"a validation plan has no split {split!r}")

    def describe(self) -> str:
        """The run's first line about its validation."""
        parts = []
        if self.labelled:
            parts.append(f"ValidData of {', '.join(self.labelled)}")
        if self.carved:
            counts = dict(self.carved_rows)
            each = ", ".join(f"{region} ({counts.get(region, 0)} patches)" for region in self.carved)
            parts.append(f"{self.fraction:.0%} of TrainData carved out of {each}, not trained on "
                         "(no labelled pixel in its ValidData; data.valid_fraction)")
        if parts and self.verdict:
            parts.append(f"{self.verdict:.0%} of it set aside by patch id for the verdict, validated on by no trial")
        return "validation: " + "; ".join(parts) if parts else "validation: none (no training region)"

    def record(self) -> dict:
        """What travels into checkpoints and model cards."""
        return {"source": "carved" if self.carved and not self.labelled else "ValidData" if not self.carved else "mixed",
                "fraction": self.fraction, "valid_data_regions": list(self.labelled), "carved_regions": list(self.carved)}


def labelled_valid_pixels(manifest: Manifest, region: str) -> int:
    return sum(s.labeled_pixels for s in manifest.shards(["valid"], [region]))


@lru_cache(maxsize=256)
def _training_ids(uris: tuple[str, ...]) -> tuple[str, ...]:
    """The patch ids in a region's training shards (the id column only; shards are immutable, so
    a process reads each set once)."""
    ids: list[str] = []
    for uri in uris:
        fs, path = storage.filesystem(uri)
        with fs.open(path, "rb") as handle:
            ids += pq.read_table(handle, columns=["id"]).column("id").to_pylist()
    return tuple(ids)


def plan_validation(manifest: Manifest, uri: str, regions: Iterable[str], fraction: float,
                    verdict: float = 0.0) -> ValidationPlan:
    """Each region's validation; a carve's cutoff read from the ids of the region's training shards
    in the dataset at `uri`."""
    labelled, carved, cutoffs, sizes = [], [], [], []
    for region in regions:
        if labelled_valid_pixels(manifest, region) > 0:
            labelled.append(region)
            continue
        ids = _training_ids(tuple(storage.join(uri, s.path) for s in manifest.shards(["train"], [region])))
        carved.append(region)
        cutoffs.append((region, carve_cutoff(region, ids, fraction)))
        sizes.append((region, carve_size(len(ids), fraction)))
    return ValidationPlan(fraction, tuple(labelled), tuple(carved), tuple(cutoffs), tuple(sizes), verdict)
