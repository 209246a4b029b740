"""Writing the synthetic dataset in the Landslide4Sense layout, one tree per region.

    <out>/<region>/TrainData/img/image_N.h5, TrainData/mask/mask_N.h5
    <out>/<region>/ValidData/img/image_N.h5, ValidData/mask/mask_N.h5
    <out>/<region>/TestData/img/image_N.h5                      (unlabeled, like the benchmark)
    <out>/<region>/scenes/scene_K.tif, scene_K_mask.tif         (georeferenced, for prediction)
    <out>/synthetic.json                                        (the spec and where each patch came from)

The dataset appears whole or not at all: it is written to a temporary sibling folder and renamed.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from swinls.bands import BANDS
from swinls.patches.geotiff import write_geotiff
from swinls.patches.h5 import write_h5_image, write_h5_mask
from swinls.patches.layout import SPLIT_DIRS
from swinls.synthetic.calibration import to_landslide4sense
from swinls.synthetic.rng import scene_rng, split_rng
from swinls.synthetic.scene import generate_scene
from swinls.synthetic.spectra import DEFAULT_REGIONS, EXTRA_REGIONS, RegionProfile
from swinls.synthetic.terrain import PIXEL_METRES

SPEC_FILE = "synthetic.json"


@dataclass(frozen=True)
class SyntheticSpec:
    seed: int = 0
    regions: tuple[str, ...] = tuple(DEFAULT_REGIONS)
    scene_size: int = 1024
    scenes_per_region: int = 1
    patch_size: int = 128
    split_fractions: tuple[float, float, float] = (0.7, 0.15, 0.15)  # train, valid, test
    h5_dtype: str = "float32"
    write_scenes: bool = True
    extra_profiles: tuple[RegionProfile, ...] = field(default=())
    # exact (region, train, valid, test) patch counts: as many scenes as they need are generated
    # and the tiles left over are not written (the presets' Landslide4Sense sizes)
    split_counts: tuple[tuple[str, int, int, int], ...] = ()
    test_masks: bool = False  # masks for the test split too (the benchmark has none)
    preset: str | None = None

    def __post_init__(self) -> None:
        if self.scene_size % self.patch_size:
            raise ValueError(f"scene_size {self.scene_size} is not a multiple of patch_size {self.patch_size}")
        if self.h5_dtype not in ("float32", "float64"):
            raise ValueError(f"h5_dtype must be float32 or float64, got {self.h5_dtype!r}")
        if abs(sum(self.split_fractions) - 1.0) > 1e-9 or min(self.split_fractions) < 0:
            raise ValueError(f"split_fractions must be non-negative and sum to 1, got {self.split_fractions}")
        known = set(DEFAULT_REGIONS) | set(EXTRA_REGIONS) | {p.name for p in self.extra_profiles}
        unknown = [r for r in self.regions if r not in known]
        if unknown:
            raise ValueError(f"unknown synthetic region(s) {', '.join(unknown)}; known: {', '.join(sorted(known))}")

        counted = [c[0] for c in self.split_counts]
        if counted and sorted(counted) != sorted(self.regions):
            raise ValueError(f"split_counts name regions {', '.join(counted)}, not the spec's {', '.join(self.regions)}")
        if any(min(c[1:]) < 0 for c in self.split_counts):
            raise ValueError("split_counts must not be negative")

    def profile(self, name: str) -> RegionProfile:
        extra = {p.name: p for p in self.extra_profiles}
        return extra.get(name) or DEFAULT_REGIONS.get(name) or EXTRA_REGIONS[name]

    def counts_of(self, name: str) -> tuple[int, int, int] | None:
        for region, *counts in self.split_counts:
            if region == name:
                return tuple(counts)
        return None

    def scenes_for(self, name: str) -> int:
        counts = self.counts_of(name)
        if counts is None:
            return self.scenes_per_region
        tiles = (self.scene_size // self.patch_size) ** 2
        return max(1, -(-sum(counts) // tiles))

    def to_dict(self) -> dict:
        data = asdict(self)
        data["regions"] = list(self.regions)
        data["split_fractions"] = list(self.split_fractions)
        data["extra_profiles"] = [asdict(p) for p in self.extra_profiles]
        data["split_counts"] = [list(c) for c in self.split_counts]
        # settings at their defaults are left out: a dataset generated before they existed still matches
        for key, default in (("split_counts", []), ("test_masks", False), ("preset", None)):
            if data[key] == default:
                del data[key]
        return data


def _assign_splits(spec: SyntheticSpec, region: str, n_tiles: int) -> list[tuple[str | None, str | None]]:
    """(split, patch id) for each tile, ids numbered from 1 per split as in Landslide4Sense;
    (None, None) for a tile beyond the spec's exact counts."""
    order = split_rng(spec.seed, region).permutation(n_tiles)
    counts = spec.counts_of(region)
    if counts is None:
        n_train = int(round(spec.split_fractions[0] * n_tiles))
        n_valid = int(round(spec.split_fractions[1] * n_tiles))
        n_test = n_tiles - n_train - n_valid
    else:
        n_train, n_valid, n_test = counts
    split_of = {}
    for rank, tile in enumerate(order):
        split_of[int(tile)] = ("train" if rank < n_train else "valid" if rank < n_train + n_valid
                               else "test" if rank < n_train + n_valid + n_test else None)
    counters = {s: 0 for s in SPLIT_DIRS}
    out = []
    for tile in range(n_tiles):
        split = split_of[tile]
        if split is None:
            out.append((None, None))
            continue
        counters[split] += 1
        out.append((split, f"image_{counters[split]}"))
    return out


def _write_region(root: Path, spec: SyntheticSpec, name: str, progress=None) -> dict:
    profile = spec.profile(name)
    per_side = spec.scene_size // spec.patch_size
    tiles_per_scene = per_side * per_side
    scenes = spec.scenes_for(name)
    assignment = _assign_splits(spec, name, tiles_per_scene * scenes)
    labelled = ("train", "valid", "test") if spec.test_masks else ("train", "valid")
    for split_dir in SPLIT_DIRS.values():
        (root / name / split_dir / "img").mkdir(parents=True, exist_ok=True)
    for split in labelled:
        (root / name / SPLIT_DIRS[split] / "mask").mkdir(parents=True, exist_ok=True)
    counts = {s: 0 for s in SPLIT_DIRS}
    positives = {s: 0 for s in SPLIT_DIRS}
    index = []
    for scene_no in range(scenes):
        scene = generate_scene(profile, scene_rng(spec.seed, name, scene_no), spec.scene_size)
        values = to_landslide4sense(scene.raw)
        if spec.write_scenes:
            _write_scene(root / name / "scenes", scene_no, values, scene.label, profile, spec.scene_size)
        ps = spec.patch_size
        for tile in range(tiles_per_scene):
            row, col = divmod(tile, per_side)
            split, patch_id = assignment[scene_no * tiles_per_scene + tile]
            if split is None:
                continue
            window = np.s_[row * ps:(row + 1) * ps, col * ps:(col + 1) * ps]
            split_root = root / name / SPLIT_DIRS[split]
            write_h5_image(split_root / "img" / f"{patch_id}.h5", values[window], spec.h5_dtype)
            if split in labelled:
                mask_id = patch_id.replace("image_", "mask_")
                write_h5_mask(split_root / "mask" / f"{mask_id}.h5", scene.label[window])
            counts[split] += 1
            positives[split] += int(scene.label[window].sum())
            index.append({"split": split, "id": patch_id, "scene": scene_no, "row": row * ps, "col": col * ps})
        if progress is not None:
            progress.add()
    pixels = {s: counts[s] * spec.patch_size**2 for s in counts}
    return {
        "profile": asdict(profile),
        "counts": counts,
        "positive_fraction": {s: (positives[s] / pixels[s] if pixels[s] else 0.0) for s in counts},
        "patches": index,
    }


def _write_scene(folder: Path, scene_no: int, values: np.ndarray, label: np.ndarray, profile: RegionProfile, size: int) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    x0 = profile.origin[0] + scene_no * size * PIXEL_METRES
    y0 = profile.origin[1]
    transform = (PIXEL_METRES, 0.0, x0, 0.0, -PIXEL_METRES, y0)
    write_geotiff(folder / f"scene_{scene_no}.tif", values, crs=profile.crs, transform=transform, band_names=BANDS)
    write_geotiff(folder / f"scene_{scene_no}_mask.tif", label, crs=profile.crs, transform=transform, band_names=("landslide",))


def write_synthetic(out_dir: str | Path, spec: SyntheticSpec = SyntheticSpec(), progress=None) -> dict:
    """Generate the dataset into `out_dir` (which must not exist yet); returns its summary.
    `progress` (swinls.progress.Progress) counts the scenes as they are written."""
    out = Path(out_dir)
    if out.exists():
        raise FileExistsError(f"{out} already exists; synthetic data is written to a new folder")
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(dir=out.parent, prefix=f".{out.name}.tmp-"))
    try:
        summary = {"generator": "swinls.synthetic", "spec": spec.to_dict(), "bands": list(BANDS), "regions": {}}
        if progress is not None:
            progress.total = sum(spec.scenes_for(name) for name in spec.regions)
        for name in spec.regions:
            summary["regions"][name] = _write_region(staging, spec, name, progress)
        (staging / SPEC_FILE).write_text(json.dumps(summary, indent=1, sort_keys=True) + "\n")
        os.replace(staging, out)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return summary


def ensure_synthetic(out_dir: str | Path, spec: SyntheticSpec = SyntheticSpec(), progress=None) -> dict:
    """Reuse a dataset generated earlier with the same spec, or generate it."""
    out = Path(out_dir)
    spec_path = out / SPEC_FILE
    if spec_path.exists():
        summary = json.loads(spec_path.read_text())
        if summary.get("spec") == json.loads(json.dumps(spec.to_dict())):
            return summary
        raise FileExistsError(f"{out} holds synthetic data generated with a different spec; choose another folder")
    return write_synthetic(out, spec, progress)
