"""Encoders from timm as lists of NCHW feature maps, with pretrained weights adapted by band name.

Pretrained weights come by timm name (downloaded, or from timm's cache) or from a local file, for
clusters without network. They are loaded into a 3-channel (RGB) encoder by timm itself, which
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

from swinls.models.config import ModelConfig

SWIN_ARCH = {
    "nano": ("swin_tiny_patch4_window7_224", dict(embed_dim=32, depths=(1, 1, 1, 1), num_heads=(1, 2, 4, 8))),
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
        return arch, dict(extra, img_size=128, window_size=config.window_size, drop_path_rate=config.drop_path), True
    if config.name == "deeplabv3":
        return config.encoder, dict(output_stride=8), False
    return config.encoder, {}, False


def _create(arch: str, kwargs: dict, in_chans: int, pretrained: str | None) -> nn.Module:
    extra = {}
    if pretrained not in (None, "timm"):
        extra["pretrained_cfg_overlay"] = {"file": str(pretrained)}
    try:
        return timm.create_model(arch, pretrained=pretrained is not None, features_only=True, in_chans=in_chans,
                                 **kwargs, **extra)
    except (OSError, RuntimeError) as exc:
        if pretrained is None:
            raise
        source = "timm's hub (is the network or the HF cache available?)" if pretrained == "timm" else pretrained
        raise RuntimeError(f"could not load pretrained weights for {arch} from {source}: {exc}") from exc


def adapt_first_conv(rgb_weight: torch.Tensor, channels: Sequence[str]) -> torch.Tensor:
    """A first-convolution weight for `channels` from a pretrained RGB one, band by band."""
    out = torch.empty(rgb_weight.shape[0], len(channels), *rgb_weight.shape[2:], dtype=rgb_weight.dtype)
    grey = rgb_weight.mean(dim=1) * (3.0 / len(channels))
    for i, band in enumerate(channels):
        out[:, i] = rgb_weight[:, RGB_ORDER.index(band)] if band in RGB_ORDER else grey
    return out


def build_encoder(config: ModelConfig, channels: Sequence[str]) -> Encoder:
    arch, kwargs, nhwc = _timm_spec(config)
    body = _create(arch, kwargs, len(channels), None)
    if config.pretrained is not None:
        rgb = _create(arch, kwargs, 3, config.pretrained)
        first_conv = rgb.pretrained_cfg["first_conv"] + ".weight"
        state = rgb.state_dict()
        state[first_conv] = adapt_first_conv(state[first_conv], channels)
        body.load_state_dict(state)
    return Encoder(body, nhwc)
