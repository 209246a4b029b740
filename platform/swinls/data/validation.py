"""Where each training region's validation comes from: its `ValidData` patches when they are
labelled, else a carve of its `TrainData`.

The 2022 Landslide4Sense release ships `ValidData/img` without masks; validating on it counts no
pixel at all. A region whose validation split holds no labelled pixel is therefore validated on a
fixed fraction of its own training patches, which it then does not train on. Which patches: those
whose hash of (region, patch id) falls below the fraction — the same patches on every run, every
worker and every ingest, and a region added later changes nothing for the others. When the
region's `ValidData` masks arrive and are ingested, its validation is `ValidData` again and every
training patch trains.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Iterable, Literal

import numpy as np
import pyarrow as pa

from swinls.shards.manifest import Manifest

CARVE_SALT = "swinls/valid-carve"


def carve_draw(region: str, patch_id: str) -> float:
    """A patch's fixed draw in [0, 1)."""
    digest = hashlib.blake2b(f"{CARVE_SALT}/{region}/{patch_id}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "little") / 2**64


def in_carve(region: str, patch_id: str, fraction: float) -> bool:
    return carve_draw(region, patch_id) < fraction


@dataclass(frozen=True)
class RowFilter:
    """The rows of a carved region's training shards one side keeps (rows of other regions pass)."""

    carved: tuple[str, ...]
    fraction: float
    keep: Literal["train", "valid"]

    def mask(self, regions: Iterable[str], ids: Iterable[str]) -> np.ndarray:
        carved = set(self.carved)
        keep = []
        for region, patch_id in zip(regions, ids):
            if region not in carved:
                keep.append(True)
            else:
                keep.append(in_carve(region, patch_id, self.fraction) == (self.keep == "valid"))
        return np.asarray(keep, dtype=bool)

    def apply(self, table: pa.Table) -> pa.Table:
        mask = self.mask(table.column("region").to_pylist(), table.column("id").to_pylist())
        return table if mask.all() else table.filter(pa.array(mask))


@dataclass(frozen=True)
class ValidationPlan:
    fraction: float
    labelled: tuple[str, ...]  # validated on their own labelled ValidData
    carved: tuple[str, ...]  # validated on the carve of their TrainData

    def row_filter(self, split: str) -> RowFilter | None:
        if not self.carved or split not in ("train", "valid"):
            return None
        return RowFilter(self.carved, self.fraction, split)

    def shards(self, manifest: Manifest, split: str) -> list:
        """The shards a split reads before row filtering: training reads every training shard,
        validation the labelled regions' ValidData and the carved regions' TrainData."""
        if split == "train":
            return manifest.shards(["train"], [*self.labelled, *self.carved])
        if split == "valid":
            return [*manifest.shards(["valid"], self.labelled), *manifest.shards(["train"], self.carved)]
        raise ValueError(f"a validation plan has no split {split!r}")

    def describe(self) -> str:
        """The run's first line about its validation."""
        parts = []
        if self.labelled:
            parts.append(f"ValidData of {', '.join(self.labelled)}")
        if self.carved:
            parts.append(f"{self.fraction:.0%} of TrainData carved out of {', '.join(self.carved)} "
                         "(its ValidData has no labelled pixel; data.valid_fraction; those patches are not trained on)")
        return "validation: " + "; ".join(parts) if parts else "validation: none (no training region)"

    def record(self) -> dict:
        """What travels into checkpoints and model cards."""
        return {"source": "carved" if self.carved and not self.labelled else "ValidData" if not self.carved else "mixed",
                "fraction": self.fraction, "valid_data_regions": list(self.labelled), "carved_regions": list(self.carved)}


def labelled_valid_pixels(manifest: Manifest, region: str) -> int:
    return sum(s.labeled_pixels for s in manifest.shards(["valid"], [region]))


def plan_validation(manifest: Manifest, regions: Iterable[str], fraction: float) -> ValidationPlan:
    labelled, carved = [], []
    for region in regions:
        (labelled if labelled_valid_pixels(manifest, region) > 0 else carved).append(region)
    return ValidationPlan(fraction, tuple(labelled), tuple(carved))
