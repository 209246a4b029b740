"""SwinLS and the baselines of the paper's comparison (U-Net, DeepLabv3), built by one factory.

The networks are imported on first use: reading a model's settings (every config, every job's
argument check, Tune's and Train's controller processes) should not cost timm's imports (with
torchvision and dynamo, about 1.4 s a process on two cores)."""

from swinls.models.config import MODEL_NAMES, SWIN_SIZES, ModelConfig

_LAZY = {"build_model": "swinls.models.factory", "prepare_for_device": "swinls.models.factory",
         "SegmentationModel": "swinls.models.segmenter"}

__all__ = ["MODEL_NAMES", "SWIN_SIZES", "ModelConfig", "SegmentationModel", "build_model", "prepare_for_device"]


def __getattr__(name: str):
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'swinls.models' has no attribute {name!r}")
