"""Surface reflectance of land covers in Sentinel-2 bands B1..B12, and the named regions.

Textbook shapes: vegetation has a low red and a high red edge / NIR; a fresh landslide scar is
bright across the visible and SWIR with NIR barely above red (and brighter than a field, as
it lies on slopes that face away from the sun as often as toward it); riverbed gravel, roads and bare
fields look much like a scar in RGB but lie on flat ground; snow is bright in the visible and
dark in SWIR; cloud is bright and flat, high cloud bright in B10 (cirrus).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

#          B1     B2     B3     B4     B5     B6     B7     B8     B9     B10    B11    B12
SPECTRA: dict[str, tuple[float, ...]] = {
    "forest":     (0.030, 0.030, 0.060, 0.030, 0.100, 0.300, 0.380, 0.400, 0.120, 0.005, 0.200, 0.100),
    "grass":      (0.040, 0.050, 0.090, 0.070, 0.140, 0.250, 0.290, 0.310, 0.100, 0.005, 0.260, 0.150),
    "crops":      (0.035, 0.040, 0.080, 0.045, 0.130, 0.330, 0.420, 0.450, 0.130, 0.005, 0.240, 0.120),
    "scar":       (0.092, 0.115, 0.160, 0.205, 0.240, 0.262, 0.285, 0.296, 0.102, 0.006, 0.375, 0.320),
    "bare_field": (0.075, 0.095, 0.135, 0.170, 0.200, 0.220, 0.240, 0.255, 0.088, 0.005, 0.360, 0.300),
    "gravel":     (0.090, 0.105, 0.140, 0.170, 0.190, 0.200, 0.210, 0.220, 0.080, 0.005, 0.270, 0.220),
    "road":       (0.085, 0.095, 0.120, 0.135, 0.145, 0.155, 0.165, 0.170, 0.065, 0.004, 0.210, 0.185),
    "rock":       (0.095, 0.110, 0.140, 0.160, 0.180, 0.190, 0.200, 0.210, 0.080, 0.005, 0.250, 0.210),
    "water":      (0.060, 0.060, 0.050, 0.030, 0.020, 0.015, 0.012, 0.010, 0.005, 0.002, 0.005, 0.003),
    "snow":       (0.850, 0.850, 0.830, 0.800, 0.780, 0.750, 0.720, 0.700, 0.350, 0.020, 0.080, 0.060),
}
COVER_CODES = {name: code for code, name in enumerate(SPECTRA)}
CLOUD_LOW = (0.45, 0.46, 0.47, 0.48, 0.49, 0.50, 0.50, 0.51, 0.30, 0.010, 0.42, 0.36)
CLOUD_HIGH = (0.60, 0.61, 0.62, 0.63, 0.63, 0.64, 0.64, 0.65, 0.40, 0.450, 0.52, 0.44)
CIRRUS = (0.020, 0.020, 0.018, 0.016, 0.015, 0.014, 0.013, 0.013, 0.010, 0.060, 0.012, 0.010)  # per unit thickness


@dataclass(frozen=True)
class RegionProfile:
    """The character of a region: its terrain, covers, look-alikes, landslides and weather."""

    name: str
    mean_slope_deg: float  # the relief is scaled so that the scene's mean slope is this
    roughness: float  # spectral exponent of the fractal relief (lower is rougher)
    base_elevation_m: float
    treeline_m: float
    snowline_m: float | None
    landslide_clusters: tuple[float, float]  # range of the mean number of triggering events per 1024² scene
    scars_per_cluster: tuple[int, int]
    farmland: float  # share of flat ground turned into fields (some bare, some crops)
    rivers: int
    riverbed_halfwidth: tuple[float, float]
    roads: int
    cloud_cover: float  # mean share of a scene under thick cloud; thin cirrus is everywhere
    haze: float  # additive path radiance in the blue end
    scar_gain: float = 1.0  # brightness of scars and bare soil (darker volcanic ash < 1)
    spectral_jitter: float = 0.06  # per-region per-band gain spread
    sun_azimuth_deg: float = 150.0
    sun_elevation_deg: float = 45.0
    crs: str = "EPSG:32645"  # where its scenes are placed (UTM), for georeferenced outputs
    origin: tuple[float, float] = (300000.0, 3100000.0)


DEFAULT_REGIONS: dict[str, RegionProfile] = {
    profile.name: profile
    for profile in (
        RegionProfile(
            "steep-forest", mean_slope_deg=27, roughness=3.8, base_elevation_m=400, treeline_m=2300,
            snowline_m=None, landslide_clusters=(4, 6), scars_per_cluster=(14, 26), farmland=0.05,
            rivers=2, riverbed_halfwidth=(1.5, 3.0), roads=1, cloud_cover=0.05, haze=0.02,
            crs="EPSG:32645", origin=(330000.0, 3090000.0),
        ),
        RegionProfile(
            "terraced-farmland", mean_slope_deg=15, roughness=4.0, base_elevation_m=200, treeline_m=3000,
            snowline_m=None, landslide_clusters=(2, 4), scars_per_cluster=(10, 20), farmland=0.45,
            rivers=1, riverbed_halfwidth=(3.0, 6.0), roads=3, cloud_cover=0.03, haze=0.03,
            crs="EPSG:32643", origin=(640000.0, 1370000.0),
        ),
        RegionProfile(
            "glacial-valley", mean_slope_deg=30, roughness=3.7, base_elevation_m=1200, treeline_m=2200,
            snowline_m=3300, landslide_clusters=(3, 5), scars_per_cluster=(12, 22), farmland=0.08,
            rivers=1, riverbed_halfwidth=(5.0, 10.0), roads=1, cloud_cover=0.04, haze=0.01,
            crs="EPSG:32632", origin=(410000.0, 5150000.0),
        ),
        RegionProfile(
            "volcanic-arc", mean_slope_deg=24, roughness=3.9, base_elevation_m=300, treeline_m=2500,
            snowline_m=None, landslide_clusters=(4, 6), scars_per_cluster=(12, 24), farmland=0.2,
            rivers=1, riverbed_halfwidth=(2.0, 4.0), roads=2, cloud_cover=0.09, haze=0.035,
            scar_gain=0.72, sun_azimuth_deg=135.0, sun_elevation_deg=55.0,
            crs="EPSG:32654", origin=(520000.0, 4740000.0),
        ),
    )
}
DEFAULT_HOLDOUT = "volcanic-arc"


def region_spectra(profile: RegionProfile, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """Per-region spectra: the textbook shapes with a gain per band, like a different season."""
    out = {}
    for name, values in SPECTRA.items():
        gains = 1.0 + rng.normal(0.0, profile.spectral_jitter, len(values))
        spectrum = np.asarray(values) * np.clip(gains, 0.7, 1.3)
        if name in ("scar", "bare_field", "gravel"):
            spectrum = spectrum * profile.scar_gain
        out[name] = spectrum
    return out


# the benchmark-size presets' two regions beyond the default four (synthetic/presets.py)
EXTRA_REGIONS: dict[str, RegionProfile] = {
    profile.name: profile
    for profile in (
        RegionProfile(
            "arid-badlands", mean_slope_deg=22, roughness=3.6, base_elevation_m=900, treeline_m=1400,
            snowline_m=None, landslide_clusters=(3, 5), scars_per_cluster=(10, 20), farmland=0.15,
            rivers=1, riverbed_halfwidth=(3.0, 8.0), roads=2, cloud_cover=0.01, haze=0.015,
            scar_gain=0.9, sun_azimuth_deg=160.0, sun_elevation_deg=60.0, spectral_jitter=0.05,
            crs="EPSG:32611", origin=(420000.0, 3990000.0),
        ),
        RegionProfile(
            "monsoon-hills", mean_slope_deg=26, roughness=4.1, base_elevation_m=250, treeline_m=3200,
            snowline_m=None, landslide_clusters=(5, 8), scars_per_cluster=(8, 16), farmland=0.25,
            rivers=2, riverbed_halfwidth=(2.0, 5.0), roads=2, cloud_cover=0.08, haze=0.045,
            sun_azimuth_deg=140.0, sun_elevation_deg=50.0, crs="EPSG:32646", origin=(240000.0, 2750000.0),
        ),
    )
}
