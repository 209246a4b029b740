"""The per-sample augmentation loops as they were before vectorising (numpy parameters, one
sample at a time): the reference each batched transform of `swinls.augment.ops` is tested against.

Batched, seeded augmentations that move image and mask together, on any torch device.

Each sample's random parameters come from its own generator, seeded by (seed, epoch, row key),
so a sample is augmented the same way whatever batch or worker it lands in; only cutmix, which
borrows from another sample of the batch, depends on the batch. Masks use 255 = ignore: pixels
that come from outside the patch after rotate+shift are ignored (not labelled background), and
ignored pixels of pseudo-labelled rows stay ignored through every transform.

Order: flips → rotate+shift → colour → cutout → cutmix.
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F

from swinls.augment.config import IGNORE


# The transforms below modify `image` and `mask` in place and also return them.


def _index(selected: np.ndarray, device: torch.device) -> torch.Tensor:
    return torch.from_numpy(np.flatnonzero(selected)).to(device)


def flip(image, mask, flip_h: np.ndarray, flip_v: np.ndarray):
    # a loop of per-sample copies is several times faster on CPU than one advanced-index put
    for selected, dim in ((flip_h, -1), (flip_v, -2)):
        for i in np.flatnonzero(selected):
            image[i] = image[i].flip(dim)
            mask[i] = mask[i].flip(dim)
    return image, mask


def affine_matrices(angle: np.ndarray, shift: np.ndarray) -> np.ndarray:
    """N×2×3 matrices mapping output coordinates to input coordinates (affine_grid's theta).

    Coordinates are normalised to [-1, 1]; `shift` is the translation of the content as a
    fraction of the patch side (so a shift of 0.25 moves content a quarter of the side).
    """
    cos, sin = np.cos(angle), np.sin(angle)
    rotation = np.stack([np.stack([cos, -sin], -1), np.stack([sin, cos], -1)], -2)  # N×2×2
    translation = -2.0 * shift  # content moves by +shift: sample from -shift
    offset = np.einsum("nij,nj->ni", rotation, translation)
    return np.concatenate([rotation, offset[..., None]], axis=-1)


def rotate_shift(image, mask, selected: np.ndarray, angle: np.ndarray, shift: np.ndarray):
    """Image interpolated bilinearly; mask by nearest neighbour, 255 where the source is outside."""
    rows = np.flatnonzero(selected)
    idx = torch.from_numpy(rows).to(image.device)
    theta = torch.as_tensor(affine_matrices(angle[rows], shift[rows]), dtype=torch.float32, device=image.device)
    sub_image = image[idx]
    grid = F.affine_grid(theta, list(sub_image.shape), align_corners=False)
    warped = F.grid_sample(sub_image.float(), grid, mode="bilinear", padding_mode="zeros", align_corners=False)
    # labels shifted by one so that the zero padding marks what came from outside the patch
    labels = F.grid_sample((mask[idx] + 1).unsqueeze(1).float(), grid, mode="nearest", padding_mode="zeros",
                           align_corners=False).squeeze(1).long()
    labels = torch.where(labels == 0, torch.full_like(labels, IGNORE + 1), labels) - 1
    for k, i in enumerate(rows):
        image[i] = warped[k]
        mask[i] = labels[k]
    return image, mask


def color(image, selected: np.ndarray, gain: np.ndarray, bias: np.ndarray):
    """Contrast around each band's own mean in the image and a brightness offset, in normalised units."""
    idx = _index(selected, image.device)
    sub = image[idx]
    g = torch.as_tensor(gain[selected], dtype=sub.dtype, device=sub.device).view(-1, 1, 1, 1)
    b = torch.as_tensor(bias[selected], dtype=sub.dtype, device=sub.device).view(-1, 1, 1, 1)
    mean = sub.mean(dim=(2, 3), keepdim=True)
    image[idx] = (sub - mean) * g + mean + b
    return image


def _box(centre_row: float, centre_col: float, side: float, height: int, width: int) -> tuple[int, int, int, int]:
    h, w = max(1, int(round(side * height))), max(1, int(round(side * width)))
    r0 = min(max(int(round(centre_row * height - h / 2)), 0), height - h)
    c0 = min(max(int(round(centre_col * width - w / 2)), 0), width - w)
    return r0, r0 + h, c0, c0 + w


def cutout(image, mask, selected: np.ndarray, centre: np.ndarray, size: float):
    height, width = image.shape[-2:]
    for i in np.flatnonzero(selected):
        r0, r1, c0, c1 = _box(centre[i, 0], centre[i, 1], size, height, width)
        image[i, :, r0:r1, c0:c1] = 0.0  # the normalised mean
        mask[i, r0:r1, c0:c1] = IGNORE  # nothing to learn where the image was erased
    return image, mask


def cutmix(image, mask, selected: np.ndarray, partner_offset: np.ndarray, box: np.ndarray):
    """Paste a box of another sample (image and mask together) into the selected ones; partners
    are read as they were before any pasting."""
    source_image, source_mask = image.clone(), mask.clone()
    n = image.shape[0]
    height, width = image.shape[-2:]
    for i in np.flatnonzero(selected):
        j = int((i + partner_offset[i]) % n)
        r0, r1, c0, c1 = _box(box[i, 0], box[i, 1], box[i, 2], height, width)
        image[i, :, r0:r1, c0:c1] = source_image[j, :, r0:r1, c0:c1]
        mask[i, r0:r1, c0:c1] = source_mask[j, r0:r1, c0:c1]
    return image, mask




def sample_params_host(config, keys: np.ndarray, epoch: int) -> dict:
    """The per-sample numpy generators the draws came from before the counter-based hash."""
    n = len(keys)
    draws = np.empty((n, 17))
    for i, key in enumerate(np.asarray(keys, dtype=np.int64)):
        rng = np.random.default_rng([config.seed & 0xFFFFFFFF, epoch & 0xFFFFFFFF, int(key) & 0xFFFFFFFFFFFFFFFF])
        draws[i] = rng.random(17)
    return {"config": config, "flip_h": draws[:, 0] < config.flip, "flip_v": draws[:, 1] < config.flip,
            "rotate": draws[:, 2] < config.rotate_shift, "angle": np.radians((2 * draws[:, 3] - 1) * config.max_angle),
            "shift": (2 * draws[:, 4:6] - 1) * config.max_shift}


def transform_host(image, mask, params: dict):
    """Flips and rotate+shift as the old Augmenter applied them (the paper's recipe)."""
    flip(image, mask, params["flip_h"], params["flip_v"])
    if params["rotate"].any():
        rotate_shift(image, mask, params["rotate"], params["angle"], params["shift"])
    return image, mask
