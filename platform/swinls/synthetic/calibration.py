"""Map synthetic physical values to the Landslide4Sense value range.

Landslide4Sense does not store raw reflectance (several band means are negative). Each synthetic
band gets one affine map, the same for every region, chosen so that the official per-band mean
and std describe data drawn from the default regions.

The raw moments the map starts from are measured on a fixed calibration sample of the generator
(`measure_raw_moments`) and stored in `calibration.json` beside this file, because measuring takes
seconds and every generating process would pay it. A test re-measures and compares, so the file
cannot drift from the generator: after changing the generator, run
`python jobs/synth.py --recalibrate` to rewrite it.
"""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path

import numpy as np

from swinls.bands import BANDS, OFFICIAL_STATS
from swinls.moments import BandMoments
from swinls.synthetic.rng import scene_rng
from swinls.synthetic.scene import generate_scene
from swinls.synthetic.spectra import DEFAULT_REGIONS

CALIBRATION_FILE = Path(__file__).with_name("calibration.json")
CALIBRATION_SEED = 7_231
CALIBRATION_SIZE = 1024  # the default scene size: relief, and so DEM, grows with scene width
CALIBRATION_SCENES = 2  # per default region


def measure_raw_moments() -> BandMoments:
    moments = BandMoments(BANDS)
    for name, profile in DEFAULT_REGIONS.items():
        for scene_no in range(CALIBRATION_SCENES):
            scene = generate_scene(profile, scene_rng(CALIBRATION_SEED, name, scene_no), CALIBRATION_SIZE)
            moments.update(scene.raw[::2, ::2])
    return moments


def calibration_record(moments: BandMoments) -> dict:
    return {
        "sample": {"seed": CALIBRATION_SEED, "size": CALIBRATION_SIZE, "scenes_per_region": CALIBRATION_SCENES,
                   "regions": list(DEFAULT_REGIONS)},
        "bands": list(BANDS),
        "raw_mean": [round(float(v), 9) for v in moments.mean],
        "raw_std": [round(float(v), 9) for v in moments.std],
    }


@lru_cache(maxsize=1)
def affine() -> tuple[np.ndarray, np.ndarray]:
    """Gain and offset per band: value = raw * gain + offset."""
    record = json.loads(CALIBRATION_FILE.read_text())
    if record["bands"] != list(BANDS):
        raise ValueError(f"{CALIBRATION_FILE}: calibrated for bands {record['bands']}, expected {list(BANDS)}")
    raw_mean, raw_std = np.array(record["raw_mean"]), np.array(record["raw_std"])
    target_mean = np.array([OFFICIAL_STATS[b].mean for b in BANDS])
    target_std = np.array([OFFICIAL_STATS[b].std for b in BANDS])
    gain = target_std / raw_std
    return gain, target_mean - raw_mean * gain


def to_landslide4sense(raw: np.ndarray) -> np.ndarray:
    gain, offset = affine()
    return (raw * gain + offset).astype(np.float32)


def write_calibration() -> Path:
    CALIBRATION_FILE.write_text(json.dumps(calibration_record(measure_raw_moments()), indent=1) + "\n")
    return CALIBRATION_FILE
