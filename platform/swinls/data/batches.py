"""Worker-side batches: numpy rows to torch tensors on the training device, augmented there.

`Batch` is what the training loop sees, whether the rows came from a Ray Data shard or from the
plain reader in `local.py`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable, Iterator, Mapping

import numpy as np
import torch

from swinls.augment.ops import Augmenter


@dataclass
class Batch:
    image: torch.Tensor  # N×C×H×W float32, normalised
    mask: torch.Tensor  # N×H×W int64, 0/1 or 255 = ignore
    keys: np.ndarray  # N int64 row keys

    def __len__(self) -> int:
        return self.image.shape[0]


def to_batch(rows: Mapping[str, np.ndarray], device: torch.device | str = "cpu",
             augmenter: Augmenter | None = None, epoch: int = 0) -> Batch:
    # copy=True: the tensors are ours (augmented in place), never views of Ray's read-only buffers
    image = torch.from_numpy(np.ascontiguousarray(rows["image"])).to(device, torch.float32, copy=True)
    mask = torch.from_numpy(np.ascontiguousarray(rows["mask"])).to(device, torch.int64, copy=True)
    keys = np.array(rows["key"], dtype=np.int64)  # a writable copy, never a view of a Ray buffer
    if augmenter is not None:  # the tensors were just made here: augment them in place
        image, mask = augmenter(image, mask, keys, epoch, inplace=True)
    return Batch(image, mask, keys)


def to_batches(rows: Iterable[Mapping[str, np.ndarray]], device="cpu", augmenter: Augmenter | None = None,
               epoch: int = 0) -> Iterator[Batch]:
    for chunk in rows:
        yield to_batch(chunk, device, augmenter, epoch)
