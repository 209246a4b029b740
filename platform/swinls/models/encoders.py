"""Encoders from timm as lists of NCHW feature maps, with pretrained weights adapted by band name.

Pretrained weights come by timm name, from a local file or from a URI (`models/weights.py`
resolves each to one local file). They are loaded into a 3-channel (RGB) encoder by timm itself, which
also resizes Swin's relative position tables to our window size; the first convolution is then
rebuilt for the chosen bands: B4, B3, B2 get the pretrained red, green and blue filters, any
other band starts from the mean of the three, scaled by 3/C so the first layer's response keeps
its pretrained magnitude.
"""

from __future__ import annotations

from typing import Sequence

import timm
import torch
from torch import nn

from swinls.models.config import DEFAULT_WINDOW, ModelConfig
from swinls.models.weights import ResolvedWeights, WeightsError, read_state_dict, resolve

SWIN_ARCH = {
    # one block a stage: no block has a shifted window, so tokens never see past their 8×8 window
    # before merging. Fast enough for the test suite; not a Swin.
    "nano": ("swin_tiny_patch4_window7_224", dict(embed_dim=32, depths=(1, 1, 1, 1), num_heads=(1, 2, 4, 8))),
    # the smallest Swin: two blocks a stage (plain, then shifted windows), heads of 32 channels as in
    # every Swin, and a window of 4 tokens — Swin-B's 7 at 224 px scaled to 128 px, so each stage
    # has as many windows across as Swin-B's (8, 4, 2, 1)
    "proxy": ("swin_tiny_patch4_window7_224", dict(embed_dim=32, depths=(2, 2, 2, 2), num_heads=(1, 2, 4, 8))),
    "tiny": ("swin_tiny_patch4_window7_224", {}),
    "small": ("swin_small_patch4_window7_224", {}),
    "base": ("swin_base_patch4_window7_224", {}),
}
RGB_ORDER = ("B4", "B3", "B2")  # the order of the pretrained filters: red, green, blue


class Encoder(nn.Module):
    """Wraps a timm features_only model; always returns NCHW maps, shallowest first."""

    def __init__(self, body: nn.Module, channels_last_output: bool) -> None:
        super().__init__()
        self.body = body
        self.nhwc = channels_last_output
        self.channels: list[int] = body.feature_info.channels()
        self.reductions: list[int] = body.feature_info.reduction()

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        features = self.body(x)
        return [f.permute(0, 3, 1, 2) for f in features] if self.nhwc else list(features)


def _timm_spec(config: ModelConfig) -> tuple[str, dict, bool]:
    """timm architecture name, its keyword arguments, and whether features come out NHWC."""
    if config.name == "swinls":
        arch, extra = SWIN_ARCH[config.size]
        window = config.window_size or DEFAULT_WINDOW[config.size]
        return arch, dict(extra, img_size=128, window_size=window, drop_path_rate=config.drop_path), True
    if config.name == "deeplabv3":
        return config.encoder, dict(output_stride=8), False
    return config.encoder, {}, False


def _create(arch: str, kwargs: dict, in_chans: int, weights: ResolvedWeights | None = None) -> nn.Module:
    if weights is None:
        return timm.create_model(arch, pretrained=False, features_only=True, in_chans=in_chans, **kwargs)
    try:
        return timm.create_model(arch, pretrained=True, features_only=True, in_chans=in_chans, **kwargs,
                                 pretrained_cfg_overlay={"file": str(weights.path)})
    except Exception as exc:  # safetensors, pickle and zip errors have no common base
        # the file read on its own names a corrupt file as such, not as a timm traceback (only on
        # failure: a good file is read once); else they are weights of another architecture or size
        read_state_dict(weights.path, weights.source)
        raise WeightsError(weights.source, f"do not fit {arch} ({str(exc).splitlines()[0][:300]})") from None


def encoder_arch(config: ModelConfig) -> str:
    """The timm architecture of the model's encoder: what pretrained weights must be made for."""
    return _timm_spec(config)[0]


def resolve_pretrained(config: ModelConfig) -> ResolvedWeights | None:
    return None if config.pretrained is None else resolve(config.pretrained, encoder_arch(config))


def adapt_first_conv(rgb_weight: torch.Tensor, channels: Sequence[str]) -> torch.Tensor:
    """A first-convolution weight for `channels` from a pretrained RGB one, band by band."""
    out = torch.empty(rgb_weight.shape[0], len(channels), *rgb_weight.shape[2:], dtype=rgb_weight.dtype)
    grey = rgb_weight.mean(dim=1) * (3.0 / len(channels))
    for i, band in enumerate(channels):
        out[:, i] = rgb_weight[:, RGB_ORDER.index(band)] if band in RGB_ORDER else grey
    return out


def build_encoder(config: ModelConfig, channels: Sequence[str]) -> Encoder:
    arch, kwargs, nhwc = _timm_spec(config)
    body = _create(arch, kwargs, len(channels))
    if config.pretrained is not None:
        rgb = _create(arch, kwargs, 3, resolve_pretrained(config))
        first_conv = rgb.pretrained_cfg["first_conv"] + ".weight"
        state = rgb.state_dict()
        state[first_conv] = adapt_first_conv(state[first_conv], channels)
        body.load_state_dict(state)
    return Encoder(body, nhwc)
