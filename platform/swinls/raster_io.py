"""Opening a raster the one way every reader here does: a local path or an s3:// object (ranged
reads through s3fs, so AWS_ENDPOINT_URL and credentials reach GDAL as they reach everything
else), with GDAL's block cache bounded, and a missing or unreadable file named by the caller's
own error."""

from __future__ import annotations

import contextlib
from typing import Callable

from swinls import storage

GDAL_CACHE_MB = 64  # GDAL's default is 5 % of RAM, which would let memory grow with the scene


@contextlib.contextmanager
def open_dataset(uri: str, fail: Callable[[str], Exception]):
    """A rasterio dataset for `uri`; `fail(reason)` is the exception raised where there is none."""
    import rasterio
    from rasterio.errors import RasterioIOError

    fs, path = storage.filesystem(uri)
    if not fs.exists(path):
        raise fail("no such file or object")
    with rasterio.Env(GDAL_CACHEMAX=GDAL_CACHE_MB):
        try:
            dataset = rasterio.open(path, opener=fs) if storage.is_s3(uri) else rasterio.open(path)
        except RasterioIOError as exc:
            raise fail(f"not a readable raster (corrupt, truncated or not a GeoTIFF: {exc})") from exc
        with dataset:
            yield dataset
