import itertools
import math

import numpy as np
import pytest
import torch

from swinls.losses import (IGNORE, LossWeights, composite, cross_entropy, focal, image_level, lovasz_hinge,
                           lovasz_softmax, weighted_cross_entropy)


def jaccard_loss(truth: np.ndarray, predicted: np.ndarray) -> float:
    union = np.logical_or(truth, predicted).sum()
    return 0.0 if union == 0 else 1.0 - np.logical_and(truth, predicted).sum() / union


def lovasz_extension_brute_force(values: np.ndarray, set_loss) -> float:
    """The Lovász extension of a submodular set loss at `values`: the maximum over every
    ordering of the greedy sum (Lovász, 1983) — no sorting trick involved."""
    n = len(values)
    best = -math.inf
    for order in itertools.permutations(range(n)):
        total, chosen = 0.0, []
        previous = set_loss(frozenset())
        for i in order:
            chosen.append(i)
            current = set_loss(frozenset(chosen))
            total += values[i] * (current - previous)
            previous = current
        best = max(best, total)
    return best


def hinge_by_definition(margin: np.ndarray, truth: np.ndarray) -> float:
    errors = np.maximum(1.0 - margin * (2 * truth - 1), 0.0)

    def set_loss(mispredicted):  # Jaccard loss of the prediction that gets exactly these pixels wrong
        predicted = truth.astype(bool).copy()
        for i in mispredicted:
            predicted[i] = not predicted[i]
        return jaccard_loss(truth.astype(bool), predicted)

    return lovasz_extension_brute_force(errors, set_loss)


def logits_for(margin: np.ndarray) -> torch.Tensor:
    """N×2×H×W logits whose landslide margin (logit₁ − logit₀) is `margin`."""
    m = torch.tensor(margin, dtype=torch.float32)
    return torch.stack([torch.zeros_like(m), m], dim=1)


@pytest.mark.parametrize("seed", range(6))
def test_lovasz_hinge_equals_its_definition_by_brute_force(seed):
    rng = np.random.default_rng(seed)
    margin = rng.normal(0, 1.5, (2, 2, 3))
    truth = rng.integers(0, 2, (2, 2, 3))
    if seed == 0:
        truth[0] = 0  # an image without a landslide pixel is defined too
    got = lovasz_hinge(logits_for(margin), torch.tensor(truth)).item()
    expected = np.mean([hinge_by_definition(margin[i].ravel(), truth[i].ravel()) for i in range(2)])
    assert got == pytest.approx(expected, rel=1e-5, abs=1e-6)


def test_lovasz_hinge_skips_ignored_pixels_as_if_absent():
    rng = np.random.default_rng(7)
    margin = rng.normal(size=(1, 2, 3))
    truth = np.array([[[1, 0, IGNORE], [0, 1, IGNORE]]])
    got = lovasz_hinge(logits_for(margin), torch.tensor(truth)).item()
    keep = truth[0] != IGNORE
    assert got == pytest.approx(hinge_by_definition(margin[0][keep], truth[0][keep]), rel=1e-5)


def test_lovasz_softmax_equals_its_definition_by_brute_force():
    rng = np.random.default_rng(3)
    logits = torch.tensor(rng.normal(size=(1, 2, 2, 3)), dtype=torch.float32)
    truth = rng.integers(0, 2, (1, 2, 3))
    probs = torch.softmax(logits, 1)[0].reshape(2, -1).numpy()
    flat = truth.ravel()
    expected = []
    for c in (0, 1):
        t = flat == c
        if not t.any():
            continue
        errors = np.abs(t.astype(float) - probs[c])
        expected.append(lovasz_extension_brute_force(errors, lambda s, t=t: jaccard_loss(t, np.array([t[i] != (i in s) for i in range(len(t))]))))
    assert lovasz_softmax(logits, torch.tensor(truth)).item() == pytest.approx(np.mean(expected), rel=1e-5)


def test_weighted_cross_entropy_weighs_landslide_pixels_by_the_negative_to_positive_ratio():
    rng = np.random.default_rng(1)
    logits = rng.normal(size=(3, 2, 4, 4))
    mask = rng.integers(0, 2, (3, 4, 4))
    mask[1] = 0  # no landslide: plain CE for this image
    mask[2, 0] = IGNORE
    expected = []
    for i in range(3):
        log_p = logits[i] - np.log(np.exp(logits[i]).sum(0, keepdims=True))
        valid = mask[i] != IGNORE
        pos, neg = (mask[i] == 1) & valid, (mask[i] == 0) & valid
        w_pos = neg.sum() / pos.sum() if pos.any() else 1.0
        ce = -np.where(mask[i] == 1, log_p[1], log_p[0])
        weight = np.where(pos, w_pos, 1.0) * valid
        expected.append((ce * weight).sum() / weight.sum())
    got = weighted_cross_entropy(torch.tensor(logits, dtype=torch.float32), torch.tensor(mask)).item()
    assert got == pytest.approx(np.mean(expected), rel=1e-5)


def test_focal_image_level_and_plain_ce_against_manual_values():
    rng = np.random.default_rng(2)
    logits = rng.normal(size=(2, 2, 3, 3))
    mask = rng.integers(0, 2, (2, 3, 3))
    mask[0, 0, 0] = IGNORE
    p = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    pt = np.where(mask == 1, p[:, 1], p[:, 0])
    valid = mask != IGNORE
    t_logits, t_mask = torch.tensor(logits, dtype=torch.float32), torch.tensor(mask)
    assert focal(t_logits, t_mask, gamma=2.0).item() == pytest.approx((-(1 - pt) ** 2 * np.log(pt))[valid].mean(), rel=1e-5)
    assert cross_entropy(t_logits, t_mask).item() == pytest.approx((-np.log(pt))[valid].mean(), rel=1e-5)
    image_logit = np.array([0.3, -1.2])
    target = np.array([(mask[i] == 1).any() for i in range(2)], dtype=float)
    bce = -(target * np.log(1 / (1 + np.exp(-image_logit))) + (1 - target) * np.log(1 - 1 / (1 + np.exp(-image_logit))))
    assert image_level(torch.tensor(image_logit, dtype=torch.float32), t_mask).item() == pytest.approx(bce.mean(), rel=1e-5)


def test_every_loss_is_finite_with_all_ignored_and_no_positive_images():
    logits = torch.randn(2, 2, 8, 8, requires_grad=True)
    all_ignored = torch.full((2, 8, 8), IGNORE)
    background = torch.zeros(2, 8, 8, dtype=torch.long)
    outputs = {"logits": logits, "image_logit": torch.randn(2, requires_grad=True)}
    weights = LossWeights(ce=1, wce=1, lovasz=1, lovasz_softmax=1, focal=1, image=1)
    for mask in (all_ignored, background):
        total, parts = composite(outputs, mask, weights)
        assert torch.isfinite(total) and set(parts) == {"ce", "wce", "lovasz", "lovasz_softmax", "focal", "image"}
        total.backward()
    assert composite(outputs, all_ignored, weights)[0].item() == 0.0


def test_composite_is_the_weighted_sum_of_its_terms():
    torch.manual_seed(0)
    outputs = {"logits": torch.randn(2, 2, 8, 8), "image_logit": torch.randn(2)}
    mask = torch.randint(0, 2, (2, 8, 8))
    total, parts = composite(outputs, mask, LossWeights(ce=0.5, wce=2.0, lovasz=1.5, image=0.25))
    assert total.item() == pytest.approx(0.5 * parts["ce"] + 2.0 * parts["wce"] + 1.5 * parts["lovasz"] + 0.25 * parts["image"], rel=1e-6)
    with pytest.raises(ValueError, match="no image-level head"):
        composite({"logits": outputs["logits"]}, mask, LossWeights(image=1.0))
    with pytest.raises(ValueError, match="every loss weight is zero"):
        LossWeights(ce=0, wce=0, lovasz=0, image=0)
