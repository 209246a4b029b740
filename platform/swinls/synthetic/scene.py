"""One synthetic scene: terrain, land covers, landslide scars, look-alikes, weather, sensor.

Values come out in physical units (reflectance for B1..B12, degrees of slope, metres of
elevation); `calibration.py` maps them to the Landslide4Sense value range afterwards.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from swinls.synthetic import terrain
from swinls.synthetic.spectra import CIRRUS, CLOUD_HIGH, CLOUD_LOW, COVER_CODES, RegionProfile, region_spectra

REFERENCE_SIZE = 1024  # landslide counts are given per scene of this width
BANDS_20M = (4, 5, 6, 10, 11)  # B5 B6 B7 B11 B12
BANDS_60M = (0, 8, 9)  # B1 B9 B10
STEEP_DEG = 28.0  # landslides start on slopes at least this steep


@dataclass
class Scene:
    raw: np.ndarray  # H×W×14 float64 in physical units
    label: np.ndarray  # H×W uint8, 1 = landslide
    cover: np.ndarray  # H×W uint8 land cover codes (COVER_CODES)
    cloud: np.ndarray  # H×W float opacity


def generate_scene(profile: RegionProfile, rng: np.random.Generator, size: int) -> Scene:
    spectra = region_spectra(profile, rng)
    dem, river_distance, river_halfwidth = _terrain(profile, rng, size)
    slope = terrain.slope_degrees(dem)
    cover = _base_cover(profile, rng, dem, slope)
    _add_fields(profile, rng, cover, slope, dem)
    _add_rivers(cover, river_distance, river_halfwidth)
    _add_roads(profile, rng, cover, size)
    label, revegetation = _add_landslides(profile, rng, cover, dem, slope)

    reflectance = _reflectance(rng, cover, spectra, revegetation)
    reflectance *= terrain.illumination(dem, profile.sun_azimuth_deg, profile.sun_elevation_deg)[..., None] ** 0.8
    reflectance[..., :4] += profile.haze * np.array([1.5, 1.0, 0.6, 0.3])
    cloud = _add_clouds(profile, rng, reflectance, size)
    reflectance = _sensor(rng, reflectance)
    raw = np.concatenate([reflectance, slope[..., None], dem[..., None]], axis=-1)
    return Scene(raw=raw, label=label, cover=cover, cloud=cloud)


def _terrain(profile: RegionProfile, rng: np.random.Generator, size: int):
    field = terrain.fractal_field(rng, size, profile.roughness)
    z = (field - field.min()) / (field.max() - field.min())
    shape = z**1.3  # broad valleys, sharper ridges
    dem = profile.base_elevation_m + terrain.relief_for_mean_slope(shape, profile.mean_slope_deg) * shape
    river_distance = np.full((size, size), np.inf)
    river_halfwidth = np.zeros((size, size))
    width_noise = terrain.fractal_field(rng, size, 4.0)
    for _ in range(profile.rivers):
        line = terrain.rasterise(terrain.smooth_curve(rng, size, wiggle=0.08), size)
        halfwidth = rng.uniform(*profile.riverbed_halfwidth)
        dem, distance = terrain.carve_valley(dem, line, floor_halfwidth=halfwidth * 1.6 + 3, wall_width=35)
        closer = distance < river_distance
        river_distance = np.where(closer, distance, river_distance)
        local = halfwidth * np.clip(1.0 + 0.45 * width_noise, 0.4, 1.9)
        river_halfwidth = np.where(closer, local, river_halfwidth)
    return dem, river_distance, river_halfwidth


def _base_cover(profile: RegionProfile, rng, dem: np.ndarray, slope: np.ndarray) -> np.ndarray:
    size = dem.shape[0]
    openness = terrain.fractal_field(rng, size, 3.0)
    rockiness = terrain.fractal_field(rng, size, 2.6)
    treeline = profile.treeline_m + 120 * terrain.fractal_field(rng, size, 3.0)
    cover = np.full(dem.shape, COVER_CODES["forest"], dtype=np.uint8)
    cover[(openness > 0.9) | (dem > treeline)] = COVER_CODES["grass"]
    cover[(slope > 46 + 4 * rockiness) | ((dem > treeline + 350) & (rockiness > 0.2))] = COVER_CODES["rock"]
    if profile.snowline_m is not None:
        cover[dem > profile.snowline_m + 150 * rockiness] = COVER_CODES["snow"]
    return cover


def _add_fields(profile: RegionProfile, rng, cover: np.ndarray, slope: np.ndarray, dem: np.ndarray) -> None:
    """Rectangular fields on flat, low ground: bare soil (a scar look-alike) or crops."""
    if profile.farmland <= 0:
        return
    size = cover.shape[0]
    flat = (slope < 9) & (dem < profile.treeline_m - 400)
    candidates = np.argwhere(flat)
    if len(candidates) == 0:
        return
    target = profile.farmland * len(candidates)
    covered = 0
    rows, cols = np.mgrid[0:size, 0:size]
    for _ in range(400):
        if covered >= target:
            break
        r0, c0 = candidates[rng.integers(len(candidates))]
        length, width = rng.uniform(10, 36), rng.uniform(6, 20)
        angle = rng.uniform(0, np.pi)
        half = int(max(length, width)) + 1
        r_lo, r_hi = max(r0 - half, 0), min(r0 + half + 1, size)
        c_lo, c_hi = max(c0 - half, 0), min(c0 + half + 1, size)
        dr = rows[r_lo:r_hi, c_lo:c_hi] - r0
        dc = cols[r_lo:r_hi, c_lo:c_hi] - c0
        along = dr * np.cos(angle) + dc * np.sin(angle)
        across = -dr * np.sin(angle) + dc * np.cos(angle)
        inside = (np.abs(along) < length / 2) & (np.abs(across) < width / 2) & flat[r_lo:r_hi, c_lo:c_hi]
        kind = "bare_field" if rng.random() < 0.45 else "crops"
        cover[r_lo:r_hi, c_lo:c_hi][inside] = COVER_CODES[kind]
        covered += int(inside.sum())


def _add_rivers(cover: np.ndarray, distance: np.ndarray, halfwidth: np.ndarray) -> None:
    """Gravel bars fill the flat valley floor around a narrower wet channel."""
    cover[distance < halfwidth] = COVER_CODES["gravel"]
    cover[distance < np.maximum(0.8, 0.35 * halfwidth)] = COVER_CODES["water"]


def _add_roads(profile: RegionProfile, rng, cover: np.ndarray, size: int) -> None:
    for _ in range(profile.roads):
        line = terrain.rasterise(terrain.smooth_curve(rng, size, wiggle=0.12), size)
        if rng.random() < 0.5:
            line = ndimage.binary_dilation(line)
        cover[line & (cover != COVER_CODES["water"])] = COVER_CODES["road"]


def _add_landslides(profile: RegionProfile, rng, cover, dem, slope) -> tuple[np.ndarray, np.ndarray]:
    """Clusters of scars, each starting on a steep slope and elongated downhill."""
    size = dem.shape[0]
    label = np.zeros(dem.shape, dtype=np.uint8)
    revegetation = np.zeros(dem.shape, dtype=np.float32)
    smooth_dem = ndimage.gaussian_filter(dem, 3)
    down_r, down_c = terrain.downhill_direction(smooth_dem)
    steep = np.argwhere(slope > STEEP_DEG)
    if len(steep) == 0:
        return label, revegetation
    area_scale = (size / REFERENCE_SIZE) ** 2
    # at least one event: a scene is mapped because something happened there
    n_clusters = max(1, rng.poisson(rng.uniform(*profile.landslide_clusters) * area_scale))
    edge_noise = terrain.fractal_field(rng, size, 2.2)
    rows, cols = np.mgrid[0:size, 0:size]
    for _ in range(n_clusters):
        centre = steep[rng.integers(len(steep))]
        spread = rng.uniform(60, 160) * (size / REFERENCE_SIZE) ** 0.5
        near = steep[np.hypot(*(steep - centre).T) < 2.5 * spread]
        weights = np.exp(-0.5 * (np.hypot(*(near - centre).T) / spread) ** 2)
        picks = rng.choice(len(near), size=min(len(near), rng.integers(*profile.scars_per_cluster, endpoint=True)),
                           replace=False, p=weights / weights.sum())
        for r0, c0 in near[picks]:
            dr_dir, dc_dir = down_r[r0, c0], down_c[r0, c0]
            length = rng.uniform(15, 70)
            width = rng.uniform(6, 20)
            reach = int(length + width) + 2
            r_lo, r_hi = max(r0 - reach, 0), min(r0 + reach + 1, size)
            c_lo, c_hi = max(c0 - reach, 0), min(c0 + reach + 1, size)
            dr = rows[r_lo:r_hi, c_lo:c_hi] - r0
            dc = cols[r_lo:r_hi, c_lo:c_hi] - c0
            along = (dr * dr_dir + dc * dc_dir) / length
            across = (-dr * dc_dir + dc * dr_dir) / (width / 2)
            t = np.clip(along, 0.0, 1.0)
            profile_width = np.sqrt(np.sin(np.pi * t**0.6)) + 0.15  # wide scarp, tapering runout
            ragged = 1.0 + 0.3 * edge_noise[r_lo:r_hi, c_lo:c_hi]
            inside = (along >= -0.05) & (along <= 1.0) & (np.abs(across) <= profile_width * ragged)
            inside &= cover[r_lo:r_hi, c_lo:c_hi] != COVER_CODES["water"]
            inside &= slope[r_lo:r_hi, c_lo:c_hi] > 12  # runout stops where the valley flattens
            label[r_lo:r_hi, c_lo:c_hi][inside] = 1
            cover[r_lo:r_hi, c_lo:c_hi][inside] = COVER_CODES["scar"]
            revegetation[r_lo:r_hi, c_lo:c_hi][inside] = rng.uniform(0.0, 0.2)
    return label, revegetation


def _reflectance(rng, cover: np.ndarray, spectra: dict[str, np.ndarray], revegetation: np.ndarray) -> np.ndarray:
    size = cover.shape[0]
    table = np.stack([spectra[name] for name in COVER_CODES])
    reflectance = table[cover]
    # older scars regrow grass: mix their spectrum toward vegetation
    regrown = revegetation[..., None]
    reflectance = reflectance * (1 - regrown) + spectra["grass"][None, None, :] * regrown
    # sparse vegetation lets soil show through on open ground
    is_grass = (cover == COVER_CODES["grass"])[..., None]
    soil_share = np.clip(0.15 + 0.12 * terrain.fractal_field(rng, size, 2.8), 0.0, 0.4)[..., None]
    reflectance = np.where(is_grass, reflectance * (1 - soil_share) + spectra["bare_field"] * soil_share, reflectance)
    texture = 1.0 + 0.07 * terrain.fractal_field(rng, size, 1.6)
    return reflectance * texture[..., None]


def _add_clouds(profile: RegionProfile, rng, reflectance: np.ndarray, size: int) -> np.ndarray:
    """Thin cirrus everywhere (bright in B10), thick cloud patches with their shadows."""
    cirrus = np.clip(0.5 + 0.5 * terrain.fractal_field(rng, size, 3.8), 0.0, None) * rng.uniform(0.5, 1.2)
    reflectance += cirrus[..., None] * np.asarray(CIRRUS)
    cover = profile.cloud_cover * rng.uniform(0.6, 1.4)
    field = terrain.fractal_field(rng, size, 3.6)
    threshold = np.quantile(field, 1.0 - cover)
    opacity = np.clip((field - threshold) / 0.6, 0.0, 1.0)
    az = np.radians(profile.sun_azimuth_deg)
    offset = rng.uniform(15, 40)  # shadow falls away from the sun
    shadow = ndimage.shift(opacity, (offset * np.cos(az), -offset * np.sin(az)), order=1, mode="constant")
    reflectance *= (1.0 - 0.6 * shadow)[..., None]
    # cloud tops vary in height: high tops are bright in the cirrus band
    height = np.clip(0.5 + 0.4 * terrain.fractal_field(rng, size, 3.0), 0.0, 1.0)[..., None]
    spectrum = (np.asarray(CLOUD_LOW) * (1 - height) + np.asarray(CLOUD_HIGH) * height) * rng.uniform(0.9, 1.2)
    reflectance[:] = reflectance * (1 - opacity[..., None]) + spectrum * opacity[..., None]
    return opacity


def _sensor(rng, reflectance: np.ndarray) -> np.ndarray:
    """Coarser bands are blurred to their native resolution, then noise is added."""
    out = reflectance.copy()
    for band in BANDS_20M:
        out[..., band] = ndimage.uniform_filter(out[..., band], size=2)
    for band in BANDS_60M:
        out[..., band] = ndimage.uniform_filter(out[..., band], size=6)
    out *= 1.0 + rng.normal(0.0, 0.015, out.shape)
    out += rng.normal(0.0, 0.004, out.shape)
    return np.clip(out, 0.0, 1.5)
