"""`manifest.json`: what a shard dataset holds, and the statistics that travel with it.

The manifest is the pointer of a shard dataset: shards are immutable, content-addressed files,
and a dataset is exactly the shards its manifest lists. It is replaced in one atomic write, so a
reader sees the previous dataset or the new one. Everything derived (totals, band statistics,
the PCA-3 projection) is recomputed from the per-region parts whenever the manifest is built.
"""

from __future__ import annotations

from swinls.errors import SwinLSError

import hashlib
import json
from dataclasses import asdict, dataclass, field
from typing import Iterable

from swinls import storage
from swinls.bands import BANDS, BandStat, PCAProjection
from swinls.moments import BandMoments
from swinls.shards.schema import FORMAT

MANIFEST_NAME = "manifest.json"
SPLITS = ("train", "valid", "test")


class ManifestError(SwinLSError, ValueError):
    pass


class NoDataset(ManifestError, FileNotFoundError):
    """No manifest at the dataset URI: nothing was ingested there."""


@dataclass
class ShardEntry:
    path: str  # relative to the dataset root
    region: str
    split: str
    rows: int
    sha256: str
    bytes: int
    labeled_rows: int
    rows_with_landslide: int
    positive_pixels: int
    labeled_pixels: int


@dataclass
class RegionEntry:
    name: str
    source: str  # URI of the tree it was ingested from
    source_files: int
    source_fingerprint: str
    labels: str | None = None  # URI of the masks ingested apart from the source (`ingest --labels`)
    shards: list[ShardEntry] = field(default_factory=list)
    skipped: list[dict] = field(default_factory=list)  # {"source": path, "reason": text}
    train_moments: dict | None = None  # BandMoments over the labeled training pixels

    def count(self, split: str) -> int:
        return sum(s.rows for s in self.shards if s.split == split)

    @classmethod
    def from_dict(cls, data: dict) -> "RegionEntry":
        data = dict(data)
        data["shards"] = [ShardEntry(**s) for s in data.get("shards", [])]
        return cls(**data)


@dataclass
class Manifest:
    bands: tuple[str, ...]
    patch_shape: tuple[int, int]
    image_dtype: str
    regions: dict[str, RegionEntry] = field(default_factory=dict)

    # -- derived views -------------------------------------------------------------------------
    def shards(self, splits: Iterable[str] | None = None, regions: Iterable[str] | None = None) -> list[ShardEntry]:
        wanted_splits = set(splits) if splits is not None else None
        names = list(regions) if regions is not None else list(self.regions)
        unknown = [r for r in names if r not in self.regions]
        if unknown:
            raise ManifestError(f"regions {', '.join(unknown)} are not in the dataset (it has {', '.join(self.regions)})")
        out = []
        for name in names:
            out.extend(s for s in self.regions[name].shards if wanted_splits is None or s.split in wanted_splits)
        return out

    def train_moments(self, regions: Iterable[str] | None = None) -> BandMoments:
        names = list(regions) if regions is not None else list(self.regions)
        parts = [BandMoments.from_dict(self.regions[r].train_moments) for r in names if self.regions[r].train_moments]
        return BandMoments.merged(tuple(self.bands), parts)

    def band_stats(self, regions: Iterable[str] | None = None) -> dict[str, BandStat]:
        """Per-band mean/std of the labeled training pixels of these regions (all by default)."""
        moments = self.train_moments(regions)
        if moments.count == 0:
            raise ManifestError("the dataset has no labeled training pixels to compute band statistics from")
        return {b: BandStat(float(m), float(s)) for b, m, s in zip(self.bands, moments.mean, moments.std)}

    def pca(self, regions: Iterable[str] | None = None) -> PCAProjection:
        return PCAProjection.fit(self.train_moments(regions))

    def counts(self) -> dict:
        per_region = {name: {s: entry.count(s) for s in SPLITS} for name, entry in self.regions.items()}
        total = {s: sum(c[s] for c in per_region.values()) for s in SPLITS}
        return {"total": total, "regions": per_region}

    def positive_fraction(self, splits: Iterable[str] = ("train",)) -> float:
        shards = self.shards(splits)
        labeled = sum(s.labeled_pixels for s in shards)
        return sum(s.positive_pixels for s in shards) / labeled if labeled else 0.0

    # -- serialisation -------------------------------------------------------------------------
    def to_dict(self) -> dict:
        data = {
            "format": FORMAT,
            "bands": list(self.bands),
            "patch_shape": list(self.patch_shape),
            "image_dtype": self.image_dtype,
            "regions": {name: asdict(entry) for name, entry in sorted(self.regions.items())},
            "counts": self.counts(),
            "sources": sorted({entry.source for entry in self.regions.values()}),
            "skipped": [dict(s, region=name) for name, e in sorted(self.regions.items()) for s in e.skipped],
        }
        if any(e.train_moments for e in self.regions.values()):
            data["band_stats"] = {b: asdict(s) for b, s in self.band_stats().items()}
            data["positive_fraction"] = {"train": self.positive_fraction(("train",)),
                                         "valid": self.positive_fraction(("valid",))}
            if tuple(self.bands) == BANDS:
                data["pca"] = self.pca().to_dict()
        return data

    def to_bytes(self) -> bytes:
        return (json.dumps(self.to_dict(), indent=1, sort_keys=True) + "\n").encode()

    @classmethod
    def from_dict(cls, data: dict, source: str = "manifest") -> "Manifest":
        if data.get("format") != FORMAT:
            raise ManifestError(f"{source}: format is {data.get('format')!r}, expected {FORMAT!r}")
        try:
            return cls(
                bands=tuple(data["bands"]),
                patch_shape=tuple(data["patch_shape"]),
                image_dtype=data["image_dtype"],
                regions={name: RegionEntry.from_dict(r) for name, r in data["regions"].items()},
            )
        except (KeyError, TypeError) as exc:
            raise ManifestError(f"{source}: malformed manifest ({exc!r})") from exc

    # -- storage -------------------------------------------------------------------------------
    @staticmethod
    def uri(dataset_uri: str) -> str:
        return storage.join(dataset_uri, MANIFEST_NAME)

    @classmethod
    def load(cls, dataset_uri: str) -> "Manifest":
        uri = cls.uri(dataset_uri)
        if not storage.exists(uri):
            raise NoDataset(f"{uri}: no shard dataset here (make one with jobs/ingest.py)")
        return cls.from_dict(storage.read_json(uri), source=uri)

    @classmethod
    def load_if_exists(cls, dataset_uri: str) -> "Manifest | None":
        return cls.load(dataset_uri) if storage.exists(cls.uri(dataset_uri)) else None

    def save(self, dataset_uri: str) -> str:
        """Publish atomically; returns the manifest's content hash."""
        data = self.to_bytes()
        storage.write_bytes_atomic(self.uri(dataset_uri), data)
        return hashlib.sha256(data).hexdigest()

    def content_hash(self) -> str:
        return hashlib.sha256(self.to_bytes()).hexdigest()
