"""A projected split held on the training device for a whole fit: read once, then every epoch is
a seeded permutation, this rank's slice of it, and batches gathered by index on the device.

Landslide4Sense's 3,799 training patches in RGB are about 0.4 GB as float16 images and uint8
masks, a fraction of one GPU; an epoch at GPU speed is then under a second of compute, which a
fresh Ray Data iterator per epoch would dwarf. Splits that do not fit stream through Ray Data.

Every rank holds the whole split and draws the same permutation (a CPU generator seeded by
(seed, epoch)), so the ranks' slices are disjoint and cover it. Training slices are equal (DDP
needs the same number of steps on every rank; at most world_size − 1 rows sit out an epoch, a
different few each epoch); evaluation slices are exact (rank r takes rows r, r + W, …), so every
row is counted once.
"""

from __future__ import annotations

import zlib
from typing import Iterator, Literal, Mapping

import numpy as np
import torch

from swinls.augment.ops import Augmenter
from swinls.data.batches import Batch, host_to_device, on_device

ResidentChoice = Literal["auto", "always", "never"]


def fits_on_device(projected_bytes: int, choice: ResidentChoice, limit_mb: int) -> bool:
    if choice == "always":
        return True
    if choice == "never":
        return False
    return projected_bytes <= limit_mb * 2**20


def _permutation_seed(seed: int, epoch: int) -> int:
    return zlib.crc32(f"resident/{seed}/{epoch}".encode())


class ResidentSplit:
    def __init__(self, rows: Mapping[str, np.ndarray], device: torch.device | str) -> None:
        self.device = torch.device(device)
        # stored dtypes: float16 images, uint8 masks; widened per batch on the device
        self.image = host_to_device(rows["image"], self.device)
        self.mask = host_to_device(rows["mask"], self.device)
        self.keys = host_to_device(np.asarray(rows["key"], np.int64), self.device)

    def __len__(self) -> int:
        return self.keys.shape[0]

    @property
    def nbytes(self) -> int:
        return sum(t.numel() * t.element_size() for t in (self.image, self.mask, self.keys))

    def indices(self, *, epoch: int, shuffle: bool, seed: int, rank: int = 0, world_size: int = 1,
                equal: bool = False) -> torch.Tensor:
        """This rank's rows for the epoch, in order (on the CPU)."""
        n = len(self)
        if shuffle:
            order = torch.randperm(n, generator=torch.Generator().manual_seed(_permutation_seed(seed, epoch)))
        else:
            order = torch.arange(n)
        if equal:
            per_rank = n // world_size
            return order[rank * per_rank:(rank + 1) * per_rank]
        return order[rank::world_size]

    def batches(self, *, epoch: int, batch_size: int, augmenter: Augmenter | None = None, shuffle: bool = False,
                seed: int = 0, rank: int = 0, world_size: int = 1, equal: bool = False) -> Iterator[Batch]:
        mine = self.indices(epoch=epoch, shuffle=shuffle, seed=seed, rank=rank, world_size=world_size,
                            equal=equal).to(self.device)
        for start in range(0, mine.shape[0], batch_size):
            take = mine[start:start + batch_size]
            yield on_device(self.image[take], self.mask[take], self.keys[take], augmenter, epoch)
