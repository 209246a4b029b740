"""The embedded default: the built-in synthetic dataset, cached locally, and small settings."""

from __future__ import annotations

from pathlib import Path

from swinls.shards import Manifest, ingest
from swinls.synthetic import SyntheticSpec, ensure_synthetic

DEFAULT_SPEC = SyntheticSpec(seed=0, write_scenes=True)

# a model and schedule that train in minutes on a laptop CPU
SMOKE_OVERRIDES = [
    "model.size=nano",
    "model.decoder_channels=[64, 32, 16, 16, 8]",
    "model.drop_path=0.0",
    "data.batch_size=8",
    "data.holdout_regions=[volcanic-arc]",
    "stage1.epochs=4",
    "stage1.lr=0.001",
    "stage1.loss.lovasz=0.25",
    "stage1.loss.image=0.5",
    "stage2.epochs=1",
    "stage2.lr=0.0001",
    "selftrain.rounds=1",
    "selftrain.stage1.epochs=1",
    "selftrain.stage1.lr=0.0005",
    "selftrain.stage2.epochs=1",
    "selftrain.stage2.lr=0.0001",
    "run.keep_checkpoints=1",
]


def default_dataset(cache: str | Path = ".cache", spec: SyntheticSpec = DEFAULT_SPEC) -> str:
    """Generate and ingest the built-in dataset on first use; afterwards just return its URI."""
    cache = Path(cache).absolute()
    raw, shards = cache / "synthetic", cache / "shards"
    ensure_synthetic(raw, spec)
    if Manifest.load_if_exists(str(shards)) is None or set(Manifest.load(str(shards)).regions) != set(spec.regions):
        ingest(str(raw), str(shards))
    return str(shards)


def preset_dataset(name: str, cache: str | Path = ".cache", seed: int = 0) -> str:
    """A benchmark-size synthetic dataset (`jobs/synth.py --preset`), generated and ingested on
    first use under `cache/presets/`; afterwards just its URI."""
    from swinls.synthetic.presets import preset_spec

    spec = preset_spec(name, seed=seed)
    cache = Path(cache).absolute() / "presets"
    raw, shards = cache / f"{name}-s{seed}", cache / f"{name}-s{seed}-shards"
    ensure_synthetic(raw, spec)
    if Manifest.load_if_exists(str(shards)) is None:
        ingest(str(raw), str(shards))
    return str(shards)
