"""Streaming per-band moments: count, mean and scatter matrix, mergeable exactly.

Ingest sees patches one at a time and regions at different times, so the statistics are kept as
(count, mean, scatter) and combined with Chan's parallel update instead of summing squares, which
loses precision when a band's mean is large next to its spread (DEM in metres, for instance).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass
class BandMoments:
    """Mean and scatter (sum of outer products of deviations) of pixels over named bands."""

    bands: tuple[str, ...]
    count: int = 0
    mean: np.ndarray = field(default=None)  # type: ignore[assignment]
    scatter: np.ndarray = field(default=None)  # type: ignore[assignment]

    def __post_init__(self) -> None:
        self.bands = tuple(self.bands)
        n = len(self.bands)
        if self.mean is None:
            self.mean = np.zeros(n, dtype=np.float64)
        if self.scatter is None:
            self.scatter = np.zeros((n, n), dtype=np.float64)
        self.mean = np.asarray(self.mean, dtype=np.float64).reshape(n)
        self.scatter = np.asarray(self.scatter, dtype=np.float64).reshape(n, n)

    def update(self, pixels: np.ndarray) -> None:
        """Add pixels given as an array whose last axis is the bands (any leading shape)."""
        x = np.asarray(pixels, dtype=np.float64).reshape(-1, len(self.bands))
        if x.shape[0] == 0:
            return
        batch_mean = x.mean(axis=0)
        centred = x - batch_mean
        self._combine(x.shape[0], batch_mean, centred.T @ centred)

    def merge(self, other: "BandMoments") -> None:
        if other.bands != self.bands:
            raise ValueError(f"cannot merge moments over bands {other.bands} into {self.bands}")
        if other.count:
            self._combine(other.count, other.mean, other.scatter)

    def _combine(self, n_b: int, mean_b: np.ndarray, scatter_b: np.ndarray) -> None:
        n_a = self.count
        n = n_a + n_b
        delta = mean_b - self.mean
        self.mean = self.mean + delta * (n_b / n)
        self.scatter = self.scatter + scatter_b + np.outer(delta, delta) * (n_a * n_b / n)
        self.count = n

    @property
    def covariance(self) -> np.ndarray:
        if self.count == 0:
            raise ValueError("no pixels were seen, so there is no covariance")
        return self.scatter / self.count

    @property
    def std(self) -> np.ndarray:
        return np.sqrt(np.clip(np.diag(self.covariance), 0.0, None))

    def to_dict(self) -> dict:
        return {
            "bands": list(self.bands),
            "count": int(self.count),
            "mean": [float(v) for v in self.mean],
            "scatter": [[float(v) for v in row] for row in self.scatter],
        }

    @classmethod
    def from_dict(cls, data: dict) -> "BandMoments":
        return cls(
            bands=tuple(data["bands"]),
            count=int(data["count"]),
            mean=np.array(data["mean"], dtype=np.float64),
            scatter=np.array(data["scatter"], dtype=np.float64),
        )

    @classmethod
    def merged(cls, bands: tuple[str, ...], parts: list["BandMoments"]) -> "BandMoments":
        total = cls(bands=bands)
        for part in parts:
            total.merge(part)
        return total
