"""Reading one patch (image and, where labeled, mask) in either format, validated."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from swinls.patches.errors import PatchError
from swinls.patches.geotiff import GeoMeta, nodata_pixels, read_geotiff
from swinls.patches.h5 import read_h5_image, read_h5_mask
from swinls.patches.validate import check_image, check_mask

IGNORE = 255  # a mask pixel without a label (the shards keep it as is)


@dataclass
class Patch:
    image: np.ndarray  # H×W×14 float32
    mask: np.ndarray | None  # H×W uint8 in {0, 1}, or None when unlabeled
    nodata: np.ndarray | None = None  # H×W bool where the image had no data (GeoTIFF nodata)
    geo: GeoMeta | None = None


def _is_tiff(name: str) -> bool:
    return name.lower().endswith((".tif", ".tiff"))


def decode_patch(image_bytes: bytes, image_name: str, mask_bytes: bytes | None = None,
                 mask_name: str | None = None) -> Patch:
    """Decode and validate; every error names the file it is about."""
    nodata = None
    geo = None
    if _is_tiff(image_name):
        raw, geo = read_geotiff(image_bytes, image_name)
        missing = nodata_pixels(raw, geo.nodata)
        if missing.any():
            nodata = missing
            raw = np.where(missing[..., None], 0, raw)  # validated and stored as 0, labeled ignore
    else:
        raw = read_h5_image(image_bytes, image_name)
    image = check_image(raw, image_name)
    mask = None
    if mask_bytes is not None:
        assert mask_name is not None
        unlabelled = None
        if _is_tiff(mask_name):
            raw_mask, mask_geo = read_geotiff(mask_bytes, mask_name)
            if mask_geo.nodata is not None:  # a declared no-label value (regions cut from scenes): ignored pixels
                unlabelled = nodata_pixels(raw_mask, mask_geo.nodata)
                raw_mask = np.where(unlabelled[..., None], 0, raw_mask)
        else:
            raw_mask = read_h5_mask(mask_bytes, mask_name)
        mask = check_mask(raw_mask, mask_name, image.shape[:2])
        if unlabelled is not None and unlabelled.any():
            mask = np.where(unlabelled, IGNORE, mask).astype(np.uint8)
    return Patch(image, mask, nodata, geo)


def check_patch_shape(patch: Patch, expected: tuple[int, int] | None, source: str) -> None:
    if expected is not None and patch.image.shape[:2] != tuple(expected):
        got = patch.image.shape
        raise PatchError(source, f"patch is {got[0]}×{got[1]} but the dataset's patches are {expected[0]}×{expected[1]}")
