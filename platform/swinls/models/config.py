"""Model settings: which network, how big, where its pretrained weights come from."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

MODEL_NAMES = ("swinls", "unet", "deeplabv3")
SWIN_SIZES = ("nano", "proxy", "tiny", "small", "base")
# window size per Swin size when model.window_size is unset: 128×128 patches give 32×32 tokens,
# which windows of 8 tile at every stage; the proxy's window is scaled from Swin-B's
# (models/encoders.py, SWIN_ARCH)
DEFAULT_WINDOW = {"nano": 8, "proxy": 4, "tiny": 8, "small": 8, "base": 8}


@dataclass(frozen=True)
class ModelConfig:
    name: Literal["swinls", "unet", "deeplabv3"] = "swinls"
    size: Literal["nano", "proxy", "tiny", "small", "base"] = "base"  # the paper: base; proxy: the CPU Swin; nano: not a Swin (one block a stage), for smoke tests
    encoder: str = "resnet34"  # timm ResNet of the U-Net and DeepLabv3 baselines
    # None (from scratch), "timm" (the encoder's default timm weights), a timm name with its tag,
    # a local weights file, or an s3:// URI (jobs/weights.py puts timm's there): models/weights.py
    pretrained: str | None = None
    window_size: int | None = None  # None: the size's own (models/encoders.py: 4 for proxy, 8 for the others)
    decoder_channels: tuple[int, ...] = (256, 128, 64, 32, 16)
    drop_path: float = 0.1
    image_head: bool = True  # the paper's image-level branch: global pool + FC on the deepest features
    channels_last: bool | None = None  # memory layout, numerically the same; None: on with a GPU
    compile: bool = False  # torch.compile of model and loss together (training), off by default
    compile_backend: str = "inductor"

    def __post_init__(self) -> None:
        if self.name not in MODEL_NAMES:
            raise ValueError(f"unknown model {self.name!r}; valid models: {', '.join(MODEL_NAMES)}")
        if self.size not in SWIN_SIZES:
            raise ValueError(f"unknown Swin size {self.size!r}; valid sizes: {', '.join(SWIN_SIZES)}")
        if not self.encoder.startswith("resnet"):
            raise ValueError(f"baseline encoder must be a timm ResNet (resnet18, resnet34, resnet50, …), got {self.encoder!r}")
