"""GPU-ready execution options that leave the numbers alone beyond precision."""

from __future__ import annotations

import contextlib

import torch


def autocast(device: torch.device | str, bf16: bool):
    """bfloat16 autocast on the device when asked (CUDA or CPU), a no-op context otherwise."""
    device = torch.device(device)
    if not bf16:
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=torch.bfloat16)


def to_memory_format(image: torch.Tensor, channels_last: bool) -> torch.Tensor:
    return image.contiguous(memory_format=torch.channels_last) if channels_last else image


def pick_device(use_gpu: bool) -> torch.device:
    if use_gpu:
        if not torch.cuda.is_available():
            raise RuntimeError("use_gpu is set but torch sees no CUDA device")
        return torch.device("cuda", torch.cuda.current_device())
    return torch.device("cpu")


# -- what a training run does with a GPU ------------------------------------------------------

from dataclasses import dataclass  # noqa: E402


@dataclass(frozen=True)
class GpuSettings:
    """The execution settings of a training run, resolved against its device.

    On a GPU, unless a config says otherwise: bf16 autocast, channels_last, TF32 matmuls and
    convolutions (float32 math with a 10-bit mantissa where bf16 is not used), the fused AdamW
    kernel, and cuDNN's autotuner unless the run asks to be deterministic. On a CPU all of it
    stays off, so CPU numbers are float32 numbers.
    """

    bf16: bool
    channels_last: bool
    tf32: bool
    fused_optimizer: bool
    cudnn_benchmark: bool

    @classmethod
    def resolve(cls, device: torch.device | str, *, bf16: bool | None, channels_last: bool | None,
                deterministic: bool) -> "GpuSettings":
        gpu = torch.device(device).type == "cuda"
        return cls(bf16=gpu if bf16 is None else bf16, channels_last=gpu if channels_last is None else channels_last,
                   tf32=gpu, fused_optimizer=gpu, cudnn_benchmark=gpu and not deterministic)

    def apply(self) -> None:
        """Process-wide switches (one training process per worker, so no one else to disturb)."""
        if self.tf32:
            torch.backends.cuda.matmul.allow_tf32 = True
            torch.backends.cudnn.allow_tf32 = True
        torch.backends.cudnn.benchmark = self.cudnn_benchmark


def scaled_lr(lr: float, global_batch: int, rule: str, reference_batch: int) -> float:
    """The learning rate for a global batch under a scaling rule, from one tuned at `reference_batch`:
    "linear" (Goyal et al., for SGD), "sqrt" (the usual rule for Adam-type optimizers), "none"."""
    if rule == "none" or global_batch == reference_batch:
        return lr
    ratio = global_batch / reference_batch
    return lr * (ratio if rule == "linear" else ratio ** 0.5)
