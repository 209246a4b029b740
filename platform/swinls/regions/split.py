"""Patch windows on a scene and their train/valid/test split by spatial blocks.

Windows step by `stride` and the last row and column are moved in to end at the scene's edge, so
every pixel is in a window. Blocks of `block` × `block` windows (by their top-left corner) go to
a split together, drawn by a seeded shuffle in the given fractions; then any window that touches
or overlaps a window of another split is dropped — a training window before a validation one, a
validation window before a test one — so no two splits share a pixel or a border.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

SPLITS = ("train", "valid", "test")
KEEP_ORDER = {"test": 2, "valid": 1, "train": 0}  # which of two touching windows stays


@dataclass(frozen=True)
class Window:
    scene: str
    row: int
    col: int
    size: int

    @property
    def patch_id(self) -> str:
        return f"{self.scene}_r{self.row}_c{self.col}"


def starts(length: int, size: int, stride: int) -> list[int]:
    if length < size:
        return []
    out = list(range(0, length - size + 1, stride))
    if out[-1] != length - size:
        out.append(length - size)  # the edge: a last window ending on it
    return out


def scene_windows(scene: str, height: int, width: int, size: int, stride: int) -> list[Window]:
    return [Window(scene, r, c, size) for r in starts(height, size, stride) for c in starts(width, size, stride)]


def touching(a: np.ndarray, b: np.ndarray, size: int) -> np.ndarray:
    """For windows `a` (N×2 top-left corners) whether each touches or overlaps any of `b` (M×2)."""
    if len(a) == 0 or len(b) == 0:
        return np.zeros(len(a), dtype=bool)
    out = np.zeros(len(a), dtype=bool)
    for start in range(0, len(a), 4096):  # bounded memory on large scenes
        d = np.abs(a[start:start + 4096, None, :] - b[None, :, :])
        out[start:start + 4096] = ((d[..., 0] <= size) & (d[..., 1] <= size)).any(axis=1)
    return out


def split_windows(windows: list[Window], stride: int, block: int, fractions: tuple[float, float, float],
                  seed: int) -> dict[str, list[Window]]:
    """Windows by split, blocks drawn per scene and borders cleared between splits."""
    if abs(sum(fractions) - 1.0) > 1e-6 or min(fractions) < 0:
        raise ValueError(f"split fractions must be non-negative and sum to 1, got {fractions}")
    block_px = block * stride
    keys = sorted({(w.scene, w.row // block_px, w.col // block_px) for w in windows})
    order = np.random.default_rng(seed).permutation(len(keys))
    counts = np.floor(np.asarray(fractions) * len(keys)).astype(int)
    for i in np.argsort(-np.asarray(fractions)):  # the remainder to the largest shares first
        if counts.sum() >= len(keys):
            break
        counts[i] += 1
    assigned = {}
    bounds = np.cumsum(counts)
    for rank, index in enumerate(order):
        assigned[keys[index]] = SPLITS[int(np.searchsorted(bounds, rank, side="right"))]
    by_split: dict[str, list[Window]] = {s: [] for s in SPLITS}
    for w in windows:
        by_split[assigned[(w.scene, w.row // block_px, w.col // block_px)]].append(w)
    kept: dict[str, list[Window]] = {}
    for split in sorted(SPLITS, key=KEEP_ORDER.get, reverse=True):  # test first: it keeps its windows
        mine = by_split[split]
        higher = [w for s in kept for w in kept[s]]
        drop = np.zeros(len(mine), dtype=bool)
        for scene in {w.scene for w in mine}:
            rows = [i for i, w in enumerate(mine) if w.scene == scene]
            others = np.array([(w.row, w.col) for w in higher if w.scene == scene]).reshape(-1, 2)
            mine_xy = np.array([(mine[i].row, mine[i].col) for i in rows]).reshape(-1, 2)
            drop[rows] = touching(mine_xy, others, mine[rows[0]].size)
        kept[split] = [w for w, d in zip(mine, drop) if not d]
    return {s: kept[s] for s in SPLITS}
