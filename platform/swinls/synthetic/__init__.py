"""The built-in synthetic Landslide4Sense-format dataset: named regions, seeded, deterministic."""

from swinls.synthetic.spectra import DEFAULT_HOLDOUT, DEFAULT_REGIONS, RegionProfile
from swinls.synthetic.writer import SPEC_FILE, SyntheticSpec, ensure_synthetic, write_synthetic

__all__ = ["DEFAULT_HOLDOUT", "DEFAULT_REGIONS", "RegionProfile", "SPEC_FILE", "SyntheticSpec",
           "ensure_synthetic", "write_synthetic"]
