"""A synthetic scene written as Sentinel-2 products deliver it: one file per band at its native
resolution (10, 20, 60 m; block means of the 10 m values), digital numbers with the product's
offset (uint16, 0 = no data), an elevation raster in another CRS, and a STAC item listing them,
or a SAFE folder with its metadata XML. The stacked Landslide4Sense-unit scene of the same values
is what a product's prediction is compared with."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import numpy as np

from swinls.bands import BANDS
from swinls.patches.geotiff import write_geotiff

NATIVE_METRES = {"B1": 60, "B2": 10, "B3": 10, "B4": 10, "B5": 20, "B6": 20, "B7": 20, "B8": 10, "B9": 60,
                 "B10": 60, "B11": 20, "B12": 20}
COMMON_NAMES = {"B1": "coastal", "B2": "blue", "B3": "green", "B4": "red", "B5": "rededge1", "B6": "rededge2",
                "B7": "rededge3", "B8": "nir", "B9": "nir09", "B10": "cirrus", "B11": "swir16", "B12": "swir22"}
QUANTIFICATION, ADD_OFFSET = 10_000, -1000  # processing baseline 04.00 and later
ACQUIRED = dt.datetime(2026, 11, 20, 5, 12, 31, tzinfo=dt.timezone.utc)


def band_id(band: str) -> str:
    return f"B{int(band[1:]):02d}"


def block_mean(values: np.ndarray, factor: int) -> np.ndarray:
    height, width = values.shape
    return values.reshape(height // factor, factor, width // factor, factor).mean(axis=(1, 3))


def to_dn(reflectance: np.ndarray) -> np.ndarray:
    return np.clip(np.round(reflectance * QUANTIFICATION - ADD_OFFSET), 1, 65535).astype(np.uint16)


def write_band_files(raw: np.ndarray, folder: Path, *, crs: str, origin: tuple[float, float], tile: str = "T45RUL",
                     level: str = "L2A", suffix: str = ".tif") -> dict[str, Path]:
    """Per-band files of `raw` (H×W×14 physical, H and W multiples of 6): band → path. L2A has no B10."""
    height, width = raw.shape[:2]
    if height % 6 or width % 6:
        raise ValueError(f"a {height}×{width} scene: products need sides that are multiples of 6 (60 m / 10 m)")
    folder.mkdir(parents=True, exist_ok=True)
    stamp = ACQUIRED.strftime("%Y%m%dT%H%M%S")
    files = {}
    for k, band in enumerate(BANDS[:12]):
        if level == "L2A" and band == "B10":
            continue
        metres = NATIVE_METRES[band]
        dn = to_dn(block_mean(raw[..., k], metres // 10))
        path = folder / f"{tile}_{stamp}_{band_id(band)}_{metres}m{suffix}"
        transform = (float(metres), 0.0, origin[0], 0.0, -float(metres), origin[1])
        driver = {"driver": "JP2OpenJPEG"} if suffix == ".jp2" else {}
        _write(path, dn, crs, transform, driver)
        files[band] = path
    return files


def _write(path: Path, array: np.ndarray, crs: str, transform, driver: dict) -> None:
    if not driver:
        write_geotiff(path, array, crs=crs, transform=transform, nodata=0)
        return
    import rasterio
    from rasterio.transform import Affine

    with rasterio.open(path, "w", width=array.shape[1], height=array.shape[0], count=1, dtype=array.dtype,
                       crs=crs, transform=Affine(*transform), nodata=0, QUALITY=100, REVERSIBLE=True,
                       **driver) as out:
        out.write(array, 1)


def write_elevation(dem: np.ndarray, path: Path, *, crs: str, origin: tuple[float, float], to_crs: str = "EPSG:4326",
                    metres: float = 10.0) -> Path:
    """The DEM reprojected (bilinear) into `to_crs` at about the same resolution: another CRS, as a
    national or global elevation model comes."""
    import rasterio
    from rasterio.transform import Affine
    from rasterio.warp import Resampling, calculate_default_transform, reproject

    pad = 4  # a DEM reaches past the scene, as any real one does: no edge of the scene falls outside it
    dem = np.pad(dem, pad, mode="reflect")
    source = Affine(metres, 0, origin[0] - pad * metres, 0, -metres, origin[1] + pad * metres)
    height, width = dem.shape
    transform, out_w, out_h = calculate_default_transform(crs, to_crs, width, height,
                                                          *rasterio.transform.array_bounds(height, width, source))
    out = np.full((out_h, out_w), -9999.0, np.float32)
    reproject(dem.astype(np.float32), out, src_transform=source, src_crs=crs, dst_transform=transform, dst_crs=to_crs,
              resampling=Resampling.bilinear, dst_nodata=-9999.0)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_geotiff(path, out, crs=to_crs, transform=tuple(transform)[:6], nodata=-9999.0, band_names=("elevation",))
    return path


def write_stac_item(files: dict[str, Path], elevation: Path | None, path: Path, *, crs: str, item_id: str) -> Path:
    """A STAC item (pystac) for the band files: assets keyed by common name, with eo:bands and
    raster:bands (scale and offset to reflectance, nodata 0), hrefs relative to the item."""
    import pystac
    import rasterio
    from pystac.validation import validate_dict
    from rasterio.warp import transform_geom

    with rasterio.open(files["B2"] if "B2" in files else next(iter(files.values()))) as reference:
        bounds = reference.bounds
    footprint = transform_geom(crs, "EPSG:4326", {"type": "Polygon", "coordinates": [[
        (bounds.left, bounds.bottom), (bounds.right, bounds.bottom), (bounds.right, bounds.top),
        (bounds.left, bounds.top), (bounds.left, bounds.bottom)]]})
    xs, ys = zip(*footprint["coordinates"][0])
    item = pystac.Item(item_id, footprint, [min(xs), min(ys), max(xs), max(ys)], ACQUIRED,
                       {"platform": "sentinel-2b", "s2:processing_baseline": "05.10"})
    for band, file in files.items():
        asset = pystac.Asset(str(Path(file).relative_to(path.parent)) if Path(file).is_relative_to(path.parent)
                             else str(file), media_type=pystac.MediaType.COG, roles=["data"])
        asset.extra_fields["eo:bands"] = [{"name": band_id(band), "common_name": COMMON_NAMES[band]}]
        asset.extra_fields["raster:bands"] = [{"nodata": 0, "data_type": "uint16", "scale": 1 / QUANTIFICATION,
                                               "offset": ADD_OFFSET / QUANTIFICATION,
                                               "spatial_resolution": NATIVE_METRES[band]}]
        item.add_asset(COMMON_NAMES[band], asset)
    if elevation is not None:
        item.add_asset("dem", pystac.Asset(str(Path(elevation).relative_to(path.parent)), roles=["elevation"],
                                           media_type=pystac.MediaType.COG))
    item.stac_extensions = []  # eo and raster fields are used as such; only the core schema ships offline
    validate_dict(item.to_dict(), extensions=[])
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(item.to_dict(include_self_link=False), indent=1))
    return path
