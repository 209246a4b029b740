"""The embedded default: the built-in synthetic dataset, cached locally, and small settings."""

from __future__ import annotations

from pathlib import Path

from swinls.reachable import published_dataset_uri
from swinls.shards import Manifest, ingest
from swinls.synthetic import SyntheticSpec, ensure_synthetic

DEFAULT_SPEC = SyntheticSpec(seed=0, write_scenes=True)

# a model and schedule that train in minutes on a laptop CPU (platform/swinls/recipes/smoke.yaml)
SMOKE_OVERRIDES = ["recipe=smoke"]


def default_dataset(cache: str | Path = ".cache", spec: SyntheticSpec = DEFAULT_SPEC, publish_to: str | None = None) -> str:
    """Generate and ingest the built-in dataset on first use; afterwards just return its URI.
    `publish_to`: a storage URI every node reaches (a multi-node cluster), where the shards go
    instead of under `cache` (the raw files stay on this node: only ingest reads them)."""
    cache = Path(cache).absolute()
    raw = cache / "synthetic"
    shards = published_dataset_uri(publish_to, "builtin") if publish_to else str(cache / "shards")
    ensure_synthetic(raw, spec)
    if Manifest.load_if_exists(shards) is None or set(Manifest.load(shards).regions) != set(spec.regions):
        ingest(str(raw), shards)
    return shards


def preset_dataset(name: str, cache: str | Path = ".cache", seed: int = 0, publish_to: str | None = None) -> str:
    """A benchmark-size synthetic dataset (`jobs/synth.py --preset`), generated and ingested on
    first use under `cache/presets/` (the shards under `publish_to` when given, as above);
    afterwards just its URI."""
    from swinls.synthetic.presets import preset_spec

    spec = preset_spec(name, seed=seed)
    cache = Path(cache).absolute() / "presets"
    raw = cache / f"{name}-s{seed}"
    shards = published_dataset_uri(publish_to, f"{name}-s{seed}") if publish_to else str(cache / f"{name}-s{seed}-shards")
    ensure_synthetic(raw, spec)
    if Manifest.load_if_exists(shards) is None:
        ingest(str(raw), shards)
    return shards
