"""A small retraining world that trains in seconds in this process: three shard datasets of the
built-in synthetic data (A and C: one region each; B: both), a nano model, one epoch a stage. A
champion trained on one dataset does not cover the others, so runs keep having work."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from swinls.retraining import Recipe, RetrainOptions

TINY = ("model.size=nano", "model.decoder_channels=[16, 16, 8, 8, 8]", "model.drop_path=0.0", "data.batch_size=8",
        "stage1.epochs=1", "stage1.lr=0.002", "stage2.epochs=1", "stage2.lr=0.0001", "selftrain.rounds=0",
        "run.keep_checkpoints=1")
FORCE_LOCAL = RetrainOptions(min_gain=-1.0, max_region_drop=1.0, local=True)  # promote whatever trains, no Ray
REGIONS = {"A": ("steep-forest",), "B": ("steep-forest", "terraced-farmland"), "C": ("terraced-farmland",)}


def recipe(seed: int) -> Recipe:
    return Recipe(overrides=TINY + (f"run.seed={seed}",))


def job_args(seed: int) -> list[str]:
    """The same recipe as jobs/retrain.py's arguments."""
    return [a for o in recipe(seed).overrides for a in ("--set", o)] + ["--local", "--min-gain", "-1",
                                                                         "--max-region-drop", "1"]


def small_datasets(root: Path) -> dict[str, str]:
    """Shards of A and B under `root`; their URIs by name."""
    from swinls.shards import ingest
    from swinls.synthetic import SyntheticSpec, write_synthetic

    raw = root / "raw"
    write_synthetic(raw, SyntheticSpec(seed=3, regions=REGIONS["B"], scene_size=256, write_scenes=False))
    out = {}
    for name, regions in REGIONS.items():
        tree = root / f"tree-{name}"
        for region in regions:
            shutil.copytree(raw / region, tree / region, copy_function=os.link)
        ingest(str(tree), str(root / f"shards-{name}"))
        out[name] = str(root / f"shards-{name}")
    return out
