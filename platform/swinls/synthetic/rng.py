"""Seeding: each (seed, region, scene) gets its own stream, independent of generation order."""

from __future__ import annotations

import zlib

import numpy as np


def scene_rng(seed: int, region: str, scene: int) -> np.random.Generator:
    return np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(zlib.crc32(region.encode()), scene)))


def split_rng(seed: int, region: str) -> np.random.Generator:
    return np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(zlib.crc32(region.encode()), 1 << 30)))
