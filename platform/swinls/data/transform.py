"""Shard rows to model-ready arrays: band projection, normalisation, masks and row keys.

No Ray here: the same callable runs inside Ray Data tasks and in plain loops.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import numpy as np
import pyarrow as pa

from swinls.bands import BANDS, PCAProjection
from swinls.data.validation import RowFilter
from swinls.shards.schema import decode_bands, decode_masks


def row_key(region: str, split: str, patch_id: str) -> int:
    """A stable signed 64-bit key per row: seeds its augmentation, names its pseudo-label."""
    digest = hashlib.blake2b(f"{region}/{split}/{patch_id}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "little", signed=True)


@dataclass
class BatchProjector:
    inputs: tuple[str, ...]
    shape: tuple[int, int]
    image_dtype: str
    mean: np.ndarray
    std: np.ndarray
    pca: dict | None = None
    keep: RowFilter | None = None  # the rows of the shards the split takes (the validation carve)

    @classmethod
    def for_data(cls, data, split: str | None = None) -> "BatchProjector":
        return cls(tuple(data.band_set.inputs), tuple(data.patch_shape), data.manifest.image_dtype,
                   np.asarray(data.mean, np.float32), np.asarray(data.std, np.float32),
                   data.pca.to_dict() if data.pca else None, data.row_filter(split) if split else None)

    def select(self, table: pa.Table) -> pa.Table:
        """The rows this split takes; call before projecting."""
        return table if self.keep is None else self.keep.apply(table)

    def signature(self) -> str:
        """Everything the projected rows depend on besides the shard itself: what keys a cached
        projection (`block_cache.py`)."""
        import dataclasses
        import json

        return json.dumps({"format": 1, "inputs": list(self.inputs), "shape": list(self.shape), "dtype": self.image_dtype,
                           "mean": np.asarray(self.mean, np.float32).tolist(), "std": np.asarray(self.std, np.float32).tolist(),
                           "pca": self.pca, "keep": dataclasses.asdict(self.keep) if self.keep else None},
                          sort_keys=True)

    def columns(self) -> list[str]:
        return ["id", "region", "split", *self.inputs, "mask"]

    def __call__(self, table: pa.Table) -> dict[str, np.ndarray]:
        import torch

        # conversions and normalisation in torch: numpy's float16 casts took most of a task's time
        stored = decode_bands(table, list(self.inputs), self.shape, self.image_dtype, out_dtype=self.image_dtype)
        image = torch.from_numpy(stored).float()  # N×C×H×W
        if self.pca is not None:
            projection = PCAProjection.from_dict(self.pca)
            assert tuple(self.inputs) == BANDS
            image = torch.from_numpy(np.ascontiguousarray(
                np.moveaxis(projection.apply(np.moveaxis(image.numpy(), 1, -1)), -1, 1), dtype=np.float32))
        image = image.sub_(torch.from_numpy(self.mean).view(1, -1, 1, 1)).div_(torch.from_numpy(self.std).view(1, -1, 1, 1))
        keys = np.array([row_key(r, s, i) for r, s, i in zip(table.column("region").to_pylist(),
                                                            table.column("split").to_pylist(),
                                                            table.column("id").to_pylist())], dtype=np.int64)
        return {"image": image.half().numpy(), "mask": decode_masks(table, self.shape), "key": keys}
