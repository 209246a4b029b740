"""Sentinel-2 band names as products spell them, and the Landslide4Sense band each one is.

Products name a band by its id (B02, B8A; SAFE and most STAC items), by its common name (blue,
nir; STAC's eo extension, Earth Search's asset keys) or by both. Landslide4Sense has B1..B12
without B8A, so B8A is recognised and never taken for B8.
"""

from __future__ import annotations

import re

# Landslide4Sense name → (common names, native resolution in metres)
SENTINEL2: dict[str, tuple[tuple[str, ...], int]] = {
    "B1": (("coastal",), 60),
    "B2": (("blue",), 10),
    "B3": (("green",), 10),
    "B4": (("red",), 10),
    "B5": (("rededge1", "rededge"), 20),
    "B6": (("rededge2",), 20),
    "B7": (("rededge3",), 20),
    "B8": (("nir",), 10),
    "B9": (("nir09", "wvp"), 60),
    "B10": (("cirrus",), 60),
    "B11": (("swir16",), 20),
    "B12": (("swir22",), 20),
}
TERRAIN = ("slope", "DEM")
_ID = re.compile(r"(?<![A-Z0-9])B(8A|0?\d{1,2})(?![0-9A])")  # B02, B2, B8A; not B021 nor the B8 of B8A


def band_from_id(text: str) -> str | None:
    """The Landslide4Sense band a band id names (B02 → B2), None for B8A or anything else."""
    match = re.fullmatch(r"B(8A|0?\d{1,2})", text.strip().upper())
    if not match or match.group(1) == "8A":
        return None
    name = f"B{int(match.group(1))}"
    return name if name in SENTINEL2 else None


def band_from_common_name(text: str) -> str | None:
    lowered = text.strip().lower()
    return next((band for band, (names, _) in SENTINEL2.items() if lowered in names), None)


def band_in_filename(stem: str) -> str | None:
    """The band a file's name carries (T33TWM_20230101T100031_B02_10m → B2); None when it names
    none, B8A, or more than one band."""
    found = {m.group(0) for m in _ID.finditer(stem.upper())}
    bands = {band_from_id(text) for text in found}
    if len(bands) != 1:
        return None
    return bands.pop()


def band_named(*texts: str | None) -> str | None:
    """The Landslide4Sense band any of `texts` names, as a band id or a common name."""
    for text in texts:
        if text:
            band = band_from_id(text) or band_from_common_name(text)
            if band:
                return band
    return None
