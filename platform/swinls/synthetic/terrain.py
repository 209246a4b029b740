"""Synthetic terrain: fractal relief, valleys carved by rivers, slope and illumination."""

from __future__ import annotations

import numpy as np
from scipy import ndimage

PIXEL_METRES = 10.0  # Sentinel-2's 10 m grid, on which Landslide4Sense resamples every band


def fractal_field(rng: np.random.Generator, size: int, beta: float) -> np.ndarray:
    """Gaussian random field with power spectrum ∝ 1/f^beta, scaled to zero mean, unit std."""
    pad = size + size // 4  # the FFT field wraps around; crop away the seam
    fy = np.fft.fftfreq(pad)[:, None]
    fx = np.fft.rfftfreq(pad)[None, :]
    freq = np.sqrt(fx**2 + fy**2)
    freq[0, 0] = 1.0
    amplitude = freq ** (-beta / 2.0)
    amplitude[0, 0] = 0.0
    phase = rng.uniform(0.0, 2 * np.pi, amplitude.shape)
    noise = rng.normal(size=amplitude.shape)
    field = np.fft.irfft2(amplitude * noise * np.exp(1j * phase), s=(pad, pad))[:size, :size]
    return (field - field.mean()) / (field.std() + 1e-12)


def smooth_curve(rng: np.random.Generator, size: int, wiggle: float) -> np.ndarray:
    """A meandering polyline crossing the scene, as (N, 2) row/col points one pixel apart."""
    horizontal = rng.random() < 0.5
    t = np.linspace(0.0, 1.0, size * 2)
    base = rng.uniform(0.2, 0.8) * size
    offset = np.zeros_like(t)
    for k in range(1, 5):
        offset += rng.normal(0, wiggle * size / k**1.5) * np.sin(np.pi * k * t + rng.uniform(0, 2 * np.pi))
    along = t * (size - 1)
    across = np.clip(base + offset, 0, size - 1)
    points = np.stack([across, along], axis=1) if horizontal else np.stack([along, across], axis=1)
    return points


def rasterise(points: np.ndarray, size: int) -> np.ndarray:
    grid = np.zeros((size, size), dtype=bool)
    rows = np.clip(np.round(points[:, 0]).astype(int), 0, size - 1)
    cols = np.clip(np.round(points[:, 1]).astype(int), 0, size - 1)
    grid[rows, cols] = True
    return grid


def carve_valley(dem: np.ndarray, line: np.ndarray, floor_halfwidth: float, wall_width: float) -> tuple[np.ndarray, np.ndarray]:
    """Lower the DEM to a flat, gently descending floor along a line; returns (dem, distance)."""
    distance, (near_r, near_c) = ndimage.distance_transform_edt(~line, return_indices=True)
    # the floor follows the smoothed elevation along the line, which stays below the surroundings
    line_level = ndimage.uniform_filter(ndimage.minimum_filter(dem, size=9), size=31)
    floor = line_level[near_r, near_c] - 0.02 * (dem.max() - dem.min())
    rise = np.clip((distance - floor_halfwidth) / wall_width, 0.0, 1.0)
    rise = rise * rise * (3 - 2 * rise)  # smoothstep: flat floor, then walls
    carved = floor + (np.maximum(dem, floor) - floor) * rise
    return np.minimum(dem, carved), distance


def relief_for_mean_slope(shape: np.ndarray, mean_slope_deg: float) -> float:
    """The elevation range (m) that gives a [0, 1] relief shape this mean slope."""
    dz_dy, dz_dx = np.gradient(shape, PIXEL_METRES)
    gradient = np.hypot(dz_dx, dz_dy).ravel()[::7]
    low, high = 1.0, 1e6
    for _ in range(60):  # bisection on a monotone function
        mid = np.sqrt(low * high)
        if np.degrees(np.arctan(mid * gradient)).mean() < mean_slope_deg:
            low = mid
        else:
            high = mid
    return float(np.sqrt(low * high))


def slope_degrees(dem: np.ndarray) -> np.ndarray:
    dz_dy, dz_dx = np.gradient(dem, PIXEL_METRES)
    return np.degrees(np.arctan(np.hypot(dz_dx, dz_dy)))


def downhill_direction(dem: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Unit vector (row, col) of steepest descent at each pixel."""
    dz_dy, dz_dx = np.gradient(dem, PIXEL_METRES)
    norm = np.hypot(dz_dx, dz_dy) + 1e-9
    return -dz_dy / norm, -dz_dx / norm


def illumination(dem: np.ndarray, sun_azimuth_deg: float, sun_elevation_deg: float) -> np.ndarray:
    """Lambertian terrain illumination relative to flat ground (1.0 on a flat surface)."""
    dz_dy, dz_dx = np.gradient(dem, PIXEL_METRES)
    zenith = np.radians(90.0 - sun_elevation_deg)
    azimuth = np.radians(sun_azimuth_deg)
    slope = np.arctan(np.hypot(dz_dx, dz_dy))
    # aspect measured clockwise from north, rows grow southwards
    aspect = np.arctan2(-dz_dx, dz_dy)
    cos_i = np.cos(zenith) * np.cos(slope) + np.sin(zenith) * np.sin(slope) * np.cos(azimuth - aspect)
    return np.clip(cos_i, 0.05, None) / np.cos(zenith)
