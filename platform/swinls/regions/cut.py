"""Scenes plus an inventory → a Landslide4Sense tree of GeoTIFF patches, split by spatial blocks,
which `swinls.shards.ingest` then turns into a region like any other.

Scenes are 14-band GeoTIFFs (bands found by description, or in the Landslide4Sense order), or one
Sentinel-2 product (STAC item, SAFE, per-band files; `swinls.products`) with an elevation raster,
its physical values mapped to Landslide4Sense units as the card's `input_units` say; read a window
at a time. The inventory is rasterised once per scene on its grid (an H×W uint8: 121 MB
for a whole Sentinel-2 tile). Pixels that are nodata in the scene, outside a label raster or
inside the `ignore` layer (areas not surveyed) are 255 in the masks, which training ignores.
"""

from __future__ import annotations

import contextlib
import logging
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from swinls.bands import BANDS
from swinls.patches.geotiff import write_geotiff
from swinls.patches.layout import SPLIT_DIRS
from swinls.prediction.errors import PredictionError
from swinls.prediction.rasters import band_indexes, list_scenes, nodata_pixels, open_raster
from swinls.products import ProductError, find_product, is_product, product_scene
from swinls.products.reader import Grid, ProductRows
from swinls.regions.inventory import (InventoryError, LabelRaster, Polygons, overlaps, polygons_on_grid,
                                      raster_on_grid, read_inventory)
from swinls.regions.split import SPLITS, Window, scene_windows, split_windows
from swinls.shards.schema import IGNORE
from swinls.units import landslide4sense_units

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SceneCutOptions:
    patch: int = 128  # the model's patch side, in pixels
    stride: int = 128
    block: int = 4  # windows per side of a spatial block that goes to one split
    fractions: tuple[float, float, float] = (0.7, 0.15, 0.15)
    seed: int = 0

    def __post_init__(self) -> None:
        if self.patch < 1 or not 1 <= self.stride <= self.patch or self.block < 1:
            raise ValueError(f"need patch ≥ 1, 1 ≤ stride ≤ patch and block ≥ 1; got patch {self.patch}, "
                             f"stride {self.stride}, block {self.block}")


@dataclass
class CutReport:
    scenes: list[str] = field(default_factory=list)
    windows: dict[str, int] = field(default_factory=dict)  # written per split
    dropped_at_split_borders: int = 0
    dropped_without_labels: int = 0


@dataclass
class _Scene:
    """A scene's grid and how to read its 14 bands: a GeoTIFF, or a Sentinel-2 product on its 10 m grid."""

    uri: str
    crs: str
    transform: object  # rasterio Affine
    shape: tuple[int, int]
    indexes: tuple[int, ...] = ()
    nodata: tuple[float | None, ...] = ()
    product: object = None  # a ProductSpec

    @contextlib.contextmanager
    def reader(self):
        """Yields read(row, col, size) → 14×size×size float32 in Landslide4Sense units (NaN: no data)."""
        from rasterio.windows import Window as RioWindow

        if self.product is not None:
            rows = ProductRows(self.product, Grid(self.crs, tuple(self.transform)[:6], *self.shape))
            try:
                yield lambda row, col, size: rows.read(row, row + size, (col, col + size))
            finally:
                rows.close()
            return
        with open_raster(self.uri) as dataset:
            def read(row: int, col: int, size: int) -> np.ndarray:
                raw = dataset.read(list(self.indexes), window=RioWindow(col, row, size, size)).astype(np.float32)
                raw[:, nodata_pixels(raw, self.nodata)] = np.nan
                return raw
            yield read


def _scene(uri: str) -> _Scene:
    with open_raster(uri) as dataset:
        if dataset.crs is None:
            raise InventoryError(uri, "the scene has no CRS: an inventory cannot be placed on it")
        indexes = band_indexes(tuple(dataset.descriptions), BANDS, uri)
        nodata = tuple(dataset.nodatavals[i - 1] for i in indexes)
        return _Scene(uri, dataset.crs.to_wkt(), dataset.transform, (dataset.height, dataset.width), indexes, nodata)


def _product(uri: str, elevation: str | None) -> _Scene:
    """A Sentinel-2 product's 14 bands, mapped to Landslide4Sense units as training data are."""
    from rasterio.transform import Affine

    try:
        spec, grid = product_scene(find_product(uri), BANDS, landslide4sense_units(), elevation)
    except ProductError as exc:
        raise InventoryError(exc.source, exc.reason) from None
    return _Scene(uri, grid.crs, Affine(*grid.transform), (grid.height, grid.width), product=spec)


def _scenes(scenes: str, elevation: str | None) -> list[_Scene]:
    if is_product(scenes):  # a STAC item, a SAFE folder or per-band files: one scene
        return [_product(scenes, elevation)]
    try:
        return [_scene(uri) for uri, _ in list_scenes(scenes)]
    except PredictionError as exc:
        raise InventoryError(scenes, str(exc).split(": ", 1)[-1]) from exc


def _labels_on(inventory, crs, transform, shape) -> np.ndarray:
    if isinstance(inventory, Polygons):
        return polygons_on_grid(inventory, crs, transform, shape).astype(np.uint8)
    return raster_on_grid(inventory, crs, transform, shape)


def cut_region(scenes: str, labels: str, out: str | Path, options: SceneCutOptions = SceneCutOptions(),
               ignore: str | None = None, elevation: str | None = None) -> CutReport:
    """Write `out/{TrainData,ValidData,TestData}/{img,mask}/` from the scenes and the inventory."""
    inventory = read_inventory(labels)
    ignored = read_inventory(ignore) if ignore else None
    if isinstance(ignored, LabelRaster):
        raise InventoryError(ignore, "the ignore layer must be polygons (areas not surveyed)")
    found = _scenes(scenes, elevation)
    report = CutReport()
    grids, masks = {}, {}
    for scene in found:
        crs, transform, shape = scene.crs, scene.transform, scene.shape
        if isinstance(inventory, Polygons) and not overlaps(inventory, crs, transform, shape):
            log.info("%s: the inventory does not reach this scene; it is left out", scene.uri)
            continue
        mask = _labels_on(inventory, crs, transform, shape)
        if ignored is not None and overlaps(ignored, crs, transform, shape):
            mask[polygons_on_grid(ignored, crs, transform, shape)] = IGNORE
        grids[scene.uri] = scene
        masks[scene.uri] = mask
    if not grids:
        raise InventoryError(labels, f"overlaps none of the {len(found)} scene(s) in {scenes}")
    names = {uri: Path(uri.rstrip("/").rsplit("/", 1)[-1]).stem for uri in grids}
    windows = [w for uri in grids for w in scene_windows(names[uri], *grids[uri].shape, options.patch, options.stride)]
    if not windows:
        raise InventoryError(scenes, f"no scene is at least {options.patch}×{options.patch} pixels")
    by_split = split_windows(windows, options.stride, options.block, options.fractions, options.seed)
    report.dropped_at_split_borders = len(windows) - sum(len(v) for v in by_split.values())
    out = Path(out)
    for split in SPLITS:
        for kind in ("img", "mask"):
            (out / SPLIT_DIRS[split] / kind).mkdir(parents=True, exist_ok=True)
    written = {s: 0 for s in SPLITS}
    for uri, scene in grids.items():
        mine = {s: [w for w in by_split[s] if w.scene == names[uri]] for s in SPLITS}
        with scene.reader() as read:
            for split, chosen in mine.items():
                for w in chosen:
                    written[split] += _write_window(read, w, masks[uri], scene.crs, scene.transform,
                                                    out / SPLIT_DIRS[split], report)
        report.scenes.append(uri)
    report.windows = written
    if not written["train"]:
        raise InventoryError(labels, "no training window has a labelled pixel")
    return report


def _write_window(read, w: Window, mask, crs, transform, folder: Path, report: CutReport) -> int:
    from rasterio.windows import Window as RioWindow
    from rasterio.windows import transform as window_transform

    raw = read(w.row, w.col, w.size)  # 14×h×w, NaN where the scene has no data
    labels = mask[w.row:w.row + w.size, w.col:w.col + w.size].copy()
    missing = ~np.isfinite(raw).all(axis=0)
    labels[missing] = IGNORE
    if (labels == IGNORE).all():
        report.dropped_without_labels += 1
        return 0
    # NaN: one nodata value for every band; ingest leaves these pixels out of the moments
    affine = window_transform(RioWindow(w.col, w.row, w.size, w.size), transform)
    write_geotiff(folder / "img" / f"image_{w.patch_id}.tif", np.moveaxis(raw, 0, -1), crs=crs, transform=affine,
                  nodata=float("nan") if missing.any() else None, band_names=BANDS)
    write_geotiff(folder / "mask" / f"mask_{w.patch_id}.tif", labels, crs=crs, transform=affine, nodata=IGNORE)
    return 1
