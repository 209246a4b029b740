"""Which shards feed which split, with which bands and which normalisation.

Splits of an experiment:
  train      the `train` shards of the training regions (less the validation carve, below)
  valid      the labelled `valid` shards of the training regions; for a region whose ValidData
             has no labelled pixel, a fixed `data.valid_fraction` of its training patches
             (`data/validation.py`)
  unlabeled  the unlabeled `test` shards of every region (for self-training)
  holdout    every labeled shard of the held-out regions (a generalisation test)

Normalisation statistics are those of the training regions' training pixels, from the manifest
("dataset"), or the official Landslide4Sense constants ("official"). Either way they are taken
for exactly the channels used; a missing one is an error, never a default.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import numpy as np

from swinls import storage
from swinls.augment import AugmentConfig
from swinls.bands import OFFICIAL_STATS, BandSet, PCAProjection, channel_stats, resolve_band_set
from swinls.data.validation import RowFilter, ValidationPlan, plan_validation
from swinls.shards.manifest import Manifest, ManifestError

SPLITS = ("train", "valid", "unlabeled", "holdout")


@dataclass(frozen=True)
class DataConfig:
    uri: str = ""  # the shard dataset (local path or s3://)
    bands: str | tuple[str, ...] = "RGB"  # a named set, PCA-3, or band names
    normalization: Literal["dataset", "official"] = "dataset"
    train_regions: tuple[str, ...] = ()  # empty: every region not held out
    holdout_regions: tuple[str, ...] = ()
    # the training patches a region without labelled ValidData validates on (fixed by patch id)
    valid_fraction: float = 0.1  # of a region's training patches kept for validation when its ValidData is unlabelled
    verdict_fraction: float = 0.0  # of the validation patches set aside (by patch id) for a verdict no trial validates on
    batch_size: int = 16  # per worker
    eval_batch_size: int = 32
    materialize: Literal["auto", "always", "never"] = "auto"
    materialize_limit_mb: int = 2048  # "auto" keeps the projected dataset in memory below this
    # hold a projected split on each training worker's device for the whole fit (read once,
    # shuffled by a seeded permutation each epoch); "auto" below the limit, else Ray Data streams it
    resident: Literal["auto", "always", "never"] = "auto"
    resident_limit_mb: int = 4096
    # later epochs of a streamed split read each node's local disk instead of storage (block_cache.py)
    stream_cache_mb: int = 65536  # a streamed split's projected shards kept on each node's disk after the first pass, within half its free space; 0: off
    stream_cache_dir: str = ""  # node-local folder for it; empty: <system temp dir>/swinls-stream-cache
    shuffle_buffer: int = 64  # rows, shuffled locally on each worker
    deterministic: bool = True  # same seed, same batches: Ray Data keeps block order (no measurable cost, benchmarks/input_pipeline.py)
    augment: AugmentConfig = field(default_factory=AugmentConfig)

    def __post_init__(self) -> None:
        overlap = set(self.train_regions) & set(self.holdout_regions)
        if overlap:
            raise ValueError(f"regions {', '.join(sorted(overlap))} are both trained on and held out")
        if self.batch_size < 1 or self.eval_batch_size < 1:
            raise ValueError("batch sizes must be positive")
        if not 0.0 < self.valid_fraction < 1.0:
            raise ValueError(f"data.valid_fraction must be in (0, 1), got {self.valid_fraction}")
        if self.stream_cache_mb < 0:
            raise ValueError(f"data.stream_cache_mb must be 0 (off) or more, got {self.stream_cache_mb}")
        if not 0.0 <= self.verdict_fraction < 1.0:
            raise ValueError(f"data.verdict_fraction must be in [0, 1), got {self.verdict_fraction}")


class ShardData:
    """A DataConfig resolved against its manifest: shard URIs, channels and their statistics."""

    def __init__(self, config: DataConfig, manifest: Manifest | None = None) -> None:
        if not config.uri:
            raise ValueError("data.uri is not set: point it at a shard dataset made by jobs/ingest.py")
        self.config = config
        self.manifest = manifest or Manifest.load(config.uri)
        self.band_set: BandSet = resolve_band_set(config.bands if isinstance(config.bands, str) else list(config.bands))
        regions = list(self.manifest.regions)
        unknown = [r for r in (*config.train_regions, *config.holdout_regions) if r not in regions]
        if unknown:
            raise ManifestError(f"{Manifest.uri(config.uri)} has no region {', '.join(unknown)} (it has {', '.join(regions)})")
        self.train_regions = list(config.train_regions) or [r for r in regions if r not in config.holdout_regions]
        self.holdout_regions = list(config.holdout_regions)
        self.validation: ValidationPlan = plan_validation(self.manifest, config.uri, self.train_regions, config.valid_fraction,
                                                           config.verdict_fraction)
        self.pca: PCAProjection | None = self.manifest.pca(self.train_regions) if self.band_set.is_pca else None
        stats = self.manifest.band_stats(self.train_regions) if config.normalization == "dataset" else OFFICIAL_STATS
        self.mean, self.std = channel_stats(self.band_set, stats, self.pca)

    @property
    def channels(self) -> tuple[str, ...]:
        return self.band_set.channels

    @property
    def patch_shape(self) -> tuple[int, int]:
        return tuple(self.manifest.patch_shape)

    def shards(self, split: str):
        if split in ("train", "valid"):
            return self.validation.shards(self.manifest, split)
        if split == "unlabeled":
            return self.manifest.shards(["test"])
        if split == "holdout":
            return self.manifest.shards(["train", "valid"], self.holdout_regions)
        raise ValueError(f"unknown split {split!r}; valid: {', '.join(SPLITS)}")

    def shard_uris(self, split: str) -> list[str]:
        return [storage.join(self.config.uri, s.path) for s in self.shards(split)]

    def row_filter(self, split: str) -> RowFilter | None:
        """Rows of the split's shards the split keeps (None: all of them)."""
        return self.validation.row_filter(split)

    def rows(self, split: str) -> int:
        """Rows of the split, a carved region's exactly."""
        carved = dict(self.validation.carved_rows) if split in ("train", "valid") else {}
        # a carved region's validation reads its training shards: count its carve, not those rows
        total = sum(s.rows for s in self.shards(split) if split != "valid" or s.region not in carved)
        total += sum(carved.values()) * (1 if split == "valid" else -1)
        if split == "valid" and self.config.verdict_fraction:  # the set-aside part: by patch id, about this share
            total = round(total * (1 - self.config.verdict_fraction))
        return total

    def projected_bytes(self, split: str) -> int:
        """Memory of the split once projected (float16 image, uint8 mask)."""
        h, w = self.patch_shape
        return self.rows(split) * h * w * (2 * len(self.channels) + 1)

    def normalization_record(self) -> dict:
        """What a model needs to see data as it was trained: travels into checkpoints and model cards."""
        return {
            "band_set": self.band_set.name,
            "inputs": list(self.band_set.inputs),
            "channels": list(self.channels),
            "mean": [float(v) for v in np.asarray(self.mean)],
            "std": [float(v) for v in np.asarray(self.std)],
            "source": self.config.normalization,
            "pca": self.pca.to_dict() if self.pca else None,
            "manifest_sha256": self.manifest.content_hash(),
            # the regions behind the statistics and the weights: what a registry compares new data with
            "train_regions": list(self.train_regions),
            "holdout_regions": list(self.holdout_regions),
            "validation": self.validation.record(),
        }
