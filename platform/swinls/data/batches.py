"""Worker-side batches: projected rows (float16 images, uint8 masks, int64 keys) to training
tensors on the device, augmented there.

`Batch` is what the training loop sees, whether the rows came from a Ray Data shard, a split
held on the device (`resident.py`) or the plain reader in `local.py`. Rows cross to the device
in their stored dtypes (half the bytes of float32 and int64) from pinned memory without
blocking, and are widened there.
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
    keys: torch.Tensor  # N int64 row keys, on the same device

    def __len__(self) -> int:
        return self.image.shape[0]


def on_device(image: torch.Tensor, mask: torch.Tensor, keys: torch.Tensor, augmenter: Augmenter | None = None,
              epoch: int = 0) -> Batch:
    """Rows already on the device (any dtype) as a training batch, augmented when asked (the
    augmenter widens as it copies: no separate pass over the batch)."""
    if augmenter is not None:
        image, mask = augmenter(image, mask, keys, epoch)
    return Batch(image.float(), mask.long(), keys)


def host_to_device(array: np.ndarray, device: torch.device) -> torch.Tensor:
    """A numpy array on `device`; to a GPU through pinned memory, without blocking the host.
    Always a copy: never a view of Ray's read-only buffers."""
    tensor = torch.from_numpy(np.array(array, copy=True, order="C"))
    if device.type == "cuda":
        return tensor.pin_memory().to(device, non_blocking=True)
    return tensor


def to_batch(rows: Mapping[str, np.ndarray], device: torch.device | str = "cpu",
             augmenter: Augmenter | None = None, epoch: int = 0) -> Batch:
    device = torch.device(device)
    image, mask = host_to_device(rows["image"], device), host_to_device(rows["mask"], device)
    keys = host_to_device(np.asarray(rows["key"], dtype=np.int64), device)
    return on_device(image, mask, keys, augmenter, epoch)


def to_batches(rows: Iterable[Mapping[str, np.ndarray]], device="cpu", augmenter: Augmenter | None = None,
               epoch: int = 0) -> Iterator[Batch]:
    for chunk in rows:
        yield to_batch(chunk, device, augmenter, epoch)
