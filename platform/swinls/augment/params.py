"""Per-sample random draws, seeded by (seed, epoch, row key): the same for a sample wherever it
is batched, so augmentation is reproducible on any number of workers."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from swinls.augment.config import AugmentConfig


@dataclass
class SampleParams:
    """Per-sample random draws, as numpy arrays of length N."""

    flip_h: np.ndarray
    flip_v: np.ndarray
    rotate: np.ndarray
    angle: np.ndarray  # radians
    shift: np.ndarray  # N×2, fraction of the half-side (affine_grid units / 2)
    color: np.ndarray
    gain: np.ndarray
    bias: np.ndarray
    cutout: np.ndarray
    cutout_centre: np.ndarray  # N×2 in [0, 1)
    cutmix: np.ndarray
    cutmix_partner: np.ndarray  # offset in [1, N) to the partner index
    cutmix_box: np.ndarray  # N×3: centre row and column in [0, 1), side as a fraction


def sample_params(config: AugmentConfig, keys: np.ndarray, epoch: int) -> SampleParams:
    n = len(keys)
    draws = np.empty((n, 17))
    for i, key in enumerate(np.asarray(keys, dtype=np.int64)):
        rng = np.random.default_rng([config.seed & 0xFFFFFFFF, epoch & 0xFFFFFFFF, int(key) & 0xFFFFFFFFFFFFFFFF])
        draws[i] = rng.random(17)
    lo, hi = config.cutmix_size
    return SampleParams(
        flip_h=draws[:, 0] < config.flip,
        flip_v=draws[:, 1] < config.flip,
        rotate=draws[:, 2] < config.rotate_shift,
        angle=np.radians((2 * draws[:, 3] - 1) * config.max_angle),
        shift=(2 * draws[:, 4:6] - 1) * config.max_shift,
        color=draws[:, 6] < config.color,
        gain=1 + (2 * draws[:, 7] - 1) * config.contrast,
        bias=(2 * draws[:, 8] - 1) * config.brightness,
        cutout=draws[:, 9] < config.cutout,
        cutout_centre=draws[:, 10:12],
        cutmix=draws[:, 12] < config.cutmix,
        cutmix_partner=1 + np.floor(draws[:, 13] * max(n - 1, 1)).astype(np.int64),
        cutmix_box=np.stack([draws[:, 14], draws[:, 15], lo + (hi - lo) * draws[:, 16]], axis=1),
    )
