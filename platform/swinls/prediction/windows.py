"""Sliding windows over a scene of any size, and blending their outputs back into rows.

The scene is padded by reflection (half the overlap on every side, more at the far edges where
the last window sticks out), so that border pixels are predicted with context rather than
against a wall of zeros. Windows step by `size - overlap`. Each window's margins are weighted by
a ramp that rises over `overlap` pixels from each edge and is flat in between: where two windows
overlap their weights sum to the same value everywhere, so the blend cross-fades without a seam,
and a pixel that only one window covers gets exactly that window's value.

Blending is done strip by strip (a row of windows): once a strip is in, the rows above the next
strip's top are final and are handed on, so memory holds one strip's width, not the scene.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import numpy as np


def reflect(index: np.ndarray, length: int) -> np.ndarray:
    """Indices outside [0, length) mirrored back inside, without repeating the edge (numpy's
    'reflect'), any number of times over."""
    index = np.asarray(index)
    if length == 1:
        return np.zeros_like(index)
    period = 2 * (length - 1)
    folded = np.mod(index, period)
    return np.where(folded >= length, period - folded, folded)


def ramp(size: int, overlap: int) -> np.ndarray:
    """1-D window weight: (i + ½)/overlap from each edge, capped at 1; all ones without overlap."""
    if overlap == 0:
        return np.ones(size, np.float32)
    i = np.arange(size, dtype=np.float64)
    return np.minimum(1.0, np.minimum(i + 0.5, size - i - 0.5) / overlap).astype(np.float32)


@dataclass(frozen=True)
class WindowGrid:
    height: int
    width: int
    size: int = 128
    overlap: int = 32

    def __post_init__(self) -> None:
        if self.height < 1 or self.width < 1:
            raise ValueError(f"a scene needs at least one pixel, got {self.height}×{self.width}")
        if not 0 <= self.overlap < self.size:
            raise ValueError(f"overlap must be at least 0 and less than the window size {self.size}, got {self.overlap}")

    @property
    def stride(self) -> int:
        return self.size - self.overlap

    @property
    def margin(self) -> int:
        return self.overlap // 2

    def _count(self, length: int) -> int:
        return max(1, math.ceil((length + 2 * self.margin - self.size) / self.stride) + 1)

    @property
    def rows(self) -> int:
        return self._count(self.height)

    @property
    def cols(self) -> int:
        return self._count(self.width)

    def __len__(self) -> int:
        return self.rows * self.cols

    def origin(self, row: int, col: int) -> tuple[int, int]:
        """Top-left pixel of a window in scene coordinates (negative: in the reflected border)."""
        return row * self.stride - self.margin, col * self.stride - self.margin

    def source_rows(self, row: int) -> np.ndarray:
        y0 = self.origin(row, 0)[0]
        return reflect(np.arange(y0, y0 + self.size), self.height)

    def source_cols(self, col: int) -> np.ndarray:
        x0 = self.origin(0, col)[1]
        return reflect(np.arange(x0, x0 + self.size), self.width)

    def weights(self) -> np.ndarray:
        w = ramp(self.size, self.overlap)
        return np.outer(w, w)

    def coverage(self) -> np.ndarray:
        """How many windows cover each scene pixel (for tests and diagnostics; H×W)."""
        count = np.zeros((self.height, self.width), np.int32)
        for row in range(self.rows):
            for col in range(self.cols):
                y0, x0 = self.origin(row, col)
                count[max(y0, 0):max(y0 + self.size, 0), max(x0, 0):max(x0 + self.size, 0)] += 1
        return count


RowSink = Callable[[int, np.ndarray, np.ndarray], None]  # (first scene row, margins h×W, nodata h×W)


class StripBlender:
    """Weighted sums of margins for one strip of windows; hands finished scene rows to `emit`.

    Windows must arrive strip by strip (any order within a strip)."""

    def __init__(self, grid: WindowGrid, emit: RowSink) -> None:
        self.grid, self.emit = grid, emit
        padded_width = (grid.cols - 1) * grid.stride + grid.size
        self.total = np.zeros((grid.size, padded_width), np.float32)
        self.weight = np.zeros((grid.size, padded_width), np.float32)
        self.nodata = np.zeros((grid.size, padded_width), bool)
        self.window_weight = grid.weights()
        self.strip = 0
        self.received = 0

    def add(self, row: int, col: int, margin: np.ndarray, nodata: np.ndarray | None = None) -> None:
        if row < self.strip:
            raise ValueError(f"window ({row}, {col}) arrived after strip {self.strip} had begun")
        while self.strip < row:
            self._finish_rows(self.grid.stride)
            self.strip += 1
        x = col * self.grid.stride
        span = np.s_[:, x:x + self.grid.size]
        self.total[span] += self.window_weight * margin
        self.weight[span] += self.window_weight
        if nodata is not None:
            self.nodata[span] |= nodata
        self.received += 1

    def close(self) -> None:
        """After the last window: the remaining rows."""
        if self.received != len(self.grid):
            raise ValueError(f"{self.received} of {len(self.grid)} windows arrived")
        while self.strip < self.grid.rows - 1:  # not reached when windows came in order; kept for safety
            self._finish_rows(self.grid.stride)
            self.strip += 1
        self._finish_rows(self.grid.size)

    def _finish_rows(self, count: int) -> None:
        grid = self.grid
        top = self.strip * grid.stride - grid.margin  # scene row of the buffer's first row
        first, last = max(top, 0), min(top + count, grid.height)
        if last > first:
            rows = np.s_[first - top:last - top, grid.margin:grid.margin + grid.width]
            weight = self.weight[rows]
            margin = np.divide(self.total[rows], weight, out=np.zeros_like(weight), where=weight > 0)
            self.emit(first, margin, self.nodata[rows].copy())
        for buffer in (self.total, self.weight, self.nodata):
            if count < grid.size:
                buffer[:-count] = buffer[count:].copy()
            buffer[grid.size - count:] = 0
