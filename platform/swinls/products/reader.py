"""A product read as one scene on its 10 m grid: each band the model needs is a WarpedVRT of its
own file onto that grid (20 m and 60 m bands resampled bilinearly, window by window, so memory
follows the window and not the tile), its digital numbers turned into reflectance by the
product's scale and offset, the elevation raster reprojected (any CRS) into DEM and slope, and
every band mapped to the model's input units (`swinls.units`)."""

from __future__ import annotations

import contextlib
from dataclasses import dataclass

import numpy as np

from swinls.products.discover import BandFile, Product, ProductError, convention
from swinls.products.names import SENTINEL2, TERRAIN
from swinls.raster_io import open_dataset
from swinls.units import InputUnits

GRID_METRES = 10.0  # Landslide4Sense resamples every band to Sentinel-2's 10 m grid
ROWS_PER_READ = 256


@dataclass(frozen=True)
class Grid:
    crs: str  # WKT
    transform: tuple[float, ...]
    height: int
    width: int


@dataclass(frozen=True)
class ProductSpec:
    """What a worker needs to read a product (picklable): the files of the model's bands in its
    input order, the elevation raster, and physical → input gain and offset per band."""

    source: str
    bands: tuple[str, ...]
    files: tuple[tuple[str, BandFile], ...]  # optical bands, scale resolved
    elevation: str | None
    gain: tuple[float, ...]
    offset: tuple[float, ...]


def open_file(uri: str, source: str):
    """A raster of the product (local or s3:// through s3fs), errors naming the product and file."""
    return open_dataset(uri, lambda reason: ProductError(source, f"{uri}: {reason}"))


def _resolved(file: BandFile, dataset) -> BandFile:
    """A band file with its scale decided: the product's, else the file's own, else by its type."""
    if file.scale is not None:
        return file
    scale, offset = float(dataset.scales[0]), float(dataset.offsets[0])
    if (scale, offset) == (1.0, 0.0) and np.issubdtype(np.dtype(dataset.dtypes[0]), np.integer):
        scale, offset = convention()
    nodata = dataset.nodatavals[0]
    return BandFile(file.href, scale, offset, 0.0 if nodata is None else float(nodata))


def _check_band(band: str, dataset, href: str, source: str) -> None:
    if dataset.crs is None:
        raise ProductError(source, f"{href} (band {band}) has no CRS")
    if not dataset.crs.is_projected:
        raise ProductError(source, f"{href} (band {band}) is in a geographic CRS; Sentinel-2 bands come on a "
                                   "projected (UTM) grid in metres")
    metres = abs(dataset.transform.a)
    native = SENTINEL2[band][1]
    if not any(abs(metres - expected) < 1e-6 * expected for expected in {GRID_METRES, native}):
        raise ProductError(source, f"{href}: band {band} is at {metres:g} m; Sentinel-2 gives it at {native} m "
                                   f"(or resampled to {GRID_METRES:g} m)")


def product_scene(product: Product, needed: tuple[str, ...], units: InputUnits, elevation: str | None = None
                  ) -> tuple[ProductSpec, Grid]:
    """Check the headers of the files the model needs (only those) and lay the 10 m grid."""
    from rasterio.transform import Affine

    files = product.files_for(needed)
    if not files:
        raise ProductError(product.source, f"the model reads no Sentinel-2 band ({', '.join(needed)})")
    elevation = elevation or product.elevation
    terrain = [b for b in needed if b in TERRAIN]
    if terrain and elevation is None:
        raise ProductError(product.source, f"the model needs {' and '.join(terrain)}: give an elevation raster "
                                           "(--elevation, or a 'dem' asset in the STAC item)")
    resolved, grid = [], None
    for band, file in files.items():
        with open_file(file.href, product.source) as dataset:
            _check_band(band, dataset, file.href, product.source)
            bounds, crs = dataset.bounds, dataset.crs
            resolved.append((band, _resolved(file, dataset)))
        if grid is None:
            width = round((bounds.right - bounds.left) / GRID_METRES)
            height = round((bounds.top - bounds.bottom) / GRID_METRES)
            grid = Grid(crs.to_wkt(), tuple(Affine(GRID_METRES, 0, bounds.left, 0, -GRID_METRES, bounds.top))[:6],
                        height, width)
            first, first_crs, first_bounds = band, crs, bounds
        elif crs != first_crs or max(abs(a - b) for a, b in zip(bounds, first_bounds)) > 60:
            raise ProductError(product.source, f"{file.href}: band {band} lies on another grid than band {first} "
                                               f"({crs.to_string()} {tuple(bounds)} against {tuple(first_bounds)})")
    if terrain:
        with open_file(elevation, product.source) as dem:
            if dem.crs is None:
                raise ProductError(product.source, f"{elevation}: the elevation raster has no CRS")
    gain, offset = units.affine(needed, product.source)
    return ProductSpec(product.source, needed, tuple(resolved), elevation if terrain else None,
                       tuple(map(float, gain)), tuple(map(float, offset))), grid


def slope_degrees(dem: np.ndarray, pixel_metres: float) -> np.ndarray:
    dz_dy, dz_dx = np.gradient(dem, pixel_metres)
    return np.degrees(np.arctan(np.hypot(dz_dx, dz_dy)))


class ProductRows:
    """Rows [first, last) of the model's bands on the grid, in its input units (NaN: no data)."""

    block_rows = ROWS_PER_READ

    def __init__(self, spec: ProductSpec, grid: Grid) -> None:
        from rasterio.crs import CRS
        from rasterio.enums import Resampling
        from rasterio.transform import Affine
        from rasterio.vrt import WarpedVRT

        self.spec, self.grid = spec, grid
        self._stack = contextlib.ExitStack()
        target = {"crs": CRS.from_wkt(grid.crs), "transform": Affine(*grid.transform),
                  "width": grid.width, "height": grid.height, "resampling": Resampling.bilinear}
        try:
            self.bands = {}
            for band, file in spec.files:
                dataset = self._stack.enter_context(open_file(file.href, spec.source))
                self.bands[band] = (self._stack.enter_context(WarpedVRT(dataset, src_nodata=file.nodata,
                                                                        nodata=file.nodata, **target)), file)
            self.dem = None
            if spec.elevation:
                dataset = self._stack.enter_context(open_file(spec.elevation, spec.source))
                nodata = dataset.nodatavals[0]
                self.dem = (self._stack.enter_context(WarpedVRT(dataset, src_nodata=nodata, nodata=nodata, **target)),
                            nodata)
        except BaseException:
            self._stack.close()
            raise

    def reflectance(self, band: str, window, out_shape=None) -> np.ndarray:
        from rasterio.enums import Resampling

        vrt, file = self.bands[band]
        try:
            dn = vrt.read(1, window=window, out_dtype="float32", out_shape=out_shape, resampling=Resampling.average)
        except Exception as exc:  # noqa: BLE001 - a damaged tile surfaces here, mid-file
            raise ProductError(self.spec.source, f"{file.href}: cannot read band {band} ({exc})") from exc
        missing = ~np.isfinite(dn) | ((dn == file.nodata) if file.nodata is not None else False)
        return np.where(missing, np.float32(np.nan), dn * np.float32(file.scale) + np.float32(file.offset))

    def _terrain(self, rows: tuple[int, int], cols: tuple[int, int]) -> dict[str, np.ndarray]:
        from rasterio.windows import Window

        vrt, nodata = self.dem
        # a pixel beyond each side for the gradient, where the grid has one
        top, bottom = max(0, rows[0] - 1), min(self.grid.height, rows[1] + 1)
        left, right = max(0, cols[0] - 1), min(self.grid.width, cols[1] + 1)
        dem = vrt.read(1, window=Window(left, top, right - left, bottom - top), out_dtype="float32")
        if nodata is not None:
            dem[dem == nodata] = np.nan
        slope = slope_degrees(dem, abs(self.grid.transform[0]))
        inner = (slice(rows[0] - top, rows[1] - top), slice(cols[0] - left, cols[1] - left))
        return {"DEM": dem[inner], "slope": slope[inner]}

    def read(self, first: int, last: int, cols: tuple[int, int] | None = None) -> np.ndarray:
        """K×(last−first)×width float32 of rows [first, last) (and columns `cols`, all by default),
        physical values mapped to the model's inputs."""
        from rasterio.windows import Window

        cols = cols or (0, self.grid.width)
        window = Window(cols[0], first, cols[1] - cols[0], last - first)
        terrain = self._terrain((first, last), cols) if self.dem else {}
        out = np.empty((len(self.spec.bands), last - first, cols[1] - cols[0]), np.float32)
        for k, band in enumerate(self.spec.bands):
            physical = terrain[band] if band in TERRAIN else self.reflectance(band, window)
            np.multiply(physical, np.float32(self.spec.gain[k]), out=out[k])
            out[k] += np.float32(self.spec.offset[k])
        return out

    def close(self) -> None:
        self._stack.close()
