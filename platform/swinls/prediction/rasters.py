"""Scene GeoTIFFs: opening them (local or s3:// through s3fs), finding the model's bands by name
or by the Landslide4Sense order, and reading windows with reflection at the edges.

Bands are matched by their descriptions when a scene has them (B2 or B02, slope, DEM; any order,
extra bands ignored); a scene without descriptions must hold the 14 Landslide4Sense bands in
order. A pixel is nodata where any band the model reads holds that band's nodata value or is not
finite; the model sees it as the band mean (0 after normalisation) and the output marks it 255.
"""

from __future__ import annotations

import re
import warnings
from dataclasses import dataclass
from typing import Iterator

import numpy as np

from swinls import storage
from swinls.bands import BANDS
from swinls.prediction.errors import PredictionError
from swinls.prediction.windows import WindowGrid
from swinls.raster_io import open_dataset
from swinls.products import ProductError, find_product, product_scene
from swinls.products.reader import Grid, ProductRows, ProductSpec

SCENE_SUFFIXES = (".tif", ".tiff")
TRUTH_SUFFIX = "_mask"  # scene_3_mask.tif beside scene_3.tif: its labels (the synthetic layout)
OUTPUT_SUFFIXES = ("_prediction", "_probability")
_ALIASES = {"SLOPE": "slope", "DEM": "DEM", "ELEVATION": "DEM"}


def canonical_band(description: str | None) -> str | None:
    """A band description as a Landslide4Sense band name (B02 → B2, Slope → slope), or None."""
    if not description:
        return None
    text = description.strip().upper().replace(" ", "")
    match = re.fullmatch(r"B0?(\d{1,2})", text)
    if match:
        name = f"B{int(match.group(1))}"
        return name if name in BANDS else None
    return _ALIASES.get(text)


def band_indexes(descriptions: tuple[str | None, ...], needed: tuple[str, ...], source: str) -> tuple[int, ...]:
    """1-based raster band numbers of the `needed` bands, in their order."""
    names = [canonical_band(d) for d in descriptions]
    if any(names):
        repeated = sorted({n for n in names if n and names.count(n) > 1})
        if repeated:
            raise PredictionError(source, f"band descriptions name {', '.join(repeated)} more than once")
        missing = [band for band in needed if band not in names]
        if missing:
            found = ", ".join(n for n in names if n)
            raise PredictionError(source, f"the model needs band {', '.join(missing)}, which the scene lacks "
                                          f"(its bands, by description: {found})")
        return tuple(names.index(band) + 1 for band in needed)
    if len(descriptions) == len(BANDS):
        return tuple(BANDS.index(band) + 1 for band in needed)
    raise PredictionError(source, f"{len(descriptions)} bands without descriptions: give the {len(BANDS)} "
                                  f"Landslide4Sense bands in order ({', '.join(BANDS)}) or describe each band by name")


def open_raster(uri: str):
    """A rasterio dataset for a local path or an s3:// object (ranged reads through s3fs)."""
    return open_dataset(uri, lambda reason: PredictionError(uri, reason))


@dataclass(frozen=True)
class SceneInfo:
    uri: str
    name: str  # file stem: names the outputs
    height: int
    width: int
    crs: str | None  # WKT
    transform: tuple[float, ...]
    band_indexes: tuple[int, ...]  # the model's input bands, in order
    nodata: tuple[float | None, ...]  # per input band
    truth: str | None = None  # labels beside the scene, for metrics
    datetime: str | None = None  # acquisition (ISO 8601, UTC) when the input says it: the GeoTIFF's TIFFTAG_DATETIME
    product: "ProductSpec | None" = None  # a Sentinel-2 product read band by band (uri: the item, SAFE or folder)

    @property
    def pixels(self) -> int:
        return self.height * self.width


def scene_name(uri: str) -> str:
    base = uri.rstrip("/").rsplit("/", 1)[-1]
    return base.rsplit(".", 1)[0]


def tiff_datetime(stamp: str | None) -> str | None:
    """TIFF's "YYYY:MM:DD HH:MM:SS" as ISO 8601 in UTC; None when absent or not in that form."""
    import datetime as dt

    try:
        return dt.datetime.strptime(stamp or "", "%Y:%m:%d %H:%M:%S").replace(tzinfo=dt.timezone.utc).isoformat()
    except ValueError:
        return None


def inspect_scene(uri: str, needed: tuple[str, ...], truth: str | None = None) -> SceneInfo:
    """Open the header and check everything prediction relies on; raises PredictionError."""
    with open_raster(uri) as dataset:
        if not all(np.issubdtype(np.dtype(d), np.number) for d in dataset.dtypes):
            raise PredictionError(uri, f"bands of type {', '.join(sorted(set(dataset.dtypes)))} are not numeric")
        indexes = band_indexes(tuple(dataset.descriptions), needed, uri)
        nodata = tuple(dataset.nodatavals[i - 1] for i in indexes)
        crs = dataset.crs.to_wkt() if dataset.crs else None
        info = SceneInfo(uri, scene_name(uri), dataset.height, dataset.width, crs, tuple(dataset.transform)[:6],
                         indexes, nodata, truth, tiff_datetime(dataset.tags().get("TIFFTAG_DATETIME")))
    if crs is None:
        warnings.warn(f"{uri}: the scene has no CRS, so its prediction has none either", stacklevel=2)
    if truth is not None:
        with open_raster(truth) as labels:
            if (labels.height, labels.width) != (info.height, info.width) or labels.count != 1:
                raise PredictionError(truth, f"labels are {labels.count} band(s) of {labels.height}×{labels.width}, "
                                             f"expected one band of {info.height}×{info.width} like {uri}")
    return info


def inspect_product(uri: str, needed: tuple[str, ...], units, elevation: str | None = None) -> SceneInfo:
    """A Sentinel-2 product (STAC item, SAFE, band files) as a scene on its 10 m grid; raises
    PredictionError. `units`: the card's input units (None on cards from before them)."""
    if units is None:
        raise PredictionError(uri, "the model's card does not say how physical values map to its inputs "
                                   "(published before input units were recorded): give it a pre-stacked scene")
    try:
        product = find_product(uri)
        spec, grid = product_scene(product, needed, units, elevation)
    except ProductError as exc:
        raise PredictionError(exc.source, exc.reason) from None
    return SceneInfo(uri, product.id, grid.height, grid.width, grid.crs, grid.transform,
                     tuple(range(1, len(needed) + 1)), (None,) * len(needed), None, product.datetime, spec)


def _labels_for(scene: str, present: set[str] | None) -> str | None:
    stem = scene.rsplit(".", 1)[0]
    for suffix in SCENE_SUFFIXES:
        option = f"{stem}{TRUTH_SUFFIX}{suffix}"
        if (option in present) if present is not None else storage.exists(option):
            return option
    return None


def list_scenes(uri: str) -> list[tuple[str, str | None]]:
    """(scene, its labels or None) for a GeoTIFF, or for every GeoTIFF in a folder or prefix
    except labels (`*_mask.tif`) and earlier outputs (`*_prediction.tif`, `*_probability.tif`)."""
    fs, root = storage.filesystem(uri)
    if uri.lower().endswith(SCENE_SUFFIXES):
        scene = storage.to_uri(fs, root)
        return [(scene, _labels_for(scene, None))]
    if not fs.isdir(root):
        raise PredictionError(uri, "not a GeoTIFF, a folder of GeoTIFFs, or a Landslide4Sense split (a folder with img/)")
    found = sorted(storage.to_uri(fs, p) for p in fs.find(root)
                   if p.lower().endswith(SCENE_SUFFIXES) and not p.rsplit("/", 1)[-1].startswith("."))
    present = set(found)
    scenes = [(f, _labels_for(f, present)) for f in found
              if not f.rsplit(".", 1)[0].endswith((TRUTH_SUFFIX, *OUTPUT_SUFFIXES))]
    if not scenes:
        raise PredictionError(uri, "holds no GeoTIFF scene (.tif, .tiff)")
    names = [scene_name(s) for s, _ in scenes]
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        raise PredictionError(uri, f"more than one scene is named {', '.join(repeated)} (in different folders); "
                                   "their outputs would collide")
    return scenes


def _as_slice(index: np.ndarray) -> slice | np.ndarray:
    """A run of consecutive indices as a slice (a view, no copy); anything else as it is."""
    if len(index) and (np.diff(index) == 1).all():
        return slice(int(index[0]), int(index[-1]) + 1)
    return index


def nodata_pixels(raw: np.ndarray, nodata: tuple[float | None, ...]) -> np.ndarray:
    """K×… raw bands → … bool: any band at its nodata value or not finite."""
    missing = ~np.isfinite(raw).all(axis=0)
    for band, value in enumerate(nodata):
        if value is not None and np.isfinite(value):
            missing |= raw[band] == value
    return missing


class SceneRows:
    """The model's bands of one scene, full width, for the rows the current strip needs.

    Rows are read in whole blocks of the file as strips move down and kept until no strip needs
    them: each compressed tile is decoded once, although a strip of windows overlaps the next
    and a file's tiles rarely line up with either. (GDAL's own block cache does not help here:
    a windowed read of a band subset from a pixel-interleaved GeoTIFF decodes its tiles again.)
    Memory follows the scene's width, never its height."""

    def __init__(self, info: SceneInfo) -> None:
        self.info = info
        self.product = None
        if info.product is not None:
            grid = Grid(info.crs, info.transform, info.height, info.width)
            self.product = ProductRows(info.product, grid)
            self.block_rows = ProductRows.block_rows
        else:
            self._context = open_raster(info.uri)
            self.dataset = self._context.__enter__()
            self.block_rows = max(1, int(self.dataset.block_shapes[0][0]))
        self.start = 0
        self.rows = np.zeros((len(info.band_indexes), 0, info.width), np.float32)

    def _read(self, first: int, last: int) -> np.ndarray:
        from rasterio.windows import Window

        if self.product is not None:
            try:
                return self.product.read(first, last)
            except ProductError as exc:
                raise PredictionError(exc.source, exc.reason) from exc
        try:
            data = self.dataset.read(list(self.info.band_indexes), window=Window(0, first, self.info.width, last - first))
        except Exception as exc:  # noqa: BLE001 - a damaged tile surfaces here, mid-file
            raise PredictionError(self.info.uri, f"cannot read rows {first}–{last - 1} ({exc})") from exc
        return data.astype(np.float32, copy=False)

    def get(self, first: int, last: int) -> np.ndarray:
        """Rows [first, last) of the needed bands, K×rows×W."""
        end = self.start + self.rows.shape[1]
        if first < self.start or last > end:
            if self.start <= first < end:  # keep what the next strips share with this one
                kept, read_from = self.rows[:, first - self.start:], end
                self.start = first
            else:
                kept, read_from = self.rows[:, :0], first - first % self.block_rows
                self.start = read_from
            read_to = min(self.info.height, -(-max(last, read_from + 1) // self.block_rows) * self.block_rows)
            self.rows = np.concatenate([kept, self._read(read_from, read_to)], axis=1)
        return self.rows[:, first - self.start:last - self.start]

    def windows(self, grid: WindowGrid, row: int, cols: list[int]) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """(raw K×S×S float32, nodata S×S bool) for windows `cols` of strip `row`: views where a
        window lies inside the scene, gathered by reflection where it sticks out."""
        rows = grid.source_rows(row)
        first = int(rows.min())
        block = self.get(first, int(rows.max()) + 1)
        missing = nodata_pixels(block, self.info.nodata)  # once per strip, not per overlapping window
        row_index = _as_slice(rows - first)
        for col in cols:
            col_index = _as_slice(grid.source_cols(col))
            if isinstance(row_index, slice) and isinstance(col_index, slice):
                yield block[:, row_index, col_index], missing[row_index, col_index]
            else:
                index = np.ix_(np.r_[row_index], np.r_[col_index])
                yield block[(slice(None), *index)], missing[index]

    def close(self) -> None:
        if self.product is not None:
            self.product.close()
        else:
            self._context.__exit__(None, None, None)
        self.rows = self.rows[:, :0]
