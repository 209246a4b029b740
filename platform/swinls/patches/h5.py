"""Landslide4Sense `.h5` patches: key `img` (H×W×14 float) and key `mask` (H×W uint8)."""

from __future__ import annotations

import io
from pathlib import Path

import h5py
import numpy as np

from swinls.patches.errors import PatchError

IMAGE_KEY = "img"
MASK_KEY = "mask"


def _read_dataset(data: bytes, key: str, source: str) -> np.ndarray:
    try:
        with h5py.File(io.BytesIO(data), "r") as handle:
            if key not in handle:
                found = ", ".join(sorted(handle.keys())) or "nothing"
                raise PatchError(source, f"no dataset {key!r} in the HDF5 file (found: {found})")
            return handle[key][()]
    except PatchError:
        raise
    except (OSError, KeyError, ValueError, RuntimeError) as exc:
        raise PatchError(source, f"unreadable or truncated HDF5 file ({exc})") from exc


def read_h5_image(data: bytes, source: str) -> np.ndarray:
    return np.asarray(_read_dataset(data, IMAGE_KEY, source))


def read_h5_mask(data: bytes, source: str) -> np.ndarray:
    return np.asarray(_read_dataset(data, MASK_KEY, source))


def _write_dataset(path: str | Path, key: str, array: np.ndarray) -> None:
    # track_times=False: the same array gives the same bytes, so seeded data is reproducible
    with h5py.File(path, "w", libver="earliest") as handle:
        handle.create_dataset(key, data=array, track_times=False)


def write_h5_image(path: str | Path, image: np.ndarray, dtype: str = "float32") -> None:
    _write_dataset(path, IMAGE_KEY, np.ascontiguousarray(image, dtype=dtype))


def write_h5_mask(path: str | Path, mask: np.ndarray) -> None:
    _write_dataset(path, MASK_KEY, np.ascontiguousarray(mask, dtype=np.uint8))
