"""The embedded default: the built-in synthetic dataset, cached locally, and small settings."""

from __future__ import annotations

from pathlib import Path

from swinls.shards import Manifest, ingest
from swinls.synthetic import SyntheticSpec, ensure_synthetic

DEFAULT_SPEC = SyntheticSpec(seed=0, write_scenes=True)

# a model and schedule that train in minutes on a laptop CPU (platform/swinls/recipes/smoke.yaml)
SMOKE_OVERRIDES = ["recipe=smoke"]


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
