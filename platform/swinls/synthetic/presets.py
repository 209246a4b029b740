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

from swinls.synthetic.spectra import DEFAULT_HOLDOUT, DEFAULT_REGIONS, EXTRA_REGIONS
from swinls.synthetic.writer import SyntheticSpec

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
    if name not in PRESETS:
        raise ValueError(f"unknown preset {name!r}; valid presets: {', '.join(PRESETS)}")
    counts = PRESETS[name].per_region()
    return SyntheticSpec(seed=seed, regions=PRESET_REGIONS, scene_size=scene_size, write_scenes=write_scenes,
                         split_counts=tuple((region, *counts[region]) for region in PRESET_REGIONS), test_masks=True,
                         preset=name)
