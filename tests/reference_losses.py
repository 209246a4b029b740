"""The losses as they were before the sync-free rewrite (boolean indexing, `.any()`, per-image
loops): the reference the device-side implementations in `swinls.losses` are tested against.

The paper's losses. Every one honours 255 = ignore and images without a landslide pixel.

Logits are N×2×H×W (background, landslide); masks N×H×W int64 in {0, 1, 255}.

- weighted CE: per image, landslide pixels weigh N_neg/N_pos (background 1), so both classes
  carry the same total weight; the per-image losses are averaged over images with labels.
- Lovász hinge (binary, on the landslide margin) and Lovász-softmax: surrogates of the IoU
  (Berman et al., 2018).
- focal, plain CE, and the image-level loss: BCE of the image head against "the patch holds a
  landslide pixel".
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

IGNORE = 255


def cross_entropy(logits: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    if not (mask != IGNORE).any():
        return logits.sum() * 0.0
    return F.cross_entropy(logits.float(), mask, ignore_index=IGNORE)


def weighted_cross_entropy(logits: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    per_pixel = F.cross_entropy(logits.float(), mask, ignore_index=IGNORE, reduction="none")  # N×H×W
    valid = mask != IGNORE
    positive = (mask == 1) & valid
    n_pos = positive.flatten(1).sum(1).float()
    n_neg = ((mask == 0) & valid).flatten(1).sum(1).float()
    ratio = torch.where(n_pos > 0, n_neg / n_pos.clamp(min=1), torch.ones_like(n_pos))
    weight = torch.where(positive, ratio.view(-1, 1, 1), valid.float())
    per_image_weight = weight.flatten(1).sum(1)
    labelled = per_image_weight > 0
    if not labelled.any():
        return logits.sum() * 0.0
    per_image = (per_pixel * weight).flatten(1).sum(1)[labelled] / per_image_weight[labelled]
    return per_image.mean()


def focal(logits: torch.Tensor, mask: torch.Tensor, gamma: float = 2.0) -> torch.Tensor:
    valid = mask != IGNORE
    if not valid.any():
        return logits.sum() * 0.0
    log_p = F.log_softmax(logits.float(), dim=1)
    target = mask.clamp(max=1).unsqueeze(1)
    log_pt = log_p.gather(1, target).squeeze(1)
    loss = -((1 - log_pt.exp()) ** gamma) * log_pt
    return loss[valid].mean()


def lovasz_grad(sorted_truth: torch.Tensor) -> torch.Tensor:
    """Gradient of the Lovász extension of the Jaccard loss, for errors sorted decreasingly."""
    total = sorted_truth.sum()
    intersection = total - sorted_truth.cumsum(0)
    union = total + (1 - sorted_truth).cumsum(0)
    jaccard = 1.0 - intersection / union
    if sorted_truth.numel() > 1:
        jaccard[1:] = jaccard[1:] - jaccard[:-1].clone()
    return jaccard


def _lovasz_hinge_flat(margin_logits: torch.Tensor, truth: torch.Tensor) -> torch.Tensor:
    if truth.numel() == 0:
        return margin_logits.sum() * 0.0
    signs = 2.0 * truth - 1.0
    errors = 1.0 - margin_logits * signs
    errors_sorted, order = torch.sort(errors, descending=True)
    return torch.dot(F.relu(errors_sorted), lovasz_grad(truth[order]))


def lovasz_hinge(logits: torch.Tensor, mask: torch.Tensor, per_image: bool = True) -> torch.Tensor:
    """Binary Lovász hinge on the landslide margin (logit₁ − logit₀)."""
    margin = (logits[:, 1] - logits[:, 0]).float()
    if per_image:
        losses = []
        for m, y in zip(margin, mask):
            valid = y != IGNORE
            if valid.any():
                losses.append(_lovasz_hinge_flat(m[valid], y[valid].float()))
        return torch.stack(losses).mean() if losses else logits.sum() * 0.0
    valid = mask != IGNORE
    return _lovasz_hinge_flat(margin[valid], mask[valid].float())


def lovasz_softmax(logits: torch.Tensor, mask: torch.Tensor, classes: str = "present") -> torch.Tensor:
    """Lovász-softmax over both classes (all pixels of the batch; ignored ones left out)."""
    probs = F.softmax(logits.float(), dim=1).permute(0, 2, 3, 1).reshape(-1, logits.shape[1])
    labels = mask.reshape(-1)
    valid = labels != IGNORE
    probs, labels = probs[valid], labels[valid]
    if labels.numel() == 0:
        return logits.sum() * 0.0
    losses = []
    for c in range(probs.shape[1]):
        truth = (labels == c).float()
        if classes == "present" and truth.sum() == 0:
            continue
        errors = (truth - probs[:, c]).abs()
        errors_sorted, order = torch.sort(errors, descending=True)
        losses.append(torch.dot(errors_sorted, lovasz_grad(truth[order])))
    return torch.stack(losses).mean() if losses else logits.sum() * 0.0


def image_level(image_logit: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """BCE of the image head against δ(any landslide pixel); fully ignored images are left out."""
    labelled = (mask != IGNORE).flatten(1).any(1)
    if not labelled.any():
        return image_logit.sum() * 0.0
    target = (mask == 1).flatten(1).any(1).float()
    return F.binary_cross_entropy_with_logits(image_logit.float()[labelled], target[labelled])


