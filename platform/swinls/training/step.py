"""One optimisation step, shared by the training loop and `benchmarks/gpu_train.py`.

Nothing in it reads the device: the loss comes back as a detached tensor for the caller to sum
on the device, so the host can queue the next batch while the GPU still works on this one.
"""

from __future__ import annotations

import torch

from swinls.accel import GpuSettings, autocast, to_memory_format
from swinls.data.batches import Batch
from swinls.losses import LossWeights, composite


def forward_loss(net, weights: LossWeights, gpu: GpuSettings):
    """(image, mask) → the stage's loss: the function `torch.compile` captures whole, model and
    loss together (the losses have no data-dependent shapes, so nothing breaks the graph)."""

    def loss_of(image: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        with autocast(image.device, gpu.bf16):
            outputs = net(to_memory_format(image, gpu.channels_last))
        return composite(outputs, mask, weights)[0]

    return loss_of


def compiled_forward_loss(net, weights: LossWeights, gpu: GpuSettings, backend: str = "inductor"):
    return torch.compile(forward_loss(net, weights, gpu), backend=backend)


def train_step(net, optimizer: torch.optim.Optimizer, batch: Batch, weights: LossWeights, gpu: GpuSettings,
               loss_of=None) -> torch.Tensor:
    """One step; `loss_of` (from forward_loss or compiled_forward_loss) replaces the plain forward."""
    loss = (loss_of or forward_loss(net, weights, gpu))(batch.image, batch.mask)
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    optimizer.step()
    return loss.detach()


def make_optimizer(kind: str, params, lr: float, weight_decay: float, fused: bool = False) -> torch.optim.Optimizer:
    if kind == "sgd":
        return torch.optim.SGD(params, lr=lr, momentum=0.9, weight_decay=weight_decay)
    # fused: one kernel for the whole update on a GPU instead of several per parameter
    return torch.optim.AdamW(params, lr=lr, weight_decay=weight_decay, fused=fused or None)
