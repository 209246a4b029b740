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
