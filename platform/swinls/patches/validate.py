"""Checks every raw patch passes before it is ingested or predicted on."""

from __future__ import annotations

import numpy as np

from swinls.bands import BANDS
from swinls.patches.errors import PatchError


def check_image(image: np.ndarray, source: str, n_bands: int = len(BANDS)) -> np.ndarray:
    """An H×W×bands finite float image; returned as float32."""
    if image.ndim != 3:
        raise PatchError(source, f"image must be H×W×{n_bands} (rank 3), got shape {image.shape}")
    if image.shape[-1] != n_bands:
        raise PatchError(source, f"image has {image.shape[-1]} bands, expected {n_bands}")
    if not np.issubdtype(image.dtype, np.number):
        raise PatchError(source, f"image has non-numeric dtype {image.dtype}")
    if not np.isfinite(image).all():
        bad = np.argwhere(~np.isfinite(image))
        row, col, band = (int(v) for v in bad[0])
        raise PatchError(
            source,
            f"image has {len(bad)} NaN or infinite values (first at row {row}, column {col}, "
            f"band {BANDS[band] if n_bands == len(BANDS) else band})",
        )
    converted = image.astype(np.float32, copy=False)
    if not np.isfinite(converted).all():
        raise PatchError(source, "image values overflow float32")
    return converted


def check_mask(mask: np.ndarray, source: str, shape: tuple[int, int] | None = None) -> np.ndarray:
    """An H×W mask of 0/1 (and 255 = ignore for pseudo-labels or nodata); returned as uint8."""
    if mask.ndim == 3 and mask.shape[-1] == 1:
        mask = mask[..., 0]
    if mask.ndim != 2:
        raise PatchError(source, f"mask must be H×W (rank 2), got shape {mask.shape}")
    if shape is not None and tuple(mask.shape) != tuple(shape):
        raise PatchError(
            source, f"mask is {mask.shape[0]}×{mask.shape[1]} but its image is {shape[0]}×{shape[1]}"
        )
    if np.issubdtype(mask.dtype, np.floating) and not np.isfinite(mask).all():
        raise PatchError(source, "mask has NaN or infinite values")
    values = np.unique(mask)
    outside = [v for v in values.tolist() if v not in (0, 1)]
    if outside:
        shown = ", ".join(str(v) for v in outside[:5])
        raise PatchError(source, f"mask values must be 0 or 1, found {shown}")
    return mask.astype(np.uint8, copy=False)
