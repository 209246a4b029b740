"""How physical values become a model's input values.

Sentinel-2 products give reflectance (after their own scale and offset), an elevation raster
metres, and slope is derived in degrees. Landslide4Sense does not store those: its bands are
rescaled by maps the release does not publish (several band means are negative). The platform's
convention, which every ingest keeps, is one affine map per band, chosen so that the official
Landslide4Sense per-band mean and std describe physical values drawn from its calibration regions
(`swinls.synthetic.calibration`). A model's card records the map it was trained under; reading a
product applies it, so a product and a pre-stacked Landslide4Sense scene reach the model alike.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from swinls.bands import BANDS

PHYSICAL_UNITS = {**{band: "reflectance" for band in BANDS[:12]}, "slope": "degrees", "DEM": "metres"}
LANDSLIDE4SENSE = "landslide4sense"


@dataclass(frozen=True)
class InputUnits:
    """model input = physical × gain + offset, per band name."""

    kind: str
    gain: dict[str, float] = field(default_factory=dict)
    offset: dict[str, float] = field(default_factory=dict)
    physical: dict[str, str] = field(default_factory=lambda: dict(PHYSICAL_UNITS))

    def affine(self, bands: tuple[str, ...], source: str) -> tuple[np.ndarray, np.ndarray]:
        """(gain, offset) arrays for `bands`, in order; every band must have both."""
        from swinls.errors import SourceError

        missing = [b for b in bands if b not in self.gain or b not in self.offset]
        if missing:
            raise SourceError(source, f"the model's input units ({self.kind}) do not say how to map band "
                                      f"{', '.join(missing)} from physical values")
        return (np.array([self.gain[b] for b in bands], np.float32),
                np.array([self.offset[b] for b in bands], np.float32))


def landslide4sense_units() -> InputUnits:
    """The platform's map from physical values to Landslide4Sense's value range."""
    from swinls.synthetic.calibration import affine

    gain, offset = affine()
    return InputUnits(LANDSLIDE4SENSE, {b: round(float(g), 9) for b, g in zip(BANDS, gain)},
                      {b: round(float(o), 9) for b, o in zip(BANDS, offset)})
