"""Convolutional decoders: skip-connection fusion back to full resolution, and DeepLabv3's ASPP."""

from __future__ import annotations

import math
from typing import Sequence

import torch
import torch.nn.functional as F
from torch import nn


def conv_block(in_channels: int, out_channels: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(in_channels, out_channels, 3, padding=1, bias=False), nn.BatchNorm2d(out_channels), nn.ReLU(inplace=True),
        nn.Conv2d(out_channels, out_channels, 3, padding=1, bias=False), nn.BatchNorm2d(out_channels), nn.ReLU(inplace=True),
    )


class FusionDecoder(nn.Module):
    """U-Net style: from the deepest map up, upsample, concatenate the next shallower encoder map,
    convolve; then keep upsampling ×2 with convolutions until the input resolution."""

    def __init__(self, encoder_channels: Sequence[int], reductions: Sequence[int], decoder_channels: Sequence[int],
                 num_classes: int = 2) -> None:
        super().__init__()
        self.reductions = list(reductions)
        extra = int(round(math.log2(self.reductions[0])))
        needed = len(encoder_channels) - 1 + extra
        if len(decoder_channels) < needed:
            raise ValueError(f"decoder_channels needs {needed} entries for this encoder, got {len(decoder_channels)}")
        deep = list(encoder_channels)[::-1]
        blocks, channels = [], deep[0]
        for skip, out in zip(deep[1:], decoder_channels):
            blocks.append(conv_block(channels + skip, out))
            channels = out
        self.fuse = nn.ModuleList(blocks)
        self.up = nn.ModuleList()
        for out in decoder_channels[len(blocks):needed]:
            self.up.append(conv_block(channels, out))
            channels = out
        self.head = nn.Conv2d(channels, num_classes, 1)

    def forward(self, features: list[torch.Tensor]) -> torch.Tensor:
        deep = features[::-1]
        x = deep[0]
        for block, skip in zip(self.fuse, deep[1:]):
            x = F.interpolate(x, size=skip.shape[-2:], mode="bilinear", align_corners=False)
            x = block(torch.cat([x, skip], dim=1))
        for block in self.up:
            x = block(F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=False))
        return self.head(x)


class ASPP(nn.Module):
    def __init__(self, in_channels: int, out_channels: int = 256, rates: Sequence[int] = (12, 24, 36)) -> None:
        super().__init__()
        self.branches = nn.ModuleList([nn.Sequential(nn.Conv2d(in_channels, out_channels, 1, bias=False),
                                                     nn.BatchNorm2d(out_channels), nn.ReLU(inplace=True))])
        for rate in rates:
            self.branches.append(nn.Sequential(nn.Conv2d(in_channels, out_channels, 3, padding=rate, dilation=rate, bias=False),
                                               nn.BatchNorm2d(out_channels), nn.ReLU(inplace=True)))
        self.pool = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Conv2d(in_channels, out_channels, 1, bias=False), nn.ReLU(inplace=True))
        self.project = nn.Sequential(nn.Conv2d(out_channels * (len(rates) + 2), out_channels, 1, bias=False),
                                     nn.BatchNorm2d(out_channels), nn.ReLU(inplace=True), nn.Dropout(0.1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pooled = F.interpolate(self.pool(x), size=x.shape[-2:], mode="bilinear", align_corners=False)
        return self.project(torch.cat([b(x) for b in self.branches] + [pooled], dim=1))


class DeepLabV3Head(nn.Module):
    """ASPP on the deepest (output stride 8) map, then bilinear upsampling to the input."""

    def __init__(self, in_channels: int, num_classes: int = 2) -> None:
        super().__init__()
        self.aspp = ASPP(in_channels)
        self.classifier = nn.Sequential(nn.Conv2d(256, 256, 3, padding=1, bias=False), nn.BatchNorm2d(256),
                                        nn.ReLU(inplace=True), nn.Conv2d(256, num_classes, 1))

    def forward(self, features: list[torch.Tensor], size: tuple[int, int]) -> torch.Tensor:
        return F.interpolate(self.classifier(self.aspp(features[-1])), size=size, mode="bilinear", align_corners=False)
