"""Per-sample random draws from a counter-based hash of (seed, epoch, row key, draw), computed
with integer tensor ops where the batch is: no host round trip, no generator state, and the
same draws for a sample whichever batch, worker or device (CPU or GPU) it lands on.

The hash is murmur3's 32-bit finaliser chained over the inputs. It runs on int64 tensors
holding 32-bit values, with multiplications split in 16-bit halves so that nothing overflows
(signed overflow is not something to rely on across devices).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from swinls.augment.config import AugmentConfig

MASK32 = 0xFFFFFFFF
DRAWS = 17  # uniforms per sample, one per random choice below


def _mul32(h: torch.Tensor, constant: int) -> torch.Tensor:
    low, high = constant & 0xFFFF, constant >> 16
    return (h * low + (((h * high) & 0xFFFF) << 16)) & MASK32


def mix32(h: torch.Tensor) -> torch.Tensor:
    """murmur3's fmix32 on 32-bit values held in int64."""
    h = h ^ (h >> 16)
    h = _mul32(h, 0x85EBCA6B)
    h = h ^ (h >> 13)
    h = _mul32(h, 0xC2B2AE35)
    return h ^ (h >> 16)


def as_keys(keys, device: torch.device | str | None = None) -> torch.Tensor:
    """Row keys as an int64 tensor (numpy arrays and lists are copied to `device`)."""
    if isinstance(keys, torch.Tensor):
        return keys.to(device or keys.device, torch.int64)
    return torch.as_tensor(np.asarray(keys, dtype=np.int64), device=device)


def uniforms(seed: int, epoch: int, keys: torch.Tensor, draws: int = DRAWS) -> torch.Tensor:
    """N×draws float64 uniforms in (0, 1), a pure function of (seed, epoch, key, draw index)."""
    keys = keys.to(torch.int64)
    h = torch.full_like(keys, mix32(torch.tensor((seed & MASK32) ^ 0x9E3779B9)).item())
    h = mix32(h ^ (epoch & MASK32))
    h = mix32(h ^ (keys & MASK32))
    h = mix32(h ^ ((keys >> 32) & MASK32))
    slot = mix32(torch.arange(draws, dtype=torch.int64, device=keys.device) + 0x632BE5AB)
    bits = mix32(h.unsqueeze(1) ^ slot.unsqueeze(0))
    return (bits.double() + 0.5) / 2.0**32


@dataclass
class SampleParams:
    """Per-sample random draws, as tensors of length N on the batch's device."""

    flip_h: torch.Tensor
    flip_v: torch.Tensor
    rotate: torch.Tensor
    angle: torch.Tensor  # radians
    shift: torch.Tensor  # N×2, fraction of the patch side
    color: torch.Tensor
    gain: torch.Tensor
    bias: torch.Tensor
    cutout: torch.Tensor
    cutout_centre: torch.Tensor  # N×2 in (0, 1)
    cutmix: torch.Tensor
    cutmix_partner: torch.Tensor  # offset in [1, N) to the partner index
    cutmix_box: torch.Tensor  # N×3: centre row and column in (0, 1), side as a fraction


def sample_params(config: AugmentConfig, keys, epoch: int, device: torch.device | str | None = None) -> SampleParams:
    keys = as_keys(keys, device)
    u = uniforms(config.seed, epoch, keys)
    n = keys.shape[0]
    lo, hi = config.cutmix_size
    return SampleParams(
        flip_h=u[:, 0] < config.flip,
        flip_v=u[:, 1] < config.flip,
        rotate=u[:, 2] < config.rotate_shift,
        angle=torch.deg2rad((2 * u[:, 3] - 1) * config.max_angle),
        shift=(2 * u[:, 4:6] - 1) * config.max_shift,
        color=u[:, 6] < config.color,
        gain=1 + (2 * u[:, 7] - 1) * config.contrast,
        bias=(2 * u[:, 8] - 1) * config.brightness,
        cutout=u[:, 9] < config.cutout,
        cutout_centre=u[:, 10:12],
        cutmix=u[:, 12] < config.cutmix,
        cutmix_partner=1 + torch.floor(u[:, 13] * max(n - 1, 1)).long(),
        cutmix_box=torch.stack([u[:, 14], u[:, 15], lo + (hi - lo) * u[:, 16]], dim=1),
    )
