import pytest
import timm
import torch

from swinls.accel import autocast, to_memory_format
from swinls.losses import LossWeights, composite
from swinls.models import ModelConfig, build_model, prepare_for_device
from swinls.recipes import tiny_model
from swinls.models.encoders import adapt_first_conv

BAND_SETS = {3: ("B4", "B3", "B2"), 4: ("B4", "B3", "B2", "B8"), 6: ("B4", "B3", "B2", "B10", "B11", "B12"),
             7: ("B4", "B3", "B2", "B8", "B10", "B11", "B12"),
             14: ("B1", "B2", "B3", "B4", "B5", "B6", "B7", "B8", "B9", "B10", "B11", "B12", "slope", "DEM")}
SMALL = {
    "swinls": tiny_model(),
    "unet": tiny_model(name="unet", encoder="resnet18", drop_path=0.1),
    "deeplabv3": ModelConfig(name="deeplabv3", encoder="resnet18"),
}


@pytest.mark.parametrize("name", sorted(SMALL))
@pytest.mark.parametrize("bands", sorted(BAND_SETS))
def test_every_model_maps_any_band_count_to_full_resolution_logits(name, bands):
    model = build_model(SMALL[name], BAND_SETS[bands]).eval()
    with torch.no_grad():
        out = model(torch.randn(2, bands, 128, 128))
    assert out["logits"].shape == (2, 2, 128, 128) and out["image_logit"].shape == (2,)
    assert torch.isfinite(out["logits"]).all()


def one_step(model, optimizer):
    image = torch.randn(2, 3, 128, 128)
    mask = torch.randint(0, 2, (2, 128, 128))
    loss, _ = composite(model(image), mask, LossWeights(ce=1.0, wce=1.0, lovasz=1.0, image=1.0))
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()


@pytest.mark.parametrize("name", sorted(SMALL))
def test_gradients_reach_every_trainable_parameter(name):
    model = build_model(SMALL[name], BAND_SETS[3]).train()
    # timm starts each residual block's last BatchNorm at zero, which blocks the gradient to the
    # block's first layers until one step has moved it: take that step first
    one_step(model, torch.optim.SGD(model.parameters(), lr=0.01))
    model.zero_grad()
    image, mask = torch.randn(2, 3, 128, 128), torch.randint(0, 2, (2, 128, 128))
    loss, _ = composite(model(image), mask, LossWeights(ce=1.0, wce=1.0, lovasz=1.0, image=1.0))
    loss.backward()
    missing = [n for n, p in model.named_parameters() if p.requires_grad and (p.grad is None or not p.grad.abs().sum() > 0)]
    assert not missing, f"no gradient reached {missing[:5]}"


@pytest.mark.parametrize("name", ["swinls", "unet"])
def test_freezing_keeps_encoder_weights_and_statistics_while_the_decoder_learns(name):
    model = build_model(SMALL[name], BAND_SETS[3])
    model.freeze_encoder()
    model.train()
    encoder_before = {k: v.clone() for k, v in model.encoder.state_dict().items()}
    decoder_before = {k: v.clone() for k, v in model.decoder.state_dict().items()}
    optimizer = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=0.1)
    one_step(model, optimizer)
    assert not any(p.requires_grad for p in model.encoder.parameters())
    for key, value in model.encoder.state_dict().items():  # weights and BatchNorm running statistics
        assert torch.equal(value, encoder_before[key]), key
    assert any(not torch.equal(v, decoder_before[k]) for k, v in model.decoder.state_dict().items())
    assert not model.encoder.training and model.decoder.training


def test_swin_patch_embedding_is_adapted_from_a_local_pretrained_file_by_band_name(tmp_path):
    # a checkpoint as timm publishes it: 3 channels, 224 px, window 7
    source = timm.create_model("swin_tiny_patch4_window7_224", embed_dim=32, depths=(1, 1, 1, 1), num_heads=(1, 2, 4, 8))
    weights = source.state_dict()
    torch.save(weights, tmp_path / "swin_nano.pth")
    channels = ("B8", "B4", "B2", "slope", "B3")
    model = build_model(ModelConfig(size="nano", pretrained=str(tmp_path / "swin_nano.pth"), decoder_channels=(32, 16, 16, 8, 8)), channels)
    adapted = model.encoder.body.patch_embed.proj.weight.detach()
    rgb = weights["patch_embed.proj.weight"]
    assert adapted.shape[1] == 5
    assert torch.equal(adapted[:, 1], rgb[:, 0]) and torch.equal(adapted[:, 4], rgb[:, 1]) and torch.equal(adapted[:, 2], rgb[:, 2])
    grey = rgb.mean(dim=1) * 3 / 5
    assert torch.allclose(adapted[:, 0], grey) and torch.allclose(adapted[:, 3], grey)
    # the rest of the encoder is the pretrained one
    assert torch.equal(model.encoder.body.state_dict()["layers_3.blocks.0.mlp.fc1.weight"], weights["layers.3.blocks.0.mlp.fc1.weight"])


def test_resnet_first_convolution_is_adapted_by_band_name(tmp_path):
    source = timm.create_model("resnet18")
    torch.save(source.state_dict(), tmp_path / "r18.pth")
    model = build_model(ModelConfig(name="unet", encoder="resnet18", pretrained=str(tmp_path / "r18.pth")), ("B2", "B3", "B4", "B8"))
    conv = model.encoder.body.conv1.weight.detach()
    rgb = source.conv1.weight.detach()
    assert torch.equal(conv[:, 0], rgb[:, 2]) and torch.equal(conv[:, 1], rgb[:, 1]) and torch.equal(conv[:, 2], rgb[:, 0])
    assert torch.equal(model.encoder.body.state_dict()["layer4.1.conv2.weight"], source.state_dict()["layer4.1.conv2.weight"])


def test_a_missing_pretrained_file_is_a_clear_error(tmp_path):
    from swinls.models.weights import WeightsError

    with pytest.raises(WeightsError, match="nowhere.pth: no such weights file"):
        build_model(ModelConfig(size="nano", pretrained=str(tmp_path / "nowhere.pth")), BAND_SETS[3])


def test_unknown_names_are_errors_listing_the_valid_ones():
    with pytest.raises(ValueError, match="valid models: swinls, unet, deeplabv3"):
        ModelConfig(name="segformer")
    with pytest.raises(ValueError, match="valid sizes: nano, proxy, tiny, small, base"):
        ModelConfig(size="huge")
    assert adapt_first_conv(torch.ones(4, 3, 2, 2), ("B4",)).shape == (4, 1, 2, 2)


def test_channels_last_and_bf16_change_nothing_beyond_precision():
    config = SMALL["unet"]
    torch.manual_seed(0)
    model = build_model(config, BAND_SETS[4]).eval()
    image = torch.randn(2, 4, 128, 128)
    with torch.no_grad():
        reference = model(image)["logits"]
        fast_config = ModelConfig(**{**config.__dict__, "channels_last": True})
        fast = prepare_for_device(model, fast_config)
        assert torch.allclose(fast(to_memory_format(image, True))["logits"], reference, atol=1e-4)
        with autocast("cpu", bf16=True):
            low = model(image)["logits"]
    assert low.dtype == torch.bfloat16
    scale = reference.abs().max()
    assert (low.float() - reference).abs().max() < 0.05 * scale


def test_the_swin_proxy_alternates_plain_and_shifted_windows_and_nano_does_not():
    from swinls.config import from_dict
    from swinls.recipes import recipe_data

    def blocks(model):
        return [(name, tuple(m.window_size), tuple(m.shift_size)) for name, m in model.encoder.named_modules()
                if hasattr(m, "shift_size") and hasattr(m, "attn")]

    proxy = build_model(from_dict(ModelConfig, recipe_data("swin-proxy")["model"]), BAND_SETS[3])
    found = blocks(proxy)
    assert [name.split(".")[-1] for name, _, _ in found] == ["0", "1"] * 4  # two blocks a stage
    shifts = [shift for _, _, shift in found]
    # stages at 32, 16, 8 tokens: plain then shifted by half the window of 4; the last stage is one window
    assert shifts == [(0, 0), (2, 2)] * 3 + [(0, 0), (0, 0)]
    assert all(window == (4, 4) for _, window, _ in found)
    encoder = sum(p.numel() for p in proxy.encoder.parameters())
    assert encoder > 4 * sum(p.numel() for p in proxy.decoder.parameters())  # the encoder is the model
    nano = build_model(ModelConfig(size="nano", decoder_channels=(16, 16, 8, 8, 8)), BAND_SETS[3])
    assert all(shift == (0, 0) for _, _, shift in blocks(nano))
