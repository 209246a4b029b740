"""Where a training worker runs: under Ray Train (DDP, Ray Data shards) or in a plain process.

The training loop talks only to this interface: its rank, its device, batches of a split for an
epoch, collective sums, and reporting.
"""

from __future__ import annotations

from typing import Iterator

import numpy as np
import torch
import torch.distributed as dist

from swinls.augment.ops import Augmenter
from swinls.data.batches import Batch, to_batch
from swinls.data.local import read_split
from swinls.data.selection import ShardData


class WorkerContext:
    rank = 0
    world_size = 1
    device = torch.device("cpu")

    def batches(self, split: str, *, epoch: int, batch_size: int, augmenter: Augmenter | None = None,
                shuffle: bool = False, seed: int = 0) -> Iterator[Batch]:
        raise NotImplementedError

    def has_split(self, split: str) -> bool:
        raise NotImplementedError

    def report(self, metrics: dict) -> None:
        pass

    # collectives: plain process = identity
    def all_sum(self, values: list[float]) -> list[float]:
        if self.world_size == 1:
            return values
        backend = dist.get_backend()
        tensor = torch.tensor(values, dtype=torch.float64, device="cuda" if backend == "nccl" else "cpu")
        dist.all_reduce(tensor)
        return tensor.cpu().tolist()

    def all_gather(self, obj):
        if self.world_size == 1:
            return [obj]
        out = [None] * self.world_size
        dist.all_gather_object(out, obj)
        return out

    def barrier(self) -> None:
        if self.world_size > 1:
            dist.barrier()


class LocalContext(WorkerContext):
    """One process, no Ray: splits are read from the shards once and kept in memory."""

    def __init__(self, data: ShardData, device: torch.device | str = "cpu", extra_train: dict | None = None,
                 printer=print) -> None:
        self.data = data
        self.device = torch.device(device)
        self._cache: dict[str, dict[str, np.ndarray]] = {}
        self._extra_train = extra_train  # pseudo-labelled rows joining "train"
        self._print = printer

    def _rows(self, split: str) -> dict[str, np.ndarray]:
        if split not in self._cache:
            rows = read_split(self.data, split)
            if split == "train" and self._extra_train is not None:
                rows = {k: np.concatenate([rows[k], self._extra_train[k]]) for k in rows}
            self._cache[split] = rows
        return self._cache[split]

    def has_split(self, split: str) -> bool:
        return self.data.rows(split) > 0 or (split == "train" and self._extra_train is not None)

    def batches(self, split, *, epoch, batch_size, augmenter=None, shuffle=False, seed=0):
        rows = self._rows(split)
        n = len(rows["key"])
        order = np.random.default_rng([seed, epoch]).permutation(n) if shuffle else np.arange(n)
        for start in range(0, n, batch_size):
            take = order[start:start + batch_size]
            yield to_batch({k: v[take] for k, v in rows.items()}, self.device, augmenter, epoch)

    def report(self, metrics: dict) -> None:
        if self._print:
            self._print(metrics)


class RayContext(WorkerContext):
    """Inside a Ray Train worker: DDP process group set up by Ray, one dataset shard per split."""

    def __init__(self, shuffle_buffer: int) -> None:
        import ray.train
        import ray.train.torch

        context = ray.train.get_context()
        self.rank = context.get_world_rank()
        self.world_size = context.get_world_size()
        self.device = ray.train.torch.get_device()
        self.shuffle_buffer = shuffle_buffer

    def has_split(self, split: str) -> bool:
        import ray.train

        try:
            return ray.train.get_dataset_shard(split) is not None
        except (KeyError, ValueError):
            return False

    def batches(self, split, *, epoch, batch_size, augmenter=None, shuffle=False, seed=0):
        import ray.train

        from swinls.data.ray_data import iter_worker_batches

        shard = ray.train.get_dataset_shard(split)
        yield from iter_worker_batches(shard, batch_size=batch_size, device=self.device, augmenter=augmenter,
                                       epoch=epoch, shuffle_buffer=self.shuffle_buffer if shuffle else 0,
                                       seed=seed + self.rank)

    def report(self, metrics: dict) -> None:
        import ray.train

        ray.train.report(metrics)
