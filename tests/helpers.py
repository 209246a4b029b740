"""Small real datasets for tests: random but valid Landslide4Sense trees, written with h5py."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from swinls import storage
from swinls.patches import write_h5_image, write_h5_mask
from swinls.patches.layout import SPLIT_DIRS


def random_patch(rng: np.random.Generator, size: int = 32, positive: bool = True) -> tuple[np.ndarray, np.ndarray]:
    image = rng.normal(0.0, 1.0, (size, size, 14)).astype(np.float32)
    mask = np.zeros((size, size), dtype=np.uint8)
    if positive:
        r, c = rng.integers(0, size - 4, 2)
        mask[r:r + 4, c:c + 4] = 1
        image[mask == 1, 3] += 2.0  # landslides brighten red
    return image, mask


def write_tree(root: str | Path, counts=(6, 2, 2), size: int = 32, seed: int = 0, dtype: str = "float32") -> dict:
    """A Landslide4Sense tree with `counts` = (train, valid, test) patches; returns the arrays."""
    rng = np.random.default_rng(seed)
    root = Path(root)
    written = {}
    for split, n in zip(("train", "valid", "test"), counts):
        folder = root / SPLIT_DIRS[split]
        (folder / "img").mkdir(parents=True, exist_ok=True)
        if split != "test":
            (folder / "mask").mkdir(parents=True, exist_ok=True)
        for i in range(1, n + 1):
            image, mask = random_patch(rng, size, positive=i % 2 == 1)
            write_h5_image(folder / "img" / f"image_{i}.h5", image, dtype)
            if split != "test":
                write_h5_mask(folder / "mask" / f"mask_{i}.h5", mask)
            written[(split, f"image_{i}")] = (image, mask if split != "test" else None)
    return written


def upload_tree(local: str | Path, uri: str) -> None:
    local = Path(local)
    for path in sorted(local.rglob("*")):
        if path.is_file():
            storage.put_file_atomic(path, storage.join(uri, path.relative_to(local).as_posix()))
