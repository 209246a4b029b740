"""One factory for every model of the comparison, by name."""

from __future__ import annotations

from typing import Sequence

import torch

from swinls.models.config import MODEL_NAMES, ModelConfig
from swinls.models.segmenter import SegmentationModel


def build_model(config: ModelConfig, channels: Sequence[str]) -> SegmentationModel:
    """SwinLS, U-Net or DeepLabv3 for inputs with these channel (band) names."""
    if config.name not in MODEL_NAMES:
        raise ValueError(f"unknown model {config.name!r}; valid models: {', '.join(MODEL_NAMES)}")
    if not channels:
        raise ValueError("a model needs at least one input channel")
    return SegmentationModel(config, channels)


def prepare_for_device(model: torch.nn.Module, config: ModelConfig, device: torch.device | str = "cpu"):
    """Move to the device, optionally channels_last and compiled; returns the module to call."""
    model = model.to(device)
    if config.channels_last or (config.channels_last is None and torch.device(device).type == "cuda"):
        model = model.to(memory_format=torch.channels_last)
    if config.compile:
        return torch.compile(model, backend=config.compile_backend)
    return model
