"""Scene GeoTIFFs: opening them (local or s3:// through s3fs), finding the model's bands by name
or by the Landslide4Sense order, and reading windows with reflection at the edges.

Bands are matched by their descriptions when a scene has them (B2 or B02, slope, DEM; any order,
extra bands ignored); a scene without descriptions must hold the 14 Landslide4Sense bands in
order. A pixel is nodata where any band the model reads holds that band's nodata value or is not
finite; the model sees it as the band mean (0 after normalisation) and the output marks it 255.
"""

from __future__ import annotations

import contextlib
import re
import warnings
from dataclasses import dataclass
from typing import Iterator

import numpy as np

from swinls import storage
from swinls.bands import BANDS
from swinls.prediction.errors import PredictionError
from swinls.prediction.windows import WindowGrid

SCENE_SUFFIXES = (".tif", ".tiff")
TRUTH_SUFFIX = "_mask"  # scene_3_mask.tif beside scene_3.tif: its labels (the synthetic layout)
OUTPUT_SUFFIXES = ("_prediction", "_probability")
GDAL_CACHE_MB = 64  # GDAL's default is 5 % of RAM, which would let memory grow with the scene
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


@contextlib.contextmanager
def open_raster(uri: str):
    """A rasterio dataset for a local path or an s3:// object (ranged reads through s3fs)."""
    import rasterio
    from rasterio.errors import RasterioIOError

    fs, path = storage.filesystem(uri)
    kwargs = {"opener": fs} if storage.is_s3(uri) else {}
    if not fs.exists(path):
        raise PredictionError(uri, "no such file or object")
    with rasterio.Env(GDAL_CACHEMAX=GDAL_CACHE_MB):
        try:
            dataset = rasterio.open(path, **kwargs)
        except RasterioIOError as exc:
            raise PredictionError(uri, "not a readable raster (corrupt, truncated or not a GeoTIFF)") from exc
        with dataset:
            yield dataset


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

    @property
    def pixels(self) -> int:
        return self.height * self.width


def scene_name(uri: str) -> str:
    base = uri.rstrip("/").rsplit("/", 1)[-1]
    return base.rsplit(".", 1)[0]


def inspect_scene(uri: str, needed: tuple[str, ...], truth: str | None = None) -> SceneInfo:
    """Open the header and check everything prediction relies on; raises PredictionError."""
    with open_raster(uri) as dataset:
        if not all(np.issubdtype(np.dtype(d), np.number) for d in dataset.dtypes):
            raise PredictionError(uri, f"bands of type {', '.join(sorted(set(dataset.dtypes)))} are not numeric")
        indexes = band_indexes(tuple(dataset.descriptions), needed, uri)
        nodata = tuple(dataset.nodatavals[i - 1] for i in indexes)
        crs = dataset.crs.to_wkt() if dataset.crs else None
        info = SceneInfo(uri, scene_name(uri), dataset.height, dataset.width, crs, tuple(dataset.transform)[:6],
                         indexes, nodata, truth)
    if crs is None:
        warnings.warn(f"{uri}: the scene has no CRS, so its prediction has none either", stacklevel=2)
    if truth is not None:
        with open_raster(truth) as labels:
            if (labels.height, labels.width) != (info.height, info.width) or labels.count != 1:
                raise PredictionError(truth, f"labels are {labels.count} band(s) of {labels.height}×{labels.width}, "
                                             f"expected one band of {info.height}×{info.width} like {uri}")
    return info


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


def nodata_pixels(raw: np.ndarray, nodata: tuple[float | None, ...]) -> np.ndarray:
    """K×… raw bands → … bool: any band at its nodata value or not finite."""
    missing = ~np.isfinite(raw).all(axis=0)
    for band, value in enumerate(nodata):
        if value is not None and np.isfinite(value):
            missing |= raw[band] == value
    return missing


def read_strip_windows(dataset, info: SceneInfo, grid: WindowGrid, row: int, cols: list[int]) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """(raw K×S×S float32, nodata S×S bool) for windows `cols` of strip `row`, from one read of
    their bounding box."""
    from rasterio.windows import Window

    rows = grid.source_rows(row)
    col_index = [grid.source_cols(c) for c in cols]
    r0, r1 = int(rows.min()), int(rows.max()) + 1
    c0 = int(min(c.min() for c in col_index))
    c1 = int(max(c.max() for c in col_index)) + 1
    try:
        block = dataset.read(list(info.band_indexes), window=Window(c0, r0, c1 - c0, r1 - r0))
    except Exception as exc:  # noqa: BLE001 - a damaged tile surfaces here, mid-file
        raise PredictionError(info.uri, f"cannot read rows {r0}–{r1 - 1}, columns {c0}–{c1 - 1} ({exc})") from exc
    block = block.astype(np.float32, copy=False)
    for index in col_index:
        raw = block[:, (rows - r0)[:, None], (index - c0)[None, :]]
        yield raw, nodata_pixels(raw, info.nodata)
