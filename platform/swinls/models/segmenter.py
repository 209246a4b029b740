"""Encoder + decoder + the paper's image-level head, with a clean encoder freeze for stage 2."""

from __future__ import annotations

from typing import Sequence

import torch
from torch import nn

from swinls.models.config import ModelConfig
from swinls.models.decoders import DeepLabV3Head, FusionDecoder
from swinls.models.encoders import Encoder, build_encoder


class SegmentationModel(nn.Module):
    """forward(image N×C×H×W) → {"logits": N×2×H×W, "image_logit": N (present with the head)}."""

    def __init__(self, config: ModelConfig, channels: Sequence[str], encoder: Encoder | None = None) -> None:
        super().__init__()
        self.config = config
        self.channels = tuple(channels)
        self.encoder = encoder or build_encoder(config, channels)
        if config.name == "deeplabv3":
            self.decoder = DeepLabV3Head(self.encoder.channels[-1])
        else:
            self.decoder = FusionDecoder(self.encoder.channels, self.encoder.reductions, config.decoder_channels)
        self.image_head = nn.Linear(self.encoder.channels[-1], 1) if config.image_head else None
        self.encoder_frozen = False

    def forward(self, image: torch.Tensor) -> dict[str, torch.Tensor]:
        features = self.encoder(image)
        if isinstance(self.decoder, DeepLabV3Head):
            logits = self.decoder(features, image.shape[-2:])
        else:
            logits = self.decoder(features)
        out = {"logits": logits}
        if self.image_head is not None:
            out["image_logit"] = self.image_head(features[-1].mean(dim=(2, 3))).squeeze(1)
        return out

    def freeze_encoder(self) -> None:
        """Stage 2: no gradients into the encoder and its normalisation statistics fixed."""
        self.encoder.requires_grad_(False)
        self.encoder.eval()
        self.encoder_frozen = True

    def unfreeze_encoder(self) -> None:
        self.encoder.requires_grad_(True)
        self.encoder_frozen = False
        self.encoder.train(self.training)

    def train(self, mode: bool = True) -> "SegmentationModel":
        super().train(mode)
        if self.encoder_frozen:
            self.encoder.eval()  # BatchNorm statistics and stochastic depth stay off
        return self

    def decoder_parameters(self) -> list[nn.Parameter]:
        params = list(self.decoder.parameters())
        if self.image_head is not None:
            params += list(self.image_head.parameters())
        return params
