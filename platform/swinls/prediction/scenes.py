"""Georeferenced scenes: windows read from GeoTIFFs, margins blended back into a mask GeoTIFF
(and optionally the landslide probability) with the scene's CRS, transform and size.

Windows are numbered across all scenes, scene by scene in raster order, and cut into chunks of
`batch_size`; the reader reads each strip's windows of a chunk with one windowed read. The
writer receives windows in that order and writes each strip's finished rows at once, so memory
follows the scene's width, not its area.
"""

from __future__ import annotations

import contextlib
import itertools
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from swinls.metrics import IGNORE, Confusion
from swinls.prediction.cog import BLOCK
from swinls.prediction.model import Decision, Normalizer, probability
from swinls.prediction.outputs import TAG
from swinls.prediction.rasters import SceneInfo, SceneRows, open_raster
from swinls.raster_io import GDAL_CACHE_MB
from swinls.prediction.windows import StripBlender, WindowGrid

MASK_NODATA = 255
PROBABILITY_NODATA = float("nan")


@dataclass
class SceneWindows:
    """Picklable reader: unit number → normalised windows with their scene, strip and column.

    A unit is a whole number of model batches spanning at least two strips of the widest scene,
    so that a Ray task decodes each strip's rows once; in this process the scenes' rows stay
    open across units (`close` when done)."""

    scenes: list[SceneInfo]
    grids: list[WindowGrid]
    normalizer: Normalizer
    batch_size: int
    starts: list[int] = field(init=False)  # first global window number of each scene
    unit: int = field(init=False)  # windows per read unit

    def __post_init__(self) -> None:
        self.starts = list(itertools.accumulate((len(g) for g in self.grids), initial=0))
        widest = max(g.cols for g in self.grids)
        self.unit = self.batch_size * max(1, -(-2 * widest // self.batch_size))
        self._rows: dict[int, SceneRows] = {}

    def __getstate__(self) -> dict:
        return {k: v for k, v in self.__dict__.items() if k != "_rows"}

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state, _rows={})

    @property
    def total(self) -> int:
        return self.starts[-1]

    @property
    def chunks(self) -> int:
        return -(-self.total // self.unit)

    def refs(self, chunk: int) -> list[tuple[int, int, int]]:
        """(scene, strip, column) of each window in the unit."""
        out = []
        for number in range(chunk * self.unit, min((chunk + 1) * self.unit, self.total)):
            scene = int(np.searchsorted(self.starts, number, side="right")) - 1
            row, col = divmod(number - self.starts[scene], self.grids[scene].cols)
            out.append((scene, row, col))
        return out

    def _scene_rows(self, scene: int) -> SceneRows:
        for earlier in [s for s in self._rows if s < scene]:  # scenes come in order: done with these
            self._rows.pop(earlier).close()
        if scene not in self._rows:
            self._rows[scene] = SceneRows(self.scenes[scene])
        return self._rows[scene]

    def __call__(self, chunk: int) -> dict[str, np.ndarray]:
        refs = self.refs(chunk)
        raws, nodata = [], []
        for (scene, row), group in itertools.groupby(refs, key=lambda ref: ref[:2]):
            rows = self._scene_rows(scene)
            for raw, missing in rows.windows(self.grids[scene], row, [c for _, _, c in group]):
                raws.append(raw)
                nodata.append(missing)
        missing = np.stack(nodata)
        image = np.where(missing[:, None], np.float32(0), self.normalizer(np.stack(raws)))
        ref = np.array(refs, np.int64).reshape(-1, 3)
        return {"image": image, "nodata": missing, "scene": ref[:, 0], "row": ref[:, 1], "col": ref[:, 2]}

    def close(self) -> None:
        while self._rows:
            self._rows.popitem()[1].close()


class SceneWriter:
    """Rows of one scene's margins → a uint8 mask GeoTIFF (and a float32 probability one);
    counts against the scene's labels when it has them."""

    def __init__(self, info: SceneInfo, mask_path: Path, probability_path: Path | None, decision: Decision) -> None:
        import rasterio
        from rasterio.transform import Affine

        self.info, self.decision = info, decision
        self.confusion = Confusion() if info.truth else None
        self._stack = contextlib.ExitStack()
        tiled = {"tiled": True, "blockxsize": BLOCK, "blockysize": BLOCK} if min(info.height, info.width) >= BLOCK else {}
        # BIGTIFF=IF_SAFER: a classic TIFF stops at 4 GB, which a float32 probability of a mosaic passes
        # (GDAL's default, IF_NEEDED, cannot tell for a compressed file and fails when it gets there)
        profile = {"driver": "GTiff", "height": info.height, "width": info.width, "count": 1, "crs": info.crs,
                   "transform": Affine(*info.transform), "compress": "deflate", "BIGTIFF": "IF_SAFER", **tiled}
        try:
            self._stack.enter_context(rasterio.Env(GDAL_CACHEMAX=GDAL_CACHE_MB))
            self.mask = self._stack.enter_context(rasterio.open(mask_path, "w", dtype="uint8", nodata=MASK_NODATA,
                                                                predictor=2, **profile))
            self.mask.set_band_description(1, "landslide")
            self.mask.update_tags(**{TAG: "mask"})  # what lets --overwrite know the file as a prediction
            self.probability = None
            if probability_path is not None:
                self.probability = self._stack.enter_context(rasterio.open(  # noisy floats: a fast level packs as well
                    probability_path, "w", dtype="float32", nodata=PROBABILITY_NODATA, predictor=3, zlevel=1, **profile))
                self.probability.set_band_description(1, "P(landslide)")
                self.probability.update_tags(**{TAG: "probability"})
            self.truth = self._stack.enter_context(open_raster(info.truth)) if info.truth else None
        except BaseException:
            self._stack.close()
            raise

    def write_rows(self, first: int, margin: np.ndarray, nodata: np.ndarray) -> None:
        from rasterio.windows import Window

        window = Window(0, first, self.info.width, margin.shape[0])
        mask = self.decision(margin)
        mask[nodata] = MASK_NODATA
        self.mask.write(mask[None], window=window)
        if self.probability is not None:
            self.probability.write(np.where(nodata, np.float32(PROBABILITY_NODATA), probability(margin))[None],
                                   window=window)
        if self.truth is not None:
            truth = self.truth.read(1, window=window).astype(np.int64)
            truth[nodata] = IGNORE
            self.confusion.add(torch.from_numpy(mask == 1), torch.from_numpy(truth))

    def close(self) -> None:
        self._stack.close()


class SceneAssembly:
    """The sink: windows of every scene, in order, into their writers. `outputs(info)` gives the
    (mask path, probability path or None) of a scene; `done(info, writer)` is told when it is finished."""

    def __init__(self, reader: SceneWindows, decision: Decision, outputs, done) -> None:
        self.reader, self.decision, self.outputs, self.done = reader, decision, outputs, done
        self.current: int | None = None
        self.finished = 0

    def _start(self, scene: int) -> None:
        info = self.reader.scenes[scene]
        self.writer = SceneWriter(info, *self.outputs(info), self.decision)
        self.blender = StripBlender(self.reader.grids[scene], self.writer.write_rows)
        self.current = scene

    def _finish(self) -> None:
        self.blender.close()
        self.writer.close()
        self.done(self.reader.scenes[self.current], self.writer)
        self.finished += 1
        self.current = None

    def accept(self, batch: dict[str, np.ndarray], margins: np.ndarray) -> None:
        for i, scene in enumerate(batch["scene"]):
            if scene != self.current:
                if self.current is not None:
                    self._finish()
                self._start(int(scene))
            self.blender.add(int(batch["row"][i]), int(batch["col"][i]), margins[i], batch["nodata"][i])

    def close(self) -> None:
        if self.current is not None:
            self._finish()
        if self.finished != len(self.reader.scenes):
            raise RuntimeError(f"{self.finished} of {len(self.reader.scenes)} scenes were assembled")

    def abort(self) -> None:
        if self.current is not None:
            self.writer.close()
