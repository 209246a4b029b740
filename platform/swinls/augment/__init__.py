"""Augmentations. The config and the per-sample draws need only numpy; the batched torch
transforms (and `Augmenter`) live in `swinls.augment.ops`."""

from swinls.augment.config import IGNORE, PAPER_RECIPE, AugmentConfig

__all__ = ["IGNORE", "PAPER_RECIPE", "AugmentConfig"]
