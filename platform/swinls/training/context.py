"""Where a training worker runs: under Ray Train (DDP, Ray Data shards or splits held on the
device) or in a plain process.

The training loop talks only to this interface: its rank, its device, batches of a split for an
epoch, collective sums, and reporting.
"""

from __future__ import annotations

from typing import Iterator

import numpy as np
import torch
import torch.distributed as dist

from swinls import selftrain
from swinls.augment.ops import Augmenter
from swinls.data.batches import Batch
from swinls.data.local import read_split
from swinls.data.resident import ResidentSplit
from swinls.data.selection import ShardData

TRAIN = "train"


def split_rows(data: ShardData, split: str, run_uri: str = "", train_with_round: int = 0) -> dict[str, np.ndarray]:
    """A split's projected rows; the training split of a self-training block also holds the
    unlabeled rows with their pseudo-labels of `train_with_round`."""
    rows = read_split(data, split)
    if split == TRAIN and train_with_round:
        pseudo = selftrain.PseudoLabeler(run_uri, train_with_round)(read_split(data, "unlabeled"))
        rows = {k: np.concatenate([rows[k], pseudo[k]]) for k in rows}
    return rows


class WorkerContext:
    rank = 0
    world_size = 1
    device = torch.device("cpu")
    node_id: str | None = None  # the Ray node this worker runs on (None: no Ray)

    def batches(self, split: str, *, epoch: int, batch_size: int, augmenter: Augmenter | None = None,
                shuffle: bool = False, seed: int = 0) -> Iterator[Batch]:
        raise NotImplementedError

    def has_split(self, split: str) -> bool:
        raise NotImplementedError

    def report(self, metrics: dict) -> None:
        pass

    # collectives: plain process = identity
    def all_sum_tensor(self, tensor: torch.Tensor) -> torch.Tensor:
        """The sum over workers of a tensor, on the CPU (one read of the device)."""
        if self.world_size > 1:
            on = tensor.to("cuda" if dist.get_backend() == "nccl" else "cpu")
            dist.all_reduce(on)
            tensor = on
        return tensor.cpu()

    def barrier(self) -> None:
        if self.world_size > 1:
            dist.barrier()


class _ResidentSplits:
    """Splits loaded onto the device on first use and kept for the context's life (one fit)."""

    def __init__(self, load, device: torch.device) -> None:
        self._load, self._device = load, device
        self._splits: dict[str, ResidentSplit] = {}

    def get(self, split: str) -> ResidentSplit:
        if split not in self._splits:
            self._splits[split] = ResidentSplit(self._load(split), self._device)
        return self._splits[split]

    def batches(self, split, rank, world_size, *, epoch, batch_size, augmenter=None, shuffle=False, seed=0):
        return self.get(split).batches(epoch=epoch, batch_size=batch_size, augmenter=augmenter, shuffle=shuffle,
                                       seed=seed, rank=rank, world_size=world_size, equal=split == TRAIN)


def _ray_node_id() -> str | None:
    """The Ray node this process runs on, when it is a Ray worker; None otherwise."""
    import sys

    ray = sys.modules.get("ray")  # never import Ray for a plain local run
    if ray is None or not ray.is_initialized():
        return None
    return ray.get_runtime_context().get_node_id()


class LocalContext(WorkerContext):
    """One process, no Ray: every split is read from the shards once and held on the device."""

    def __init__(self, data: ShardData, device: torch.device | str = "cpu", run_uri: str = "", train_with_round: int = 0,
                 printer=print) -> None:
        self.data = data
        self.device = torch.device(device)
        self.train_with_round = train_with_round
        self._splits = _ResidentSplits(lambda split: split_rows(data, split, run_uri, train_with_round), self.device)
        self._print = printer
        self.node_id = _ray_node_id()  # an ablation trial trains in its Tune actor, on some node

    def has_split(self, split: str) -> bool:
        return self.data.rows(split) > 0 or (split == TRAIN and bool(self.train_with_round))

    def batches(self, split, *, epoch, batch_size, augmenter=None, shuffle=False, seed=0):
        return self._splits.batches(split, 0, 1, epoch=epoch, batch_size=batch_size, augmenter=augmenter,
                                    shuffle=shuffle, seed=seed)

    def report(self, metrics: dict) -> None:
        if self._print:
            self._print(metrics)


class RayContext(WorkerContext):
    """Inside a Ray Train worker: DDP process group set up by Ray. A split named in `resident`
    is read by every worker onto its device once per fit; the others come as Ray Data shards."""

    def __init__(self, shuffle_buffer: int, data: ShardData | None = None, resident: tuple[str, ...] = (),
                 run_uri: str = "", train_with_round: int = 0) -> None:
        import ray
        import ray.train
        import ray.train.torch

        context = ray.train.get_context()
        self.rank = context.get_world_rank()
        self.world_size = context.get_world_size()
        self.device = ray.train.torch.get_device()
        self.node_id = ray.get_runtime_context().get_node_id()
        self.shuffle_buffer = shuffle_buffer
        self.resident = tuple(resident)
        self._splits = _ResidentSplits(lambda split: split_rows(data, split, run_uri, train_with_round), self.device)

    def has_split(self, split: str) -> bool:
        import ray.train

        if split in self.resident:
            return True
        try:
            return ray.train.get_dataset_shard(split) is not None
        except (KeyError, ValueError):
            return False

    def batches(self, split, *, epoch, batch_size, augmenter=None, shuffle=False, seed=0):
        if split in self.resident:
            yield from self._splits.batches(split, self.rank, self.world_size, epoch=epoch, batch_size=batch_size,
                                            augmenter=augmenter, shuffle=shuffle, seed=seed)
            return
        import ray.train

        from swinls.data.ray_data import iter_worker_batches

        shard = ray.train.get_dataset_shard(split)
        yield from iter_worker_batches(shard, batch_size=batch_size, device=self.device, augmenter=augmenter,
                                       epoch=epoch, shuffle_buffer=self.shuffle_buffer if shuffle else 0,
                                       seed=seed + self.rank)

    def report(self, metrics: dict) -> None:
        import ray.train

        ray.train.report(metrics)
