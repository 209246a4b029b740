"""The Landslide4Sense band catalogue, per-band statistics keyed by name, and band sets.

A band set is either one of the paper's named sets (Table 1), an explicit list of band names, or
PCA-3: the first three principal components of the 14 standardised bands, fitted on training
statistics and then stored, so inference applies exactly the fitted projection.
"""

from __future__ import annotations

from swinls.errors import SwinLSError

from dataclasses import dataclass
from typing import Mapping, Sequence

import numpy as np

from swinls.moments import BandMoments

# Landslide4Sense channel order: Sentinel-2 B1..B12 without B8A, then slope and DEM (ALOS PALSAR).
BANDS: tuple[str, ...] = (
    "B1", "B2", "B3", "B4", "B5", "B6", "B7", "B8", "B9", "B10", "B11", "B12", "slope", "DEM",
)

OPTICAL_BANDS: tuple[str, ...] = BANDS[:12]  # Sentinel-2; slope and DEM are terrain, not light

BAND_DESCRIPTIONS: dict[str, str] = {
    "B1": "coastal aerosol, 443 nm, 60 m",
    "B2": "blue, 490 nm, 10 m",
    "B3": "green, 560 nm, 10 m",
    "B4": "red, 665 nm, 10 m",
    "B5": "red edge 1, 705 nm, 20 m",
    "B6": "red edge 2, 740 nm, 20 m",
    "B7": "red edge 3, 783 nm, 20 m",
    "B8": "near infrared, 842 nm, 10 m",
    "B9": "water vapour, 945 nm, 60 m",
    "B10": "cirrus (SWIR), 1375 nm, 60 m",
    "B11": "SWIR 1, 1610 nm, 20 m",
    "B12": "SWIR 2, 2190 nm, 20 m",
    "slope": "terrain slope from ALOS PALSAR DEM",
    "DEM": "elevation from ALOS PALSAR",
}


@dataclass(frozen=True)
class BandStat:
    mean: float
    std: float


# The official Landslide4Sense normalisation constants, as published with the benchmark.
_OFFICIAL_MEAN = (-0.4914, -0.3074, -0.1277, -0.0625, 0.0439, 0.0803, 0.0644, 0.0802, 0.3000,
                  0.4082, 0.0823, 0.0516, 0.3338, 0.7819)
_OFFICIAL_STD = (0.9325, 0.8775, 0.8860, 0.8869, 0.8857, 0.8418, 0.8354, 0.8491, 0.9061, 1.6072,
                 0.8848, 0.9232, 0.9018, 1.2913)
OFFICIAL_STATS: dict[str, BandStat] = {
    name: BandStat(mean, std) for name, mean, std in zip(BANDS, _OFFICIAL_MEAN, _OFFICIAL_STD)
}

_RGB = ("B4", "B3", "B2")
_SWIR = ("B10", "B11", "B12")  # the paper's "3-band far infrared"
NAMED_SETS: dict[str, tuple[str, ...]] = {
    "RGB": _RGB,
    "SWIR": _SWIR,
    "NGB": ("B8", "B3", "B2"),
    "RGB+NIR": _RGB + ("B8",),
    "RGB+SWIR": _RGB + _SWIR,
    "RGB+NIR+SWIR": _RGB + ("B8",) + _SWIR,
    "ALL": BANDS,
}
PCA_SET = "PCA-3"
PCA_COMPONENTS = 3
SET_NAMES: tuple[str, ...] = tuple(NAMED_SETS) + (PCA_SET,)


class BandError(SwinLSError, ValueError):
    """An unknown band or band-set name, or a band set that cannot be used as asked."""


def band_index(name: str) -> int:
    try:
        return BANDS.index(name)
    except ValueError:
        raise BandError(f"unknown band {name!r}; valid bands: {', '.join(BANDS)}") from None


@dataclass(frozen=True)
class BandSet:
    """What a model sees: the source bands read and the channels produced from them."""

    name: str
    inputs: tuple[str, ...]  # bands read from the patch, in this order
    channels: tuple[str, ...]  # channel names after projection

    @property
    def is_pca(self) -> bool:
        return self.name == PCA_SET

    @property
    def input_indices(self) -> tuple[int, ...]:
        return tuple(band_index(b) for b in self.inputs)

    def __len__(self) -> int:
        return len(self.channels)


def resolve_band_set(spec: str | Sequence[str]) -> BandSet:
    """A named set ("RGB", "PCA-3", ...), a comma-separated string or a list of band names."""
    if isinstance(spec, str):
        if spec in NAMED_SETS:
            bands = NAMED_SETS[spec]
            return BandSet(spec, bands, bands)
        if spec == PCA_SET:
            return BandSet(PCA_SET, BANDS, tuple(f"PC{i + 1}" for i in range(PCA_COMPONENTS)))
        if "," not in spec and spec not in BANDS:
            raise BandError(
                f"unknown band set {spec!r}; valid sets: {', '.join(SET_NAMES)}, "
                f"or a list of bands from {', '.join(BANDS)}"
            )
        names = [part.strip() for part in spec.split(",") if part.strip()]
    else:
        names = list(spec)
    if not names:
        raise BandError("a band set needs at least one band")
    for name in names:
        band_index(name)
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise BandError(f"band set lists {', '.join(duplicates)} more than once")
    bands = tuple(names)
    for set_name, set_bands in NAMED_SETS.items():
        if set_bands == bands:
            return BandSet(set_name, bands, bands)
    return BandSet(",".join(bands), bands, bands)


@dataclass(frozen=True)
class PCAProjection:
    """Standardise the 14 bands, then project on the leading principal components."""

    bands: tuple[str, ...]
    center: np.ndarray  # per input band
    scale: np.ndarray  # per input band
    components: np.ndarray  # (k, n_bands), rows of unit length
    variances: np.ndarray  # variance of each component on the fitting data

    @classmethod
    def fit(cls, moments: BandMoments, k: int = PCA_COMPONENTS) -> "PCAProjection":
        if moments.bands != BANDS:
            raise BandError(f"PCA-3 is fitted on all 14 bands, got moments over {moments.bands}")
        std = moments.std
        flat = [b for b, s in zip(moments.bands, std) if s <= 0]
        if flat:
            raise BandError(f"cannot fit PCA: bands {', '.join(flat)} are constant in the data")
        correlation = moments.covariance / np.outer(std, std)
        eigenvalues, eigenvectors = np.linalg.eigh(correlation)
        order = np.argsort(eigenvalues)[::-1][:k]
        components = eigenvectors[:, order].T.copy()
        # an eigenvector's sign is arbitrary; pin it so refits on the same data agree
        for row in components:
            if row[np.argmax(np.abs(row))] < 0:
                row *= -1
        return cls(BANDS, moments.mean.copy(), std.copy(), components, eigenvalues[order].copy())

    def apply(self, patch: np.ndarray) -> np.ndarray:
        """H×W×14 → H×W×k, float32."""
        x = (np.asarray(patch, dtype=np.float32) - self.center.astype(np.float32)) / self.scale.astype(
            np.float32
        )
        return x @ self.components.T.astype(np.float32)

    def channel_stats(self) -> dict[str, BandStat]:
        """The components are centred; their spread is the fitted variance."""
        return {
            f"PC{i + 1}": BandStat(0.0, float(np.sqrt(v))) for i, v in enumerate(self.variances)
        }

    def to_dict(self) -> dict:
        return {
            "bands": list(self.bands),
            "center": self.center.tolist(),
            "scale": self.scale.tolist(),
            "components": self.components.tolist(),
            "variances": self.variances.tolist(),
        }

    @classmethod
    def from_dict(cls, data: Mapping) -> "PCAProjection":
        return cls(
            tuple(data["bands"]),
            np.array(data["center"], dtype=np.float64),
            np.array(data["scale"], dtype=np.float64),
            np.array(data["components"], dtype=np.float64),
            np.array(data["variances"], dtype=np.float64),
        )


def project(patch: np.ndarray, band_set: BandSet, pca: PCAProjection | None = None) -> np.ndarray:
    """Project an H×W×14 patch (Landslide4Sense order) to the band set's channels, H×W×C."""
    if patch.ndim != 3 or patch.shape[-1] != len(BANDS):
        raise BandError(f"expected an H×W×{len(BANDS)} patch, got shape {patch.shape}")
    if band_set.is_pca:
        if pca is None:
            raise BandError("PCA-3 needs the fitted projection stored with the data or the model")
        return pca.apply(patch)
    return patch[..., list(band_set.input_indices)]


def channel_stats(
    band_set: BandSet, stats: Mapping[str, BandStat], pca: PCAProjection | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Mean and std per channel of the band set; a missing statistic is an error, never a default."""
    source = dict(stats)
    if band_set.is_pca:
        if pca is None:
            raise BandError("PCA-3 needs the fitted projection to know its channel statistics")
        source = pca.channel_stats()
    missing = [c for c in band_set.channels if c not in source]
    if missing:
        raise BandError(
            f"no normalisation statistics for {', '.join(missing)} "
            f"(have: {', '.join(source) or 'none'})"
        )
    mean = np.array([source[c].mean for c in band_set.channels], dtype=np.float32)
    std = np.array([source[c].std for c in band_set.channels], dtype=np.float32)
    bad = [c for c, s in zip(band_set.channels, std) if not s > 0]
    if bad:
        raise BandError(f"standard deviation of {', '.join(bad)} is not positive")
    return mean, std
