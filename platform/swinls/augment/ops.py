"""Batched, seeded augmentations that move image and mask together, on any torch device.

Each sample's random draws come from a hash of (seed, epoch, row key) computed on the device
(`swinls.augment.params`), so a sample is augmented the same way whatever batch or worker it
lands in; only cutmix, which borrows from another sample of the batch, depends on the batch.
On a GPU every transform is applied to the whole batch at once and selected per sample with
`torch.where`: a handful of kernels per batch, no Python loop over samples and nothing that
waits for the device; on a CPU flips and rotate+shift go row by row, each row computed once
(`flip_rotate_shift`). Masks use 255 = ignore: pixels that come from outside the patch after
rotate+shift are ignored (not labelled background), and ignored pixels of pseudo-labelled rows
stay ignored through every transform.

Order: flips → rotate+shift (one pass) → colour → cutout → cutmix.
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
    """Callable on (image N×C×H×W, mask N×H×W int, keys, epoch) → a new augmented pair, the
    image float32 and the mask int64 whatever the stored dtypes (float16, uint8; on a CPU widened
    in the pass that flips and warps); the inputs are left untouched. Keys may be a tensor (kept on
    its device) or an array.

    `channels` names the image's channels: colour jitter changes only the Sentinel-2 bands among
    them (slope, DEM and principal components keep their values); None treats every channel as
    a band."""

    def __init__(self, config: AugmentConfig, channels: Sequence[str] | None = None) -> None:
        self.config = config
        self.optical = None if channels is None else tuple(name in OPTICAL_BANDS for name in channels)

    def __call__(self, image: torch.Tensor, mask: torch.Tensor, keys, epoch: int) -> tuple[torch.Tensor, torch.Tensor]:
        config = self.config
        if not config.enabled or image.shape[0] == 0:
            return image.float(), mask.long()
        p = sample_params(config, keys, epoch, image.device)
        if config.flip > 0 or config.rotate_shift > 0:
            rotate = p.rotate if config.rotate_shift > 0 else None
            image, mask = flip_rotate_shift(image, mask, p.flip_h, p.flip_v, rotate, p.angle, p.shift)
        image, mask = image.float(), mask.long()  # no copy where flips or rotations made one
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
    """Flips alone: `flip_rotate_shift` with nothing rotated."""
    return flip_rotate_shift(image, mask, flip_h, flip_v, None, None, None)


def rotate_shift(image, mask, selected, angle, shift):
    """Rotate+shift alone: `flip_rotate_shift` with nothing flipped."""
    none = torch.zeros(image.shape[0], dtype=torch.bool, device=image.device)
    return flip_rotate_shift(image, mask, none, none, selected, angle, shift)


def flip_rotate_shift(image, mask, flip_h, flip_v, rotate, angle, shift):
    """Flips, then rotate+shift (`rotate` None: flips only), as a new float32 image and int64
    mask. Image interpolated bilinearly; mask by nearest neighbour, 255 where the source is
    outside the patch.

    A row drawn to rotate has its flips folded into its affine matrix (a flip negates a
    normalised coordinate exactly) and is warped straight from the input; the other rows are
    flipped. On a GPU both are computed for the whole batch and chosen per row (choosing rows
    would wait for the device to say which); on a CPU each row is computed once, written into
    the output as it is widened: with 14 bands this is most of an input pipeline's time."""
    if image.device.type == "cpu":
        return _flip_rotate_rows(image, mask, flip_h, flip_v, rotate, angle, shift)
    return _flip_rotate_batched(image, mask, flip_h, flip_v, rotate, angle, shift)


def _flip_rotate_batched(image, mask, flip_h, flip_v, rotate, angle, shift):
    image, mask = image.float(), mask.long()
    flipped_image, flipped_mask = image, mask
    for selected, dim in ((flip_h, -1), (flip_v, -2)):
        flipped_image = torch.where(_rows(selected, image), flipped_image.flip(dim), flipped_image)
        flipped_mask = torch.where(_rows(selected, mask), flipped_mask.flip(dim), flipped_mask)
    if rotate is None:
        return flipped_image, flipped_mask
    warped, labels = _warp(image, mask, _on(angle, image), _on(shift, image), _on(flip_h, image), _on(flip_v, image))
    return (torch.where(_rows(rotate, image), warped, flipped_image),
            torch.where(_rows(rotate, mask), labels, flipped_mask))


def _flip_rotate_rows(image, mask, flip_h, flip_v, rotate, angle, shift):
    flip_h, flip_v = _on(flip_h, image, torch.bool), _on(flip_v, image, torch.bool)
    rotated = torch.zeros_like(flip_h) if rotate is None else _on(rotate, image, torch.bool)
    out_image = torch.empty(image.shape, dtype=torch.float32)
    out_mask = torch.empty(mask.shape, dtype=torch.int64)
    for row, (fh, fv, warp) in enumerate(zip(flip_h.tolist(), flip_v.tolist(), rotated.tolist())):
        if warp:
            continue
        dims = [d for d, on in ((-1, fh), (-2, fv)) if on]
        out_image[row].copy_(image[row].flip(dims) if dims else image[row])
        out_mask[row].copy_(mask[row].flip(dims) if dims else mask[row])
    rows = torch.nonzero(rotated).flatten()
    if rows.numel() > 0:
        warped, labels = _warp(image[rows], mask[rows], _on(angle, image)[rows], _on(shift, image)[rows],
                               flip_h[rows], flip_v[rows])
        out_image.index_copy_(0, rows, warped)
        out_mask.index_copy_(0, rows, labels)
    return out_image, out_mask


def affine_matrices(angle, shift, flip_h=None, flip_v=None) -> torch.Tensor:
    """N×2×3 matrices (float64) mapping output coordinates to input coordinates (affine_grid's theta).

    Coordinates are normalised to [-1, 1]; `shift` is the translation of the content as a
    fraction of the patch side (so a shift of 0.25 moves content a quarter of the side).
    `flip_h`/`flip_v` (per row) flip the input first: its x or y coordinate is negated.
    """
    angle, shift = torch.as_tensor(angle, dtype=torch.float64), torch.as_tensor(shift, dtype=torch.float64)
    cos, sin = torch.cos(angle), torch.sin(angle)
    rotation = torch.stack([torch.stack([cos, -sin], -1), torch.stack([sin, cos], -1)], -2)  # N×2×2
    translation = -2.0 * shift  # content moves by +shift: sample from -shift
    offset = torch.einsum("nij,nj->ni", rotation, translation)
    theta = torch.cat([rotation, offset.unsqueeze(-1)], dim=-1)
    for axis, flipped in ((0, flip_h), (1, flip_v)):
        if flipped is not None:
            sign = 1.0 - 2.0 * torch.as_tensor(flipped, dtype=torch.float64, device=theta.device)
            theta[:, axis] *= sign.view(-1, 1)
    return theta


def _warp(image, mask, angle, shift, flip_h=None, flip_v=None):
    theta = affine_matrices(angle, shift, flip_h, flip_v).to(torch.float32)
    grid = F.affine_grid(theta, list(image.shape), align_corners=False)
    warped = F.grid_sample(image.float(), grid, mode="bilinear", padding_mode="zeros", align_corners=False)
    # labels shifted by one so that the zero padding marks what came from outside the patch
    labels = F.grid_sample(mask.unsqueeze(1).float() + 1, grid, mode="nearest", padding_mode="zeros",
                           align_corners=False).squeeze(1).long()
    labels = torch.where(labels == 0, torch.full_like(labels, IGNORE + 1), labels) - 1
    return warped, labels


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
