"""Benchmark-size synthetic datasets: the Landslide4Sense split sizes over six regions.

    l4s    3,799 training, 245 validation and 800 test patches — the benchmark's own counts
    small  950 / 62 / 200, a quarter of that, for CPU work

The counts are of the dataset's TrainData / ValidData / TestData over all six regions, spread
evenly across them (the last regions take the remainders); `volcanic-arc` is the one a run holds
out, so an experiment trains on the other five regions' share and evaluates the held-out one on
all of its labelled patches. Unlike the benchmark's, test patches carry masks here (so that a
prediction or a self-training run can be scored); a run still treats them as unlabeled.

The four default regions are joined by two more: arid badlands (bare slopes, little vegetation,
where scars are hard to tell from the ground) and monsoon hills (dense vegetation, haze, many
small scars).
"""

from __future__ import annotations

from dataclasses import dataclass

from swinls.synthetic.spectra import DEFAULT_HOLDOUT, DEFAULT_REGIONS, RegionProfile

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
PRESET_REGIONS = tuple(DEFAULT_REGIONS) + tuple(EXTRA_REGIONS)
PRESET_HOLDOUT = DEFAULT_HOLDOUT


@dataclass(frozen=True)
class Preset:
    name: str
    train: int
    valid: int
    test: int

    def per_region(self, regions: tuple[str, ...] = PRESET_REGIONS) -> dict[str, tuple[int, int, int]]:
        """(train, valid, test) patches of each region, summing to the preset's counts."""
        n = len(regions)

        def share(total: int, i: int) -> int:
            return total // n + (1 if i >= n - total % n else 0)

        return {region: (share(self.train, i), share(self.valid, i), share(self.test, i)) for i, region in enumerate(regions)}


PRESETS = {"l4s": Preset("l4s", 3799, 245, 800), "small": Preset("small", 950, 62, 200)}


def preset_spec(name: str, seed: int = 0, scene_size: int = 1024, write_scenes: bool = False):
    """The SyntheticSpec of a preset."""
    from swinls.synthetic.writer import SyntheticSpec

    if name not in PRESETS:
        raise ValueError(f"unknown preset {name!r}; valid presets: {', '.join(PRESETS)}")
    counts = PRESETS[name].per_region()
    return SyntheticSpec(seed=seed, regions=PRESET_REGIONS, scene_size=scene_size, write_scenes=write_scenes,
                         split_counts=tuple((region, *counts[region]) for region in PRESET_REGIONS), test_masks=True,
                         preset=name)
