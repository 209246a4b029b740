"""GeoTIFF patches and scenes through rasterio; the georeferencing travels as metadata."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
import rasterio
from rasterio.crs import CRS
from rasterio.errors import RasterioError
from rasterio.io import MemoryFile
from rasterio.transform import Affine

from swinls.patches.errors import PatchError


@dataclass(frozen=True)
class GeoMeta:
    crs: str | None  # WKT or "EPSG:xxxx"
    transform: tuple[float, ...]  # affine a, b, c, d, e, f
    nodata: float | None
    band_names: tuple[str, ...] = ()

    @property
    def affine(self) -> Affine:
        return Affine(*self.transform[:6])

    def to_dict(self) -> dict:
        return {"crs": self.crs, "transform": list(self.transform), "nodata": self.nodata,
                "band_names": list(self.band_names)}


def read_geotiff(data: bytes, source: str) -> tuple[np.ndarray, GeoMeta]:
    """Returns the raster as H×W×bands and its metadata."""
    try:
        with MemoryFile(data) as memfile, memfile.open() as dataset:
            array = dataset.read()
            crs = dataset.crs
            meta = GeoMeta(
                crs=crs.to_string() if crs else None,
                transform=tuple(dataset.transform)[:6],
                nodata=dataset.nodata,
                band_names=tuple(d or "" for d in dataset.descriptions),
            )
    except RasterioError as exc:
        raise PatchError(source, f"unreadable or truncated GeoTIFF ({exc})") from exc
    return np.moveaxis(array, 0, -1), meta


def nodata_pixels(image: np.ndarray, nodata: float | None) -> np.ndarray:
    """H×W boolean: pixels where any band holds the nodata value."""
    if nodata is None:
        return np.zeros(image.shape[:2], dtype=bool)
    if np.isnan(nodata):
        return np.isnan(image).any(axis=-1)
    return (image == nodata).any(axis=-1)


def write_geotiff(
    path: str | Path,
    raster: np.ndarray,
    *,
    crs: str | CRS | None,
    transform: Affine | Sequence[float],
    nodata: float | None = None,
    band_names: Sequence[str] = (),
    compress: str | None = "deflate",
) -> None:
    """Write H×W or H×W×bands. Deterministic: no timestamps are written."""
    array = raster[..., None] if raster.ndim == 2 else raster
    height, width, count = array.shape
    affine = transform if isinstance(transform, Affine) else Affine(*transform[:6])
    profile = {
        "driver": "GTiff", "height": height, "width": width, "count": count,
        "dtype": array.dtype.name, "crs": crs, "transform": affine, "nodata": nodata,
    }
    if compress:
        profile["compress"] = compress
        profile["predictor"] = 3 if np.issubdtype(array.dtype, np.floating) else 2
        profile["tiled"] = True
    with rasterio.open(path, "w", **profile) as dataset:
        dataset.write(np.moveaxis(array, -1, 0))
        for index, name in enumerate(band_names, start=1):
            dataset.set_band_description(index, name)
