"""A picture to check a prediction at a glance: the scene in true colour (B4, B3, B2; the first
band in grey when the scene lacks them), stretched between its 2nd and 98th percentiles, with the
predicted landslides outlined and nodata in grey.

Both rasters are read decimated (GDAL's overviews when present), so memory follows the picture,
never the scene.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from swinls.prediction.errors import PredictionError
from swinls.prediction.rasters import SceneInfo, band_indexes, open_raster
from swinls.products.reader import Grid, ProductRows

QUICKLOOK_SUFFIX = "_quicklook.png"
LONG_SIDE = 1024  # pixels of the picture's longer side, at most
TRUE_COLOUR = ("B4", "B3", "B2")
OUTLINE = np.array([1.0, 0.9, 0.0])  # yellow: visible on vegetation, bare soil and snow
NODATA_GREY = 0.5


def picture_shape(height: int, width: int) -> tuple[int, int]:
    scale = min(1.0, LONG_SIDE / max(height, width))
    return max(1, round(height * scale)), max(1, round(width * scale))


def _stretch(bands: np.ndarray, valid: np.ndarray) -> np.ndarray:
    out = np.zeros(bands.shape, np.float32)
    for i, band in enumerate(bands):
        values = band[valid & np.isfinite(band)]
        if values.size:
            low, high = np.percentile(values, (2, 98))
            out[i] = np.clip((band - low) / max(high - low, 1e-12), 0, 1)
    return np.nan_to_num(out)


def outline(mask: np.ndarray) -> np.ndarray:
    """Landslide pixels with a non-landslide 4-neighbour (the picture's edges count as outside)."""
    inside = np.pad(mask, 1, constant_values=False)
    interior = inside[:-2, 1:-1] & inside[2:, 1:-1] & inside[1:-1, :-2] & inside[1:-1, 2:]
    return mask & ~interior


def true_colour(info: SceneInfo, shape: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """H×W×3 in [0, 1] and the H×W valid pixels, read at `shape`."""
    from rasterio.enums import Resampling

    if info.product is not None:
        return _product_colour(info, shape)
    with open_raster(info.uri) as scene:
        try:
            indexes = band_indexes(tuple(scene.descriptions), TRUE_COLOUR, info.uri)
        except PredictionError:
            indexes = (info.band_indexes[0],) * 3
        raw = scene.read(list(indexes), out_shape=(len(indexes), *shape), resampling=Resampling.average).astype(np.float32)
        nodata = [scene.nodatavals[i - 1] for i in indexes]
    valid = np.isfinite(raw).all(axis=0)
    for band, value in zip(raw, nodata):
        if value is not None and np.isfinite(value):
            valid &= band != value
    return _stretch(raw, valid).transpose(1, 2, 0), valid


def _product_colour(info: SceneInfo, shape: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """True colour from the product's band files the model reads (grey from its first band when
    it reads no RGB): no file is opened for the picture alone."""
    read = dict(info.product.files)
    bands = TRUE_COLOUR if all(b in read for b in TRUE_COLOUR) else (next(iter(read)),) * 3
    rows = ProductRows(info.product, Grid(info.crs, info.transform, info.height, info.width))
    try:
        raw = np.stack([rows.reflectance(band, None, out_shape=shape) for band in bands])
    finally:
        rows.close()
    valid = np.isfinite(raw).all(axis=0)
    return _stretch(np.nan_to_num(raw), valid).transpose(1, 2, 0), valid


def write_quicklook(info: SceneInfo, mask_path: Path, target: Path, mask_nodata: int) -> None:
    import matplotlib.image
    from rasterio.enums import Resampling

    shape = picture_shape(info.height, info.width)
    rgb, valid = true_colour(info, shape)
    with open_raster(str(mask_path)) as masks:
        mask = masks.read(1, out_shape=shape, resampling=Resampling.nearest)
    rgb[~valid | (mask == mask_nodata)] = NODATA_GREY
    rgb[outline(mask == 1)] = OUTLINE
    matplotlib.image.imsave(target, rgb, format="png")
