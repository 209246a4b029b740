import numpy as np
import pytest
import torch

from swinls.augment import IGNORE, AugmentConfig
from swinls.augment.ops import (Augmenter, _flip_rotate_batched, _flip_rotate_rows, affine_matrices, color, cutmix,
                                cutout, flip, flip_rotate_shift, rotate_point, rotate_shift)
from swinls.augment.params import DRAWS, sample_params, uniforms

H = W = 32


def marked_batch(n=4, row=5, col=9):
    image = torch.zeros(n, 3, H, W)
    image[:, :, row - 1:row + 2, col - 1:col + 2] = 10.0
    mask = torch.zeros(n, H, W, dtype=torch.long)
    mask[:, row - 1:row + 2, col - 1:col + 2] = 1
    return image, mask


def test_flips_move_image_and_mask_together():
    image, mask = marked_batch(2)
    out_image, out_mask = flip(image.clone(), mask.clone(), np.array([True, False]), np.array([False, True]))
    assert out_mask[0, 5, W - 1 - 9] == 1 and out_image[0, 0, 5, W - 1 - 9] == 10.0
    assert out_mask[1, H - 1 - 5, 9] == 1 and out_image[1, 0, H - 1 - 5, 9] == 10.0
    assert torch.equal(out_mask.bool(), out_image[:, 0] > 5)


@pytest.mark.parametrize("angle_deg, shift", [(90.0, (0.0, 0.0)), (-37.0, (0.1, -0.15)), (180.0, (0.2, 0.05)), (0.0, (0.25, 0.0))])
def test_rotate_shift_puts_a_marked_pixel_where_the_geometry_says(angle_deg, shift):
    image, mask = marked_batch(1, row=12, col=17)
    angle = np.radians([angle_deg])
    out_image, out_mask = rotate_shift(image, mask, np.array([True]), angle, np.array([shift]))
    row, col = rotate_point(12, 17, float(angle[0]), shift, H, W)
    r, c = int(round(row)), int(round(col))
    assert out_mask[0, r, c] == 1, (row, col)
    assert out_image[0, 0, r, c] > 5.0
    # the square moved as one piece: wholly-inside image pixels are labelled, labelled pixels
    # carry some of the square (the image is interpolated, the mask nearest)
    fully_inside, labelled = out_image[0, 0] > 9.99, out_mask[0] == 1
    assert fully_inside.any() and labelled[fully_inside].all() and (out_image[0, 0][labelled] > 0).all()


def test_pixels_coming_from_outside_the_patch_are_ignored_not_background():
    image = torch.ones(1, 2, H, W)
    mask = torch.zeros(1, H, W, dtype=torch.long)
    _, shifted = rotate_shift(image.clone(), mask.clone(), np.array([True]), np.array([0.0]), np.array([[0.25, 0.0]]))
    assert (shifted[0, :, : W // 4] == IGNORE).all()  # content moved right: the left strip is new
    assert (shifted[0, :, W // 4:] == 0).all()
    _, rotated = rotate_shift(image.clone(), mask.clone(), np.array([True]), np.array([np.pi / 4]), np.zeros((1, 2)))
    assert rotated[0, 0, 0] == IGNORE and rotated[0, H // 2, W // 2] == 0
    identity_image, identity_mask = rotate_shift(image.clone(), mask.clone(), np.array([True]), np.array([0.0]), np.zeros((1, 2)))
    assert torch.equal(identity_mask, mask) and torch.allclose(identity_image, image)


def test_affine_matrices_are_rotations_plus_translation():
    theta = affine_matrices(np.array([0.3]), np.array([[0.1, -0.2]]))[0]
    np.testing.assert_allclose(theta[:, :2] @ theta[:, :2].T, np.eye(2), atol=1e-12)


def test_cutout_erases_the_box_and_ignores_its_labels():
    image, mask = marked_batch(1, row=16, col=16)
    out_image, out_mask = cutout(image, mask, np.array([True]), np.array([[0.5, 0.5]]), 0.25)
    assert (out_image[0, :, 12:20, 12:20] == 0).all() and (out_mask[0, 12:20, 12:20] == IGNORE).all()
    assert (out_mask[0, :12] == 0).all()


def test_cutmix_pastes_image_and_mask_of_the_same_partner_box():
    n = 3
    image = torch.arange(n, dtype=torch.float32).view(n, 1, 1, 1).expand(n, 2, H, W).clone()
    mask = torch.zeros(n, H, W, dtype=torch.long)
    mask[1] = 1
    mask[2, :, : W // 2] = IGNORE
    out_image, out_mask = cutmix(image, mask, np.array([True, False, True]), np.array([1, 1, 1]),
                                 np.array([[0.5, 0.5, 0.5], [0, 0, 0], [0.25, 0.25, 0.5]]))
    pasted = out_image[0, 0] == 1.0  # sample 0 received sample 1's box
    assert pasted.sum() == 16 * 16
    assert torch.equal(out_mask[0] == 1, pasted)
    # sample 2 took sample 0's box; sample 0 is read before pasting, so it is all background
    took = out_image[2, 0] == 0.0
    assert took.sum() == 16 * 16 and (out_mask[2][took] == 0).all()
    assert torch.equal(out_image[1], image[1]) and torch.equal(out_mask[1], mask[1])


def test_ignored_pixels_stay_ignored_through_every_augmentation():
    config = AugmentConfig(flip=1.0, rotate_shift=1.0, max_shift=0.0, color=1.0, cutout=1.0, cutout_size=0.1,
                           cutmix=1.0, cutmix_size=(0.2, 0.2))
    image = torch.randn(4, 3, H, W)
    mask = torch.full((4, H, W), IGNORE, dtype=torch.long)  # pseudo-labels keeping nothing
    _, out_mask = Augmenter(config)(image, mask, np.arange(4), epoch=0)
    assert (out_mask == IGNORE).all()
    mask = torch.zeros(4, H, W, dtype=torch.long)
    mask[:, ::2] = IGNORE
    _, out_mask = Augmenter(AugmentConfig(flip=1.0, color=1.0))(image, mask, np.arange(4), epoch=0)
    assert (out_mask == IGNORE).sum() == (mask == IGNORE).sum()


def test_rotate_shift_mask_matches_torch_nearest_sampling():
    """The gather-based nearest neighbour equals grid_sample's own nearest mode."""
    mask = torch.randint(0, 2, (3, H, W))
    angle, shift = np.radians([33.0, -120.0, 7.0]), np.array([[0.1, 0.0], [0.0, -0.2], [0.05, 0.05]])
    _, out = rotate_shift(torch.zeros(3, 1, H, W), mask.clone(), np.ones(3, bool), angle, shift)
    theta = torch.as_tensor(affine_matrices(angle, shift), dtype=torch.float32)
    grid = torch.nn.functional.affine_grid(theta, [3, 1, H, W], align_corners=False)
    shifted = mask.unsqueeze(1).float() + 1  # +1 so that outside (0) is told apart
    reference = torch.nn.functional.grid_sample(shifted, grid, mode="nearest", align_corners=False).squeeze(1)
    expected = torch.where(reference == 0, torch.full_like(reference, IGNORE), reference - 1).long()
    assert torch.equal(out, expected)


def test_augmenter_leaves_its_inputs_untouched():
    image, mask = torch.randn(4, 3, H, W), torch.randint(0, 2, (4, H, W))
    before = image.clone(), mask.clone()
    Augmenter(AugmentConfig(flip=1.0, rotate_shift=1.0, cutout=1.0, cutmix=1.0))(image, mask, np.arange(4), 0)
    assert torch.equal(image, before[0]) and torch.equal(mask, before[1])


def test_augmentation_is_reproducible_per_sample_and_changes_with_the_epoch():
    config = AugmentConfig(flip=0.5, rotate_shift=0.7, color=0.5, cutout=0.3, seed=7)
    augmenter = Augmenter(config)
    image, mask = torch.randn(6, 3, H, W), torch.randint(0, 2, (6, H, W))
    keys = np.array([11, 22, 33, 44, 55, 66])
    a = augmenter(image, mask, keys, epoch=3)
    b = augmenter(image, mask, keys, epoch=3)
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])
    c = augmenter(image, mask, keys, epoch=4)
    assert not torch.equal(a[0], c[0])
    # a sample gets the same transform alone as inside a batch
    alone = augmenter(image[2:3], mask[2:3], keys[2:3], epoch=3)
    assert torch.allclose(alone[0][0], a[0][2]) and torch.equal(alone[1][0], a[1][2])
    other_seed = Augmenter(AugmentConfig(flip=0.5, rotate_shift=0.7, color=0.5, cutout=0.3, seed=8))(image, mask, keys, epoch=3)
    assert not torch.equal(a[0], other_seed[0])


def test_probabilities_are_respected_over_many_samples():
    params = sample_params(AugmentConfig(flip=0.5, rotate_shift=0.2, cutmix=0.0), np.arange(4000), epoch=0)
    assert 0.45 < params.flip_h.float().mean() < 0.55 and 0.17 < params.rotate.float().mean() < 0.23
    assert not params.cutmix.any() and torch.rad2deg(params.angle).abs().max() <= 180.0


def test_invalid_probabilities_are_rejected():
    with pytest.raises(ValueError, match="augment.cutout is a probability"):
        AugmentConfig(cutout=1.5)


# -- the counter-based draws ------------------------------------------------------------------

def test_draws_are_a_function_of_seed_epoch_and_key_only():
    keys = torch.tensor([3, -7, 2**62 + 5, -(2**63), 0, 123456789012345], dtype=torch.int64)
    a = uniforms(4, 9, keys)
    assert a.shape == (6, DRAWS) and ((a > 0) & (a < 1)).all()
    # whatever the batch: reversed, a sub-batch, a key alone, or among 1000 other keys
    torch.testing.assert_close(uniforms(4, 9, keys.flip(0)), a.flip(0), rtol=0, atol=0)
    torch.testing.assert_close(uniforms(4, 9, keys[2:3]), a[2:3], rtol=0, atol=0)
    crowd = torch.cat([torch.arange(1000, 2000), keys])
    torch.testing.assert_close(uniforms(4, 9, crowd)[1000:], a, rtol=0, atol=0)
    # and every input matters, including the high half of the key
    for other in (uniforms(5, 9, keys), uniforms(4, 10, keys), uniforms(4, 9, keys + (1 << 40))):
        assert (other != a).all()


def test_draws_look_uniform_and_independent():
    u = uniforms(0, 0, torch.arange(20000))
    assert (u.mean(0) - 0.5).abs().max() < 0.01
    histogram = torch.histc(u[:, 0].float(), bins=10, min=0, max=1)
    assert (histogram / 20000 - 0.1).abs().max() < 0.01
    correlation = torch.corrcoef(u.T.float())
    assert (correlation - torch.eye(DRAWS)).abs().max() < 0.03
    # neighbouring keys and epochs give unrelated draws
    assert abs(float(torch.corrcoef(torch.stack([u[:-1, 0], u[1:, 0]]).float())[0, 1])) < 0.03
    assert abs(float(torch.corrcoef(torch.stack([u[:, 0], uniforms(0, 1, torch.arange(20000))[:, 0]]).float())[0, 1])) < 0.03


def test_augmentation_takes_keys_as_a_tensor_or_an_array_alike():
    config = AugmentConfig(flip=0.5, rotate_shift=0.5, color=0.5, cutout=0.5, seed=3)
    image, mask = torch.randn(5, 3, H, W), torch.randint(0, 2, (5, H, W))
    keys = np.array([10, -20, 30, 2**40, 50])
    a = Augmenter(config)(image, mask, keys, epoch=1)
    b = Augmenter(config)(image, mask, torch.from_numpy(keys), epoch=1)
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a GPU")
def test_the_same_draws_and_masks_on_cpu_and_gpu():
    keys = torch.arange(-50, 50)
    torch.testing.assert_close(uniforms(1, 2, keys.cuda()).cpu(), uniforms(1, 2, keys), rtol=0, atol=0)
    config = AugmentConfig(flip=0.5, rotate_shift=0.5, cutout=0.5, cutmix=0.5)
    image, mask = torch.randn(100, 3, H, W), torch.randint(0, 2, (100, H, W))
    cpu = Augmenter(config)(image, mask, keys, 0)
    gpu = Augmenter(config)(image.cuda(), mask.cuda(), keys.cuda(), 0)
    torch.testing.assert_close(gpu[0].cpu(), cpu[0], rtol=1e-4, atol=1e-4)
    assert (gpu[1].cpu() != cpu[1]).float().mean() < 1e-3  # nearest sampling may flip a pixel on a boundary


# -- each batched transform against the per-sample loops it replaced (flips: the CPU's and the GPU's) --

def random_batch(n=8, seed=0):
    g = torch.Generator().manual_seed(seed)
    mask = torch.randint(0, 2, (n, H, W), generator=g)
    mask[torch.rand(n, H, W, generator=g) < 0.1] = IGNORE
    return torch.randn(n, 3, H, W, generator=g), mask


@pytest.mark.parametrize("seed", range(3))
def test_each_batched_transform_matches_the_per_sample_reference(seed):
    from tests import reference_augment as ref

    config = AugmentConfig(flip=0.5, rotate_shift=0.5, color=0.5, cutout=0.5, cutmix=0.5, seed=seed)
    image, mask = random_batch(seed=seed)
    p = sample_params(config, np.arange(8) * 1000 + seed, epoch=seed)
    host = {k: v.numpy() for k, v in vars(p).items()}
    assert host["flip_h"].any() and not host["flip_h"].all()  # both branches taken
    cases = [
        (flip(image, mask, p.flip_h, p.flip_v), ref.flip(image.clone(), mask.clone(), host["flip_h"], host["flip_v"])),
        (_flip_rotate_batched(image, mask, p.flip_h, p.flip_v, None, None, None),  # the GPU's flips
         ref.flip(image.clone(), mask.clone(), host["flip_h"], host["flip_v"])),
        (rotate_shift(image, mask, p.rotate, p.angle, p.shift),
         ref.rotate_shift(image.clone(), mask.clone(), host["rotate"], host["angle"], host["shift"])),
        ((color(image, p.color, p.gain, p.bias), mask), (ref.color(image.clone(), host["color"], host["gain"], host["bias"]), mask)),
        (cutout(image, mask, p.cutout, p.cutout_centre, 0.3),
         ref.cutout(image.clone(), mask.clone(), host["cutout"], host["cutout_centre"], 0.3)),
        (cutmix(image, mask, p.cutmix, p.cutmix_partner, p.cutmix_box),
         ref.cutmix(image.clone(), mask.clone(), host["cutmix"], host["cutmix_partner"], host["cutmix_box"])),
    ]
    for (got_image, got_mask), (want_image, want_mask) in cases:
        torch.testing.assert_close(got_image, want_image, rtol=1e-5, atol=1e-5)
        assert torch.equal(got_mask, want_mask)


def test_colour_jitter_changes_only_the_optical_bands_each_around_its_own_mean():
    from swinls.augment.ops import color

    channels = ("B4", "B3", "slope", "DEM")
    image = torch.randn(2, 4, H, W) + torch.tensor([0.0, 5.0, 1.0, -3.0]).view(1, 4, 1, 1)
    out, _ = Augmenter(AugmentConfig(flip=0.0, rotate_shift=0.0, color=1.0, contrast=0.5, brightness=0.0), channels)(image, torch.zeros(2, H, W, dtype=torch.long), np.arange(2), 0)
    assert torch.equal(out[:, 2:], image[:, 2:])  # slope and DEM keep their values
    assert not torch.equal(out[:, :2], image[:, :2])
    # contrast keeps each band's own mean: a band's level does not leak into another's
    torch.testing.assert_close(out[:, :2].mean(dim=(2, 3)), image[:, :2].mean(dim=(2, 3)), atol=1e-5, rtol=0)
    # unnamed channels are all treated as bands (the step a benchmark times)
    both = color(image, [True, True], torch.tensor([2.0, 2.0]), torch.zeros(2))
    assert not torch.equal(both[:, 3], image[:, 3])


def test_flips_folded_into_the_warp_give_what_flipping_then_warping_gives():
    """A rotated row is warped straight from the input with its flips in its affine matrix; the
    result is the reference's flip and then warp, up to float rounding, on both paths."""
    from tests import reference_augment as ref

    config = AugmentConfig(flip=0.5, rotate_shift=0.5, seed=3)
    image, mask = random_batch(n=32, seed=3)
    p = sample_params(config, np.arange(32) * 17, epoch=1)
    host = {k: v.numpy() for k, v in vars(p).items()}
    both = host["rotate"] & host["flip_h"] & host["flip_v"]
    assert both.any() and (host["rotate"] & (host["flip_h"] ^ host["flip_v"])).any()  # every fold taken
    want_image, want_mask = ref.flip(image.clone(), mask.clone(), host["flip_h"], host["flip_v"])
    want_image, want_mask = ref.rotate_shift(want_image, want_mask, host["rotate"], host["angle"], host["shift"])
    for path in (_flip_rotate_rows, _flip_rotate_batched):
        got_image, got_mask = path(image, mask, p.flip_h, p.flip_v, p.rotate, p.angle, p.shift)
        torch.testing.assert_close(got_image, want_image, rtol=1e-4, atol=1e-4)
        assert (got_mask != want_mask).float().mean() < 1e-3  # nearest sampling may differ on a pixel boundary
    assert (host["rotate"] == 0).any()  # and unrotated rows are exactly the flips
    unrotated = torch.from_numpy(~host["rotate"])
    got_image, got_mask = flip_rotate_shift(image, mask, p.flip_h, p.flip_v, p.rotate, p.angle, p.shift)
    assert torch.equal(got_image[unrotated], want_image[unrotated]) and torch.equal(got_mask[unrotated], want_mask[unrotated])


def test_on_a_cpu_each_row_is_computed_once_and_is_what_the_whole_batch_path_gives():
    generator = torch.Generator().manual_seed(0)
    image = torch.randn(6, 14, H, W, generator=generator)
    mask = torch.randint(0, 2, (6, H, W), generator=generator)
    selected = np.array([True, False, True, False, False, True])
    flip_h, flip_v = np.array([True, True, False, False, True, False]), np.array([True, False, True, False, False, False])
    angle = torch.rand(6, generator=generator, dtype=torch.float64) * np.pi
    shift = (torch.rand(6, 2, generator=generator, dtype=torch.float64) - 0.5) * 0.5
    rows = _flip_rotate_rows(image, mask, flip_h, flip_v, selected, angle, shift)
    whole = _flip_rotate_batched(image, mask, flip_h, flip_v, selected, angle, shift)  # what a GPU computes
    assert torch.equal(rows[0], whole[0]) and torch.equal(rows[1], whole[1])
    assert not torch.equal(rows[0][3], rows[0][4])  # sanity: rows differ where their draws do
    torch.testing.assert_close(rows[0][3], image[3])


def test_stored_dtypes_are_widened_in_the_same_pass_with_ignored_pixels_kept():
    """Rows arrive as float16 images and uint8 masks; the result is what the widened rows give."""
    config = AugmentConfig(flip=0.5, rotate_shift=0.5, color=0.5, seed=1)
    image, mask = random_batch(n=16, seed=4)
    image16, mask8 = image.half(), mask.to(torch.uint8)
    augmenter = Augmenter(config)
    got = augmenter(image16, mask8, np.arange(16), 2)
    want = augmenter(image16.float(), mask8.long(), np.arange(16), 2)
    assert got[0].dtype == torch.float32 and got[1].dtype == torch.int64
    assert torch.equal(got[0], want[0]) and torch.equal(got[1], want[1])
    same = rotate_shift(image16, mask8, np.ones(16, bool), np.zeros(16), np.zeros((16, 2)))  # the identity warp
    assert torch.equal(same[1], mask) and (mask == IGNORE).any()
    for disabled in (AugmentConfig(flip=0.0), AugmentConfig(flip=0.5)):  # nothing to do, or only flips
        out = Augmenter(disabled)(image16, mask8, np.arange(16), 0)
        assert out[0].dtype == torch.float32 and out[1].dtype == torch.int64
