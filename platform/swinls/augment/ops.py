"""Batched, seeded augmentations that move image and mask together, on any torch device.

Each sample's random draws come from a hash of (seed, epoch, row key) computed on the device
(`swinls.augment.params`), so a sample is augmented the same way whatever batch or worker it
lands in; only cutmix, which borrows from another sample of the batch, depends on the batch.
Every transform is applied to the whole batch at once and selected per sample with
`torch.where`: a handful of kernels per batch, no Python loop over samples and nothing that
waits for the device. Masks use 255 = ignore: pixels that come from outside the patch after
rotate+shift are ignored (not labelled background), and ignored pixels of pseudo-labelled rows
stay ignored through every transform.

Order: flips → rotate+shift → colour → cutout → cutmix.
"""

from __future__ import annotations

import math
from typing import Sequence

import torch
import torch.nn.functional as F

from swinls.augment.config import IGNORE, AugmentConfig
from swinls.augment.params import sample_params
from swinls.bands import OPTICAL_BANDS


class Augmenter:
    """Callable on (image N×C×H×W float, mask N×H×W int, keys, epoch) → a new augmented pair;
    the inputs are left untouched. Keys may be a tensor (kept on its device) or an array.

    `channels` names the image's channels: colour jitter changes only the Sentinel-2 bands among
    them (slope, DEM and principal components keep their values); None treats every channel as
    a band."""

    def __init__(self, config: AugmentConfig, channels: Sequence[str] | None = None) -> None:
        self.config = config
        self.optical = None if channels is None else tuple(name in OPTICAL_BANDS for name in channels)

    def __call__(self, image: torch.Tensor, mask: torch.Tensor, keys, epoch: int) -> tuple[torch.Tensor, torch.Tensor]:
        config = self.config
        if not config.enabled or image.shape[0] == 0:
            return image, mask
        p = sample_params(config, keys, epoch, image.device)
        if config.flip > 0:
            image, mask = flip(image, mask, p.flip_h, p.flip_v)
        if config.rotate_shift > 0:
            image, mask = rotate_shift(image, mask, p.rotate, p.angle, p.shift)
        if config.color > 0:
            image = color(image, p.color, p.gain, p.bias, self.optical)
        if config.cutout > 0:
            image, mask = cutout(image, mask, p.cutout, p.cutout_centre, config.cutout_size)
        if config.cutmix > 0 and image.shape[0] > 1:
            image, mask = cutmix(image, mask, p.cutmix, p.cutmix_partner, p.cutmix_box)
        return image, mask


# Each transform returns new tensors; the per-sample selections are bool tensors (or arrays).

def _on(value, like: torch.Tensor, dtype=None) -> torch.Tensor:
    return torch.as_tensor(value, device=like.device, dtype=dtype)


def _rows(selected, like: torch.Tensor) -> torch.Tensor:
    """A per-sample choice broadcast against `like` (N×… )."""
    return _on(selected, like, torch.bool).view(-1, *([1] * (like.dim() - 1)))


def flip(image, mask, flip_h, flip_v):
    """On a GPU, whole-batch flips selected per sample (nothing waits for the device); on a CPU
    each sample flipped on its own axes and stacked once: a third of the time for 14 bands."""
    if image.device.type == "cpu" and image.shape[0] > 0:
        return flip_each(image, mask, flip_h, flip_v)
    return flip_batched(image, mask, flip_h, flip_v)


def flip_batched(image, mask, flip_h, flip_v):
    for selected, dim in ((flip_h, -1), (flip_v, -2)):
        image = torch.where(_rows(selected, image), image.flip(dim), image)
        mask = torch.where(_rows(selected, mask), mask.flip(dim), mask)
    return image, mask


def flip_each(image, mask, flip_h, flip_v):
    h, v = torch.as_tensor(flip_h, dtype=torch.bool).tolist(), torch.as_tensor(flip_v, dtype=torch.bool).tolist()
    dims = [[d for d, on in ((-1, fh), (-2, fv)) if on] for fh, fv in zip(h, v)]
    return (torch.stack([x.flip(d) if d else x for x, d in zip(image, dims)]),
            torch.stack([x.flip(d) if d else x for x, d in zip(mask, dims)]))


def affine_matrices(angle, shift) -> torch.Tensor:
    """N×2×3 matrices (float64) mapping output coordinates to input coordinates (affine_grid's theta).

    Coordinates are normalised to [-1, 1]; `shift` is the translation of the content as a
    fraction of the patch side (so a shift of 0.25 moves content a quarter of the side).
    """
    angle, shift = torch.as_tensor(angle, dtype=torch.float64), torch.as_tensor(shift, dtype=torch.float64)
    cos, sin = torch.cos(angle), torch.sin(angle)
    rotation = torch.stack([torch.stack([cos, -sin], -1), torch.stack([sin, cos], -1)], -2)  # N×2×2
    translation = -2.0 * shift  # content moves by +shift: sample from -shift
    offset = torch.einsum("nij,nj->ni", rotation, translation)
    return torch.cat([rotation, offset.unsqueeze(-1)], dim=-1)


def rotate_shift(image, mask, selected, angle, shift):
    """Image interpolated bilinearly; mask by nearest neighbour, 255 where the source is outside.

    On a GPU the whole batch is warped in one grid_sample and unselected samples keep their pixels
    (choosing rows would wait for the device to say which). On a CPU only the selected rows are
    warped: at rotate_shift 0.5 that is half the work, and with 14 bands the warp is most of an
    input pipeline's time. Each row's result is the same either way."""
    angle, shift = _on(angle, image), _on(shift, image)
    if image.device.type == "cpu":
        rows = torch.nonzero(_on(selected, image, torch.bool)).flatten()
        if rows.numel() == 0:
            return image, mask
        warped, labels = _warp(image[rows], mask[rows], angle[rows], shift[rows])
        image, mask = image.index_copy(0, rows, warped), mask.index_copy(0, rows, labels)
        return image, mask
    warped, labels = _warp(image, mask, angle, shift)
    return (torch.where(_rows(selected, image), warped, image), torch.where(_rows(selected, mask), labels, mask))


def _warp(image, mask, angle, shift):
    theta = affine_matrices(angle, shift).to(torch.float32)
    grid = F.affine_grid(theta, list(image.shape), align_corners=False)
    warped = F.grid_sample(image.float(), grid, mode="bilinear", padding_mode="zeros", align_corners=False)
    # labels shifted by one so that the zero padding marks what came from outside the patch
    labels = F.grid_sample((mask + 1).unsqueeze(1).float(), grid, mode="nearest", padding_mode="zeros",
                           align_corners=False).squeeze(1).to(mask.dtype)
    labels = torch.where(labels == 0, torch.full_like(labels, IGNORE + 1), labels) - 1
    return warped.to(image.dtype), labels


def color(image, selected, gain, bias, optical: Sequence[bool] | None = None):
    """Contrast around each band's own mean in the image and a brightness offset, in normalised
    units, on the optical bands only (`optical`: one flag per channel; None: every channel)."""
    g = _on(gain, image, image.dtype).view(-1, 1, 1, 1)
    b = _on(bias, image, image.dtype).view(-1, 1, 1, 1)
    mean = image.mean(dim=(2, 3), keepdim=True)
    chosen = _rows(selected, image)
    if optical is not None:
        chosen = chosen & _on(optical, image, torch.bool).view(1, -1, 1, 1)
    return torch.where(chosen, (image - mean) * g + mean + b, image)


def box_masks(centre_row, centre_col, side, height: int, width: int) -> torch.Tensor:
    """N×H×W bool: each sample's box of `side` (a fraction of the patch, scalar or per sample)
    around its centre, moved inside the patch. Rounding as Python's round (half to even)."""
    centre_row, centre_col = torch.as_tensor(centre_row, dtype=torch.float64), torch.as_tensor(centre_col, dtype=torch.float64)
    side = torch.as_tensor(side, dtype=torch.float64, device=centre_row.device).expand_as(centre_row)
    h = torch.round(side * height).clamp(min=1)
    w = torch.round(side * width).clamp(min=1)
    r0 = torch.minimum(torch.round(centre_row * height - h / 2).clamp(min=0), height - h)
    c0 = torch.minimum(torch.round(centre_col * width - w / 2).clamp(min=0), width - w)
    rows = torch.arange(height, device=centre_row.device, dtype=torch.float64).view(1, -1, 1)
    cols = torch.arange(width, device=centre_row.device, dtype=torch.float64).view(1, 1, -1)
    r0, c0, h, w = (v.view(-1, 1, 1) for v in (r0, c0, h, w))
    return (rows >= r0) & (rows < r0 + h) & (cols >= c0) & (cols < c0 + w)


def cutout(image, mask, selected, centre, size: float):
    centre = _on(centre, image, torch.float64)
    inside = box_masks(centre[:, 0], centre[:, 1], size, *image.shape[-2:]) & _rows(selected, mask)
    image = image.masked_fill(inside.unsqueeze(1), 0.0)  # the normalised mean
    return image, mask.masked_fill(inside, IGNORE)  # nothing to learn where the image was erased


def cutmix(image, mask, selected, partner_offset, box):
    """Paste a box of another sample (image and mask together) into the selected ones; partners
    are read as they were before any pasting."""
    n = image.shape[0]
    box = _on(box, image, torch.float64)
    partner = (torch.arange(n, device=image.device) + _on(partner_offset, image, torch.int64)) % n
    inside = box_masks(box[:, 0], box[:, 1], box[:, 2], *image.shape[-2:]) & _rows(selected, mask)
    return (torch.where(inside.unsqueeze(1), image[partner], image),
            torch.where(inside, mask[partner], mask))


def rotate_point(row: float, col: float, angle: float, shift: tuple[float, float], height: int, width: int) -> tuple[float, float]:
    """Where the content at pixel (row, col) lands after rotate_shift — for tests and debugging."""
    # pixel centre → normalised coordinates (align_corners=False)
    x = (2 * col + 1) / width - 1
    y = (2 * row + 1) / height - 1
    # forward map is the inverse of theta: out = R^T (in) + shift*2
    cos, sin = math.cos(angle), math.sin(angle)
    xo = cos * x + sin * y + 2 * shift[0]
    yo = -sin * x + cos * y + 2 * shift[1]
    return ((yo + 1) * height - 1) / 2, ((xo + 1) * width - 1) / 2
