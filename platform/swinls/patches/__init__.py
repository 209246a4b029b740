"""Raw patch formats: Landslide4Sense `.h5` and GeoTIFF, their layout, and validation."""

from swinls.patches.errors import PatchError
from swinls.patches.geotiff import GeoMeta, read_geotiff, write_geotiff
from swinls.patches.h5 import read_h5_image, read_h5_mask, write_h5_image, write_h5_mask
from swinls.patches.layout import PatchSource, RegionSources, discover
from swinls.patches.read import Patch, decode_patch

__all__ = [
    "GeoMeta", "Patch", "PatchError", "PatchSource", "RegionSources", "decode_patch", "discover",
    "read_geotiff", "read_h5_image", "read_h5_mask", "write_geotiff", "write_h5_image", "write_h5_mask",
]
