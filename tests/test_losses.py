import itertools
import math
from pathlib import Path

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
    for kind in ("softmax", "hinge"):
        weights = LossWeights(ce=1, wce=1, lovasz=1, lovasz_kind=kind, focal=1, image=1)
        for mask in (all_ignored, background):
            total, parts = composite(outputs, mask, weights)
            assert torch.isfinite(total) and set(parts) == {"ce", "wce", "lovasz", "focal", "image"}
            total.backward()
        assert composite(outputs, all_ignored, weights)[0].item() == 0.0


def test_composite_is_the_weighted_sum_of_its_terms():
    torch.manual_seed(0)
    outputs = {"logits": torch.randn(2, 2, 8, 8), "image_logit": torch.randn(2)}
    mask = torch.randint(0, 2, (2, 8, 8))
    total, parts = composite(outputs, mask, LossWeights(ce=0.5, wce=2.0, lovasz=1.5, image=0.25))
    parts = {k: v.item() for k, v in parts.items()}
    assert total.item() == pytest.approx(0.5 * parts["ce"] + 2.0 * parts["wce"] + 1.5 * parts["lovasz"] + 0.25 * parts["image"], rel=1e-6)
    with pytest.raises(ValueError, match="no image-level head"):
        composite({"logits": outputs["logits"]}, mask, LossWeights(image=1.0))
    with pytest.raises(ValueError, match="every loss weight is zero"):
        LossWeights(ce=0, wce=0, lovasz=0, image=0)


def random_case(seed: int, n=4, size=12):
    """Logits, image logits and masks with ignored pixels, an image without landslide pixels and
    a fully ignored one: every branch the old implementations took."""
    g = torch.Generator().manual_seed(seed)
    logits = torch.randn(n, 2, size, size, generator=g) * 2
    image_logit = torch.randn(n, generator=g)
    mask = (torch.rand(n, size, size, generator=g) < 0.3).long()
    mask[torch.rand(n, size, size, generator=g) < 0.2] = IGNORE
    mask[1] = torch.where(mask[1] == 1, torch.zeros_like(mask[1]), mask[1])  # no landslide pixel
    mask[2] = IGNORE  # nothing labelled
    return logits, image_logit, mask


@pytest.mark.parametrize("seed", range(4))
def test_sync_free_losses_equal_the_previous_implementations(seed):
    from tests import reference_losses as ref

    logits, image_logit, mask = random_case(seed)
    pairs = [(cross_entropy, ref.cross_entropy), (weighted_cross_entropy, ref.weighted_cross_entropy),
             (focal, ref.focal), (lovasz_softmax, ref.lovasz_softmax)]
    for new, old in pairs:
        for m in (mask, torch.full_like(mask, IGNORE), torch.zeros_like(mask)):
            a, b = new(logits, m), old(logits, m)
            assert a.item() == pytest.approx(b.item(), rel=1e-5, abs=1e-6), new.__name__
    for per_image in (True, False):
        a = lovasz_hinge(logits.clone().requires_grad_(), mask, per_image=per_image)
        b = ref.lovasz_hinge(logits, mask, per_image=per_image)
        assert a.item() == pytest.approx(b.item(), rel=1e-5), per_image
    assert image_level(image_logit, mask).item() == pytest.approx(ref.image_level(image_logit, mask).item(), rel=1e-6)
    # and the gradients agree: the ignored pixels get none
    for new, old in [(lovasz_hinge, ref.lovasz_hinge), (weighted_cross_entropy, ref.weighted_cross_entropy)]:
        x, y = logits.clone().requires_grad_(), logits.clone().requires_grad_()
        new(x, mask).backward()
        old(y, mask).backward()
        torch.testing.assert_close(x.grad, y.grad, rtol=1e-4, atol=1e-6)
        assert (x.grad.abs().sum(1)[mask == IGNORE] == 0).all()


@pytest.mark.parametrize("seed", range(4))
def test_two_class_lovasz_softmax_sorts_once_and_is_the_same_function_as_a_sort_per_class(seed):
    from tests import reference_losses as ref

    logits, _, mask = random_case(seed)
    ties = torch.zeros_like(logits)  # every error equal: the order among ties must not matter
    for x in (logits, ties, logits.round()):
        for m in (mask, torch.zeros_like(mask), torch.ones_like(mask), torch.full_like(mask, IGNORE)):
            grads = []
            for loss in (lambda a: lovasz_softmax(a, m), lambda a: lovasz_softmax(a, m, one_sort=False),
                         lambda a: ref.lovasz_softmax(a, m)):  # "present": a class absent from the batch is left out
                a = x.clone().requires_grad_()
                value = loss(a)
                value.backward()
                grads.append((value.item(), a.grad))
            (one, g_one), (per_class, g_per_class), (reference, g_ref) = grads
            assert one == pytest.approx(per_class, rel=1e-5, abs=1e-6) and one == pytest.approx(reference, rel=1e-5, abs=1e-6)
            if x is logits:  # at ties (equal or rounded logits) the subgradient depends on the sort's order
                torch.testing.assert_close(g_one, g_per_class, rtol=1e-4, atol=1e-6)
                torch.testing.assert_close(g_one, g_ref, rtol=1e-4, atol=1e-6)
            assert (g_one.abs().sum(1)[m == IGNORE] == 0).all()
            # "all": both classes counted, absent or not (only a batch with no labelled pixel counts none)
            expected = ref.lovasz_softmax(x, m, classes="all").item()
            for one_sort in (True, False):
                got = lovasz_softmax(x, m, classes="all", one_sort=one_sort).item()
                assert got == pytest.approx(expected, rel=1e-5, abs=1e-6)


@pytest.mark.parametrize("lovasz_kind", ["softmax", "hinge"])
def test_a_loss_step_never_reads_the_device(lovasz_kind):
    """No term converts to a Python number or branches on the data (which would wait for a GPU)."""
    logits, image_logit, mask = random_case(0)
    weights = LossWeights(ce=1, wce=1, lovasz=1, lovasz_kind=lovasz_kind, focal=1, image=1)
    from torch.overrides import TorchFunctionMode

    class NoHostReads(TorchFunctionMode):
        def __torch_function__(self, func, types, args=(), kwargs=None):
            name = getattr(func, "__name__", "")
            if name in ("item", "tolist", "__bool__", "__float__", "__int__", "nonzero", "masked_select") or (
                    name == "__getitem__" and any(isinstance(a, torch.Tensor) and a.dtype == torch.bool for a in args[1:])):
                raise AssertionError(f"host read: {name}")
            return func(*args, **(kwargs or {}))

    with NoHostReads():
        total, parts = composite({"logits": logits, "image_logit": image_logit}, mask, weights)
    assert all(isinstance(v, torch.Tensor) for v in parts.values()) and torch.isfinite(total)


def test_model_and_loss_compiled_together_give_the_plain_loss():
    from swinls.accel import GpuSettings
    from swinls.models import ModelConfig, build_model
    from swinls.training.step import compiled_forward_loss, forward_loss

    torch.manual_seed(0)
    model = build_model(ModelConfig(size="nano", decoder_channels=(16, 16, 8, 8, 8), drop_path=0.0), ("B4", "B3", "B2")).eval()
    gpu = GpuSettings.resolve("cpu", bf16=None, channels_last=None, deterministic=True)
    _, _, mask = random_case(1, n=3, size=128)
    image = torch.randn(3, 3, 128, 128)
    plain = forward_loss(model, LossWeights(), gpu)(image, mask)
    compiled = compiled_forward_loss(model, LossWeights(), gpu, backend="eager")(image, mask)
    assert compiled.item() == pytest.approx(plain.item(), rel=1e-5)


def _argmin_shared_margin(lovasz_kind: str, ambiguous_pos: int, ambiguous_neg: int) -> float:
    """Where weighted CE + Lovász puts one margin shared by a group of pixels a model cannot tell
    apart, in an image whose other pixels are confidently right (3 % landslide, 64×64)."""
    pos, neg = 123, 4096 - 123
    margins = torch.linspace(-4, 4, 161)
    truth = torch.cat([torch.ones(pos - ambiguous_pos), torch.zeros(neg - ambiguous_neg),
                       torch.ones(ambiguous_pos), torch.zeros(ambiguous_neg)]).long().view(1, 64, 64)
    weights = LossWeights(wce=1, lovasz=1, lovasz_kind=lovasz_kind, image=0)
    values = []
    for shared in margins:
        margin = torch.cat([torch.full((pos - ambiguous_pos,), 3.0), torch.full((neg - ambiguous_neg,), -3.0),
                            torch.full((ambiguous_pos + ambiguous_neg,), float(shared))])
        logits = torch.stack([torch.zeros_like(margin), margin]).view(1, 2, 64, 64)
        values.append(composite({"logits": logits}, truth, weights)[0].item())
    return round(margins[int(np.argmin(values))].item(), 3)


def test_the_lovasz_hinge_pins_inseparable_pixels_at_a_breakpoint_and_softmax_follows_their_odds():
    """Why `lovasz_kind` defaults to softmax: the hinge is piecewise linear in the margin, so a group
    of pixels the model cannot separate settles on one of its breakpoints whatever the group's mix
    of classes; with Lovász-softmax the margin falls as the group's share of landslide pixels falls."""
    mixes = [(25, 100), (25, 400), (25, 800), (25, 1600)]  # ever fewer landslide pixels in the group
    hinge = [_argmin_shared_margin("hinge", p, n) for p, n in mixes]
    softmax = [_argmin_shared_margin("softmax", p, n) for p, n in mixes]
    assert len(set(hinge)) == 1 and hinge[0] in (-1.0, 0.0, 1.0), hinge
    assert all(a > b for a, b in zip(softmax, softmax[1:])), softmax


def test_lovasz_kind_chooses_the_surrogate_and_per_image_is_the_hinges_alone():
    logits, _, mask = random_case(1)
    for kind, expected in (("hinge", lovasz_hinge(logits, mask, per_image=False)), ("softmax", lovasz_softmax(logits, mask))):
        _, parts = composite({"logits": logits}, mask, LossWeights(wce=0, lovasz=1, lovasz_kind=kind, image=0))
        assert parts["lovasz"].item() == pytest.approx(expected.item(), rel=1e-6)
    with pytest.raises(ValueError, match="lovasz_per_image applies to lovasz_kind 'hinge' only"):
        LossWeights(lovasz_per_image=True)


def test_weighted_cross_entropy_keeps_images_of_one_class_with_weight_one():
    """An all-landslide patch (no negative pixel) used to get ratio 0: every weight 0, no gradient."""
    logits = torch.randn(2, 2, 4, 4, requires_grad=True)
    mask = torch.ones(2, 4, 4, dtype=torch.long)
    mask[1] = 0  # the second image: no landslide at all
    loss = weighted_cross_entropy(logits, mask)
    plain = torch.nn.functional.cross_entropy(logits.float(), mask)
    assert loss.item() == pytest.approx(plain.item(), rel=1e-6)  # both images, each pixel weighing 1
    loss.backward()
    assert logits.grad[0].abs().sum() > 0 and logits.grad[1].abs().sum() > 0


def test_the_inductor_compiled_step_equals_eager_on_ignored_pixels(tmp_path):
    """With model.compile's default backend, a batch holding 255s used to abort the process in a
    generated kernel ("index out of bounds: 0 <= tmp < 2"): run where that cannot take pytest down."""
    import json
    import os
    import subprocess
    import sys

    env = dict(os.environ, TORCHINDUCTOR_CACHE_DIR=str(tmp_path / "inductor"))
    done = subprocess.run([sys.executable, "-m", "tests.compiled_loss_case"], capture_output=True, text=True,
                          timeout=300, cwd=str(Path(__file__).resolve().parents[1]), env=env)
    assert done.returncode == 0, done.stderr[-2000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["compiled"] == pytest.approx(result["eager"], rel=1e-5)
    assert result["gradient_difference"] <= 1e-5 * result["gradient_scale"] + 1e-7
