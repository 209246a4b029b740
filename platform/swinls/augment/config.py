"""Augmentation settings: each transform's probability and parameters (no torch needed)."""

from __future__ import annotations

from dataclasses import dataclass

IGNORE = 255


@dataclass(frozen=True)
class AugmentConfig:
    flip: float = 0.5  # probability of each of a horizontal and a vertical flip (the paper's baseline)
    rotate_shift: float = 0.0  # probability of a rotation by any angle plus a translation
    max_angle: float = 180.0  # degrees
    max_shift: float = 0.25  # fraction of the patch side
    color: float = 0.0  # probability of a brightness/contrast change
    brightness: float = 0.2  # additive, in normalised units
    contrast: float = 0.2  # multiplicative spread around 1
    cutout: float = 0.0  # probability of erasing a box (its labels become ignored)
    cutout_size: float = 0.3  # side of the box, fraction of the patch side
    cutmix: float = 0.0  # probability of pasting a box from another sample of the batch
    cutmix_size: tuple[float, float] = (0.2, 0.6)  # range of the box side, fraction of the patch side
    seed: int = 0

    def __post_init__(self) -> None:
        for name in ("flip", "rotate_shift", "color", "cutout", "cutmix"):
            p = getattr(self, name)
            if not 0.0 <= p <= 1.0:
                raise ValueError(f"augment.{name} is a probability, got {p}")
        if not 0.0 <= self.max_shift <= 1.0:
            raise ValueError(f"augment.max_shift must be within [0, 1], got {self.max_shift}")
        lo, hi = self.cutmix_size
        if not 0.0 < lo <= hi <= 1.0:
            raise ValueError(f"augment.cutmix_size must satisfy 0 < low <= high <= 1, got {self.cutmix_size}")

    @property
    def enabled(self) -> bool:
        return any(getattr(self, n) > 0 for n in ("flip", "rotate_shift", "color", "cutout", "cutmix"))


PAPER_RECIPE = AugmentConfig(flip=0.5, rotate_shift=0.5)  # SwinLS: flips plus rotate and shift
