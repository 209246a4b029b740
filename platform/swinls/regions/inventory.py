"""Landslide inventories on a scene's grid: polygons in any CRS (GeoJSON, GeoPackage, Shapefile;
read with pyogrio) reprojected and rasterised with rasterio, or a label raster resampled by
nearest neighbour. Every problem is an error naming the file (and the feature)."""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass

import numpy as np

from swinls import storage
from swinls.errors import SwinLSError

RASTER_SUFFIXES = (".tif", ".tiff")


class InventoryError(SwinLSError, ValueError):
    def __init__(self, source: str, message: str) -> None:
        super().__init__(f"{source}: {message}")
        self.source = source


@dataclass(frozen=True)
class Polygons:
    source: str
    crs: str  # WKT
    geometries: tuple  # GeoJSON-like mappings, in `crs`
    bounds: tuple[float, float, float, float]  # in `crs`


@dataclass(frozen=True)
class LabelRaster:
    source: str


def _local_copy(uri: str, tmp: str) -> str:
    """pyogrio and GDAL read local files; an s3:// inventory is fetched first (they are small)."""
    if not storage.is_s3(uri):
        if not os.path.exists(uri):
            raise InventoryError(uri, "no such file")
        return uri
    fs, path = storage.filesystem(uri)
    if not fs.exists(path):
        raise InventoryError(uri, "no such object")
    local = os.path.join(tmp, path.rsplit("/", 1)[-1])
    fs.get(path, local)
    return local


def read_inventory(uri: str) -> Polygons | LabelRaster:
    """The inventory at `uri`, checked: a CRS, and every feature a valid, non-empty polygon."""
    if uri.lower().endswith(RASTER_SUFFIXES):
        return LabelRaster(uri)
    import pyogrio
    import shapely

    with tempfile.TemporaryDirectory(prefix="swinls-inventory-") as tmp:
        local = _local_copy(uri, tmp)
        try:
            meta, fids, wkb, field_data = pyogrio.raw.read(local, return_fids=True)
        except Exception as exc:  # pyogrio raises its own DataSourceError / DataLayerError
            raise InventoryError(uri, f"not a readable vector file ({exc})") from exc
    if not meta.get("crs"):
        raise InventoryError(uri, "has no CRS: polygons cannot be placed on a scene (set one, e.g. ogr2ogr -a_srs)")
    names = list(meta.get("fields", ()))
    ids = field_data[names.index("id")] if "id" in names else fids
    shapes = []
    for fid, blob in zip(ids, wkb):
        geometry = shapely.from_wkb(blob) if blob is not None else None
        if geometry is None or geometry.is_empty:
            raise InventoryError(uri, f"feature {fid} has an empty geometry")
        if geometry.geom_type not in ("Polygon", "MultiPolygon"):
            raise InventoryError(uri, f"feature {fid} is a {geometry.geom_type}, not a polygon")
        if not geometry.is_valid:
            raise InventoryError(uri, f"feature {fid} is not a valid polygon ({shapely.is_valid_reason(geometry)})")
        shapes.append(geometry)
    if not shapes:
        raise InventoryError(uri, "holds no feature")
    return Polygons(uri, _wkt(meta["crs"]), tuple(shapely.geometry.mapping(g) for g in shapes),
                    tuple(shapely.total_bounds(shapes).tolist()))


def _wkt(crs: str) -> str:
    from rasterio.crs import CRS

    return CRS.from_user_input(crs).to_wkt()


def polygons_on_grid(polygons: Polygons, crs: str, transform, shape: tuple[int, int]) -> np.ndarray:
    """H×W bool: pixels whose centre lies in a polygon, the polygons reprojected to `crs`."""
    from rasterio.features import rasterize
    from rasterio.warp import transform_geom

    shapes = [transform_geom(polygons.crs, crs, g) for g in polygons.geometries]
    return rasterize(((s, 1) for s in shapes), out_shape=shape, transform=transform, fill=0, dtype="uint8").astype(bool)


def overlaps(polygons: Polygons, crs: str, transform, shape: tuple[int, int]) -> bool:
    """Whether the polygons' bounds, reprojected, meet the grid's footprint."""
    from rasterio.transform import array_bounds
    from rasterio.warp import transform_bounds

    west, south, east, north = array_bounds(shape[0], shape[1], transform)
    left, bottom, right, top = transform_bounds(polygons.crs, crs, *polygons.bounds, densify_pts=21)
    return left < east and right > west and bottom < north and top > south


def raster_on_grid(labels: LabelRaster, crs: str, transform, shape: tuple[int, int]) -> np.ndarray:
    """H×W uint8 on the scene grid: a label raster (1 landslide, 0 not, its nodata → 255)
    reprojected by nearest neighbour; pixels it does not cover are 255."""
    from rasterio.warp import Resampling, reproject

    from swinls.prediction.rasters import open_raster

    out = np.full(shape, 255, dtype=np.uint8)
    with open_raster(labels.source) as src:
        if src.count != 1:
            raise InventoryError(labels.source, f"a label raster has one band, this one has {src.count}")
        if src.crs is None:
            raise InventoryError(labels.source, "has no CRS: it cannot be placed on a scene")
        values = src.read(1)
        nodata = src.nodata
        valid = np.isin(values, (0, 1)) | (values == nodata if nodata is not None else False)
        if not valid.all():
            bad = sorted({v.item() for v in np.unique(values[~valid])})[:5]
            raise InventoryError(labels.source, f"label values must be 0 or 1 (or its nodata), found {bad}")
        source = np.where(values == nodata, 255, values).astype(np.uint8) if nodata is not None else values.astype(np.uint8)
        reproject(source, out, src_transform=src.transform, src_crs=src.crs, src_nodata=255,
                  dst_transform=transform, dst_crs=crs, dst_nodata=255, resampling=Resampling.nearest)
    return out
