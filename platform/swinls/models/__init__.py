"""SwinLS and the baselines of the paper's comparison (U-Net, DeepLabv3), built by one factory."""

from swinls.models.config import MODEL_NAMES, SWIN_SIZES, ModelConfig
from swinls.models.factory import build_model, prepare_for_device
from swinls.models.segmenter import SegmentationModel

__all__ = ["MODEL_NAMES", "SWIN_SIZES", "ModelConfig", "SegmentationModel", "build_model", "prepare_for_device"]
