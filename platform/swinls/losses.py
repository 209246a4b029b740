"""The paper's losses. Every one honours 255 = ignore and images without a landslide pixel.

Logits are N×2×H×W (background, landslide); masks N×H×W int64 in {0, 1, 255}.

- weighted CE: per image, landslide pixels weigh N_neg/N_pos (background 1), so both classes
  carry the same total weight; the per-image losses are averaged over images with labels.
- Lovász: a surrogate of the landslide IoU (Berman et al., 2018), as the hinge on the landslide
  margin or as Lovász-softmax on the class probabilities (`LossWeights.lovasz_kind`).
- focal, plain CE, and the image-level loss: BCE of the image head against "the patch holds a
  landslide pixel".
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch
import torch.nn.functional as F

IGNORE = 255


# No loss below has a data-dependent shape or a host read (no boolean indexing, no `.any()`
# branch, no `float()`): ignored pixels carry zero weight instead of being dropped, so a
# training step never waits for the GPU and the CPU can queue the next one.

def _safe_mean(total: torch.Tensor, count: torch.Tensor) -> torch.Tensor:
    """total / count, and 0 (with a gradient path) where count is 0."""
    return total / count.clamp(min=1)


def class_index(mask: torch.Tensor) -> torch.Tensor:
    """A class index for every pixel, in range whatever the mask holds (255 → 1): the loss weighs
    ignored pixels 0, so which class they index does not matter, but the index must be safe on its
    own. Deriving it from the `valid` flags instead (masked_fill) let inductor's generated CPU
    kernel read a flag from a buffer it had stored differently and index with 255: a C++ bounds
    assert that ends the process (a device assert on a GPU)."""
    return mask.clamp(max=1)


def cross_entropy(logits: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    valid = mask != IGNORE
    per_pixel = F.cross_entropy(logits.float(), class_index(mask), reduction="none")
    return _safe_mean((per_pixel * valid).sum(), valid.sum())


def weighted_cross_entropy(logits: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    valid = mask != IGNORE
    per_pixel = F.cross_entropy(logits.float(), class_index(mask), reduction="none")  # N×H×W
    positive = (mask == 1) & valid
    n_pos = positive.flatten(1).sum(1).float()
    n_neg = ((mask == 0) & valid).flatten(1).sum(1).float()
    # negatives per positive; an image of one class only (all landslide, or none) weighs its pixels 1
    ratio = torch.where((n_pos > 0) & (n_neg > 0), n_neg / n_pos.clamp(min=1), torch.ones_like(n_pos))
    weight = torch.where(positive, ratio.view(-1, 1, 1), valid.float())
    per_image_weight = weight.flatten(1).sum(1)
    labelled = per_image_weight > 0
    per_image = (per_pixel * weight).flatten(1).sum(1) / per_image_weight.clamp(min=1e-12)
    return _safe_mean(torch.where(labelled, per_image, torch.zeros_like(per_image)).sum(), labelled.sum())


def focal(logits: torch.Tensor, mask: torch.Tensor, gamma: float = 2.0) -> torch.Tensor:
    valid = mask != IGNORE
    log_p = F.log_softmax(logits.float(), dim=1)
    target = class_index(mask).unsqueeze(1)
    log_pt = log_p.gather(1, target).squeeze(1)
    loss = -((1 - log_pt.exp()) ** gamma) * log_pt
    return _safe_mean((loss * valid).sum(), valid.sum())


def lovasz_grad(sorted_truth: torch.Tensor) -> torch.Tensor:
    """Gradient of the Lovász extension of the Jaccard loss, for errors sorted decreasingly
    along the last dimension (one row per image, or a single row)."""
    total = sorted_truth.sum(-1, keepdim=True)
    intersection = total - sorted_truth.cumsum(-1)
    union = total + (1 - sorted_truth).cumsum(-1)
    jaccard = 1.0 - intersection / union
    return torch.cat([jaccard[..., :1], jaccard[..., 1:] - jaccard[..., :-1]], dim=-1)


def _lovasz_rows(errors: torch.Tensor, truth: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
    """The Lovász extension of the Jaccard loss per row (R×P truth in {0,1}; errors and valid
    R×P, or 1×P when every row has the same errors, which are then sorted once).

    Ignored entries sort last with zero truth and contribute relu(-inf) = 0: the cumulative
    sums over the valid entries before them are exactly those of the valid entries alone.
    """
    errors = torch.where(valid, errors, torch.full_like(errors, -torch.inf))
    errors_sorted, order = torch.sort(errors, dim=-1, descending=True)
    grad = lovasz_grad(torch.gather(truth, -1, order.expand_as(truth)))
    return (F.relu(errors_sorted) * grad).sum(-1)


def lovasz_hinge(logits: torch.Tensor, mask: torch.Tensor, per_image: bool = True) -> torch.Tensor:
    """Binary Lovász hinge on the landslide margin (logit₁ − logit₀); images (or, for the whole
    batch, the batch) without a labelled pixel add nothing."""
    margin = (logits[:, 1] - logits[:, 0]).float().flatten(1)
    flat = mask.flatten(1)
    if not per_image:
        margin, flat = margin.reshape(1, -1), flat.reshape(1, -1)
    valid = flat != IGNORE
    truth = (flat == 1).float()
    errors = 1.0 - margin * (2.0 * truth - 1.0)
    losses = _lovasz_rows(errors, truth, valid)
    labelled = valid.any(-1)
    return _safe_mean(torch.where(labelled, losses, torch.zeros_like(losses)).sum(), labelled.sum())


def lovasz_softmax(logits: torch.Tensor, mask: torch.Tensor, classes: str = "present",
                   one_sort: bool = True) -> torch.Tensor:
    """Lovász-softmax over both classes (all pixels of the batch; ignored ones left out); with
    "present", a class without a labelled pixel in the batch is left out of the mean.

    With two classes p₀ = 1 − p₁ and, on labelled pixels, t₀ = 1 − t₁, so both classes' errors
    are |t₁ − p₁|: one sort orders both, the same function of the logits as a sort per class
    (`one_sort=False`, the general path, which benchmarks/losses.py times beside it) at half
    the sorting, the step's costliest part of the loss."""
    num_classes = logits.shape[1]
    probs = F.softmax(logits.float(), dim=1).permute(1, 0, 2, 3).reshape(num_classes, -1)  # C×P
    labels = mask.reshape(1, -1)
    valid = labels != IGNORE
    truth = (labels == torch.arange(num_classes, device=labels.device).view(-1, 1)).float() * valid
    if num_classes == 2 and one_sort:
        losses = _lovasz_rows((truth[1:] - probs[1:]).abs(), truth, valid)
    else:
        losses = _lovasz_rows((truth - probs).abs(), truth, valid.expand(num_classes, -1))
    counted = truth.sum(-1) > 0 if classes == "present" else valid.any(-1).expand(num_classes)
    return _safe_mean(torch.where(counted, losses, torch.zeros_like(losses)).sum(), counted.sum())


def image_level(image_logit: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """BCE of the image head against δ(any landslide pixel); fully ignored images are left out."""
    labelled = (mask != IGNORE).flatten(1).any(1)
    target = (mask == 1).flatten(1).any(1).float()
    per_image = F.binary_cross_entropy_with_logits(image_logit.float(), target, reduction="none")
    return _safe_mean((per_image * labelled).sum(), labelled.sum())


@dataclass(frozen=True)
class LossWeights:
    """The composite loss: a weighted sum; the paper's stage 1 (its eq. 1) is wce + lovasz + image."""

    ce: float = 0.0
    wce: float = 1.0
    lovasz: float = 1.0
    # which Lovász surrogate the `lovasz` weight applies to. The hinge is piecewise linear in the
    # margin: pixels a model cannot tell apart settle on one of its breakpoints (margin -1, 0, +1)
    # whatever their mix of classes, and on the synthetic data stage 1 ends with the landslide
    # pixels at 0, where stage 2's plain CE tips them to background (README, Table 3). With
    # Lovász-softmax, on the probabilities of the two-class head, their margin follows the mix.
    lovasz_kind: Literal["softmax", "hinge"] = "softmax"
    focal: float = 0.0
    image: float = 1.0
    # the hinge over the whole batch: per image, the many patches without a landslide pixel each
    # add their largest error, which drives every margin down and the model to predict nothing
    lovasz_per_image: bool = False

    def __post_init__(self) -> None:
        weights = {k: v for k, v in vars(self).items() if k not in ("lovasz_per_image", "lovasz_kind")}
        for name, value in weights.items():
            if value < 0:
                raise ValueError(f"loss weight {name} must not be negative, got {value}")
        if not any(weights.values()):
            raise ValueError("every loss weight is zero: nothing would be trained")
        if self.lovasz_kind not in ("softmax", "hinge"):
            raise ValueError(f"loss lovasz_kind must be 'softmax' or 'hinge', got {self.lovasz_kind!r}")
        if self.lovasz_per_image and self.lovasz_kind != "hinge":
            raise ValueError("loss lovasz_per_image applies to lovasz_kind 'hinge' only")


PAPER_STAGE1 = LossWeights()
PAPER_STAGE2 = LossWeights(ce=1.0, wce=0.0, lovasz=0.0, image=0.0)


def composite(outputs: dict[str, torch.Tensor], mask: torch.Tensor, weights: LossWeights) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """The weighted total and each term's value, detached and left on the device (reading them
    would wait for the GPU): sum them there and read once an epoch."""
    logits = outputs["logits"]
    terms = {
        "ce": lambda: cross_entropy(logits, mask),
        "wce": lambda: weighted_cross_entropy(logits, mask),
        "lovasz": lambda: (lovasz_hinge(logits, mask, per_image=weights.lovasz_per_image)
                           if weights.lovasz_kind == "hinge" else lovasz_softmax(logits, mask)),
        "focal": lambda: focal(logits, mask),
    }
    total = logits.sum() * 0.0
    parts: dict[str, torch.Tensor] = {}
    for name, fn in terms.items():
        weight = getattr(weights, name)
        if weight:
            value = fn()
            total = total + weight * value
            parts[name] = value.detach()
    if weights.image:
        if "image_logit" not in outputs:
            raise ValueError("loss weight 'image' is set but the model has no image-level head (model.image_head)")
        value = image_level(outputs["image_logit"], mask)
        total = total + weights.image * value
        parts["image"] = value.detach()
    return total, parts
