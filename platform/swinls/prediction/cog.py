"""Cloud-Optimized GeoTIFFs: what a GIS opens straight from a bucket (internal tiles, overviews,
the header first), made from the tiled GeoTIFF prediction writes row by row.

GDAL's COG driver only copies a finished raster, so each scene's output is written as now and
then copied once through the driver; metadata (tags, band descriptions, nodata) goes with it.
Masks are reduced for overviews by `mode` (a class stays a class); probabilities by `average`.
"""

from __future__ import annotations

import os
from pathlib import Path

from swinls.raster_io import GDAL_CACHE_MB

BLOCK = 256  # tile size of every raster prediction writes
OVERVIEW_RESAMPLING = {"mask": "MODE", "probability": "AVERAGE"}


def to_cog(path: Path, kind: str) -> None:
    """Rewrite the GeoTIFF at `path` as a COG, in place (a sibling file renamed over it)."""
    import rasterio
    import rasterio.shutil

    target = path.with_name(f".{path.name}.cog")
    options = {"driver": "COG", "BLOCKSIZE": BLOCK, "COMPRESS": "DEFLATE", "PREDICTOR": "YES",
               "OVERVIEW_RESAMPLING": OVERVIEW_RESAMPLING[kind], "BIGTIFF": "IF_SAFER"}
    try:
        with rasterio.Env(GDAL_CACHEMAX=GDAL_CACHE_MB):
            rasterio.shutil.copy(str(path), str(target), **options)
        os.replace(target, path)
    finally:
        target.unlink(missing_ok=True)
