"""Scene prediction: windows/s against a bare forward loop over the same windows, and peak
memory as the scene grows.

    python benchmarks/predict.py [--size nano] [--rounds 3] [--batch 16] [--use-gpu] [--model URI]

1. Throughput: `swinls.prediction` on a 4× scene (2048², windows read from the GeoTIFF, blended,
   the mask and probability written) against a bare loop that only runs the model over the same
   windows, already cut, normalised and in memory — same model, same batch size, same process,
   alternated `--rounds` times (the ratio of each pair, and their range).
   Each round also times what makes the outputs a GIS's (`gis_seconds`): the COG copy of the mask
   (and probability) and a folder's quick-look, as a share of the scene prediction's wall time.
2. Memory: peak RSS of a fresh process predicting scenes of 1×, 4× and 16× the area of the
   1024² synthetic scene (16× = 4096², about 16.8 Mpx), each in its own process.
3. Sentinel-2 products (`--products`): a synthetic scene written as an L2A product (per-band
   files at 10, 20 and 60 m, DN; an elevation raster in EPSG:4326; a STAC item) against the same
   values pre-stacked as a 14-band GeoTIFF, predicted by a model of the 13 L2A bands: windows/s
   of the product over the stacked scene (resampling, DN scaling and slope included), alternated
   `--rounds` times on a 4× scene (2040²); then the product's peak RSS at 1×, 4× and 16× (4080²).

Without --model, an untrained SwinLS of --size is published to a temporary folder (the speed
and memory of prediction do not depend on what the weights learned).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

BASE = 1024


def publish_untrained(root: Path, size: str, band_set: str = "RGB") -> str:
    from swinls.bands import OFFICIAL_STATS, channel_stats, resolve_band_set
    from swinls.checkpoints import RunStore
    from swinls.config import to_dict
    from swinls.experiment_config import load_experiment
    from swinls.models import build_model
    from swinls.published import publish_best

    overrides = [f"model.size={size}", "model.drop_path=0.0"]
    if size == "nano":
        overrides.insert(0, "recipe=tiny")
    config = load_experiment(None, overrides)
    bands = resolve_band_set(band_set)
    mean, std = channel_stats(bands, OFFICIAL_STATS)
    normalization = {"band_set": bands.name, "inputs": list(bands.inputs), "channels": list(bands.channels),
                     "mean": mean.tolist(), "std": std.tolist(), "source": "official", "pca": None}
    model = build_model(config.model, bands.channels)
    history = [{"phase": "stage1", "epoch": 1}]
    checkpoint = RunStore(str(root / "run")).save(
        {"model": model.state_dict(), "config": to_dict(config), "normalization": normalization,
         "channels": list(bands.channels), "history": history}, phase="stage1", epoch=1, phase_done=True, history=history)
    publish_best(str(root / "best"), checkpoint, experiment="benchmark", trial="untrained",
                 objective={"metric": "none", "scope": "last", "mode": "max", "value": 0.0})
    return str(root / "best")


def write_scenes(root: Path) -> dict[int, Path]:
    """The 1024² synthetic scene, and 2×2 and 4×4 mirrored tilings of it, written strip by strip."""
    import rasterio
    from rasterio.windows import Window

    from swinls.synthetic import SyntheticSpec, write_synthetic

    write_synthetic(root / "raw", SyntheticSpec(seed=0, regions=("steep-forest",), scene_size=BASE))
    base = root / "raw" / "steep-forest" / "scenes" / "scene_0.tif"
    with rasterio.open(base) as dataset:
        tile, profile, descriptions = dataset.read(), dataset.profile, dataset.descriptions
    scenes = {1: base}
    for factor in (2, 4):
        path = root / f"scene_{factor}x{factor}.tif"
        profile.update(height=BASE * factor, width=BASE * factor)
        row = np.concatenate([tile if i % 2 == 0 else tile[:, :, ::-1] for i in range(factor)], axis=2)
        with rasterio.open(path, "w", **profile) as out:
            for i, name in enumerate(descriptions, start=1):
                out.set_band_description(i, name)
            for r in range(factor):
                out.write(row if r % 2 == 0 else row[:, ::-1, :], window=Window(0, r * BASE, BASE * factor, BASE))
        scenes[factor * factor] = path
    return scenes


def bare_windows(scene: Path, loaded, overlap: int) -> torch.Tensor:
    import rasterio

    from swinls.bands import BANDS
    from swinls.prediction.model import PATCH_SIZE
    from swinls.prediction.windows import WindowGrid

    with rasterio.open(scene) as dataset:
        raw = dataset.read([BANDS.index(b) + 1 for b in loaded.normalizer.inputs]).astype(np.float32)
    grid = WindowGrid(raw.shape[1], raw.shape[2], PATCH_SIZE, overlap)
    pad = PATCH_SIZE
    padded = np.pad(raw, ((0, 0), (pad, pad), (pad, pad)), mode="reflect")
    windows = [padded[:, pad + y:pad + y + PATCH_SIZE, pad + x:pad + x + PATCH_SIZE]
               for y, x in (grid.origin(r, c) for r in range(grid.rows) for c in range(grid.cols))]
    return torch.from_numpy(loaded.normalizer(np.stack(windows)))


@torch.inference_mode()
def bare_rate(model, windows: torch.Tensor, batch: int, device) -> float:
    from swinls.accel import autocast

    start = time.perf_counter()
    for i in range(0, len(windows), batch):
        with autocast(device, device.type == "cuda"):
            model(windows[i:i + batch].to(device, non_blocking=True))["logits"].float()
    if device.type == "cuda":
        torch.cuda.synchronize()
    return len(windows) / (time.perf_counter() - start)


def scene_rate(model_uri: str, scene: Path, out: Path, batch: int, use_gpu: bool, probability: bool) -> float:
    """Windows/s of the whole call: model loading, reading, blending and writing included."""
    from swinls.prediction import PredictOptions, predict

    started = time.perf_counter()
    report = predict(model_uri, str(scene), str(out), PredictOptions(batch_size=batch, use_gpu=use_gpu, probability=probability,
                                                                   overwrite=True, progress_every=1e9), log=lambda m: None)
    return report.count / (time.perf_counter() - started)


def gis_seconds(scene: Path, out: Path, probability: bool) -> float:
    """Seconds of the COG copy of the finished outputs and of the quick-look, done again on them."""
    from swinls.prediction.cog import to_cog
    from swinls.prediction.quicklook import write_quicklook
    from swinls.prediction.rasters import inspect_scene
    from swinls.prediction.scenes import MASK_NODATA

    info = inspect_scene(str(scene), ("B4", "B3", "B2"))
    started = time.perf_counter()
    to_cog(out, "mask")
    if probability:
        to_cog(out.with_name(f"{out.stem}_probability.tif"), "probability")
    write_quicklook(info, out, out.with_suffix(".png"), MASK_NODATA)
    return time.perf_counter() - started


def child_peak_rss(model_uri: str, scene: Path, out: Path, batch: int, probability: bool) -> tuple[float, float]:
    """(peak RSS in MiB, seconds) of a fresh process predicting one scene. The child reads its own
    high-water mark: a child's ru_maxrss starts from its parent's, which holds the bare windows."""
    code = ("import sys; from swinls.prediction import PredictOptions, predict; "
            "predict(sys.argv[1], sys.argv[2], sys.argv[3], PredictOptions(batch_size=int(sys.argv[4]), "
            "probability=sys.argv[5] == '1', overwrite=True), log=lambda m: None); "
            "print(next(l.split()[1] for l in open('/proc/self/status') if l.startswith('VmHWM')))")
    started = time.perf_counter()
    done = subprocess.run([sys.executable, "-c", code, model_uri, str(scene), str(out), str(batch), str(int(probability))],
                          capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"prediction of {scene} failed:\n{done.stderr[-2000:]}")
    return int(done.stdout.split()[-1]) / 1024, time.perf_counter() - started


PRODUCT_BASE = 1020  # sides must be multiples of 6 (60 m bands on the 10 m grid)
L2A_BANDS = "B1,B2,B3,B4,B5,B6,B7,B8,B9,B11,B12,slope,DEM"


def mirrored(tile: np.ndarray, rows: int, cols: int) -> np.ndarray:
    row = np.concatenate([tile if i % 2 == 0 else tile[:, ::-1] for i in range(cols)], axis=1)
    return np.concatenate([row if r % 2 == 0 else row[::-1] for r in range(rows)], axis=0)


PRODUCT_SHAPES = {"1x": (1, 1), "4x": (2, 2), "16x": (4, 4), "16x tall": (16, 1)}  # tiles down, across


def write_products(root: Path) -> tuple[dict[str, Path], Path]:
    """STAC items of products of 1×, 4× and 16× the area (and 16× as tall, 1× as wide), and the 4×
    one pre-stacked."""
    from swinls.bands import BANDS
    from swinls.patches.geotiff import write_geotiff
    from swinls.synthetic.calibration import to_landslide4sense
    from swinls.synthetic.products import write_band_files, write_elevation, write_stac_item
    from swinls.synthetic.rng import scene_rng
    from swinls.synthetic.scene import generate_scene
    from swinls.synthetic.spectra import DEFAULT_REGIONS

    profile = DEFAULT_REGIONS["steep-forest"]
    tile = generate_scene(profile, scene_rng(0, "steep-forest", 0), PRODUCT_BASE).raw.astype(np.float32)
    items, stacked = {}, None
    for name, (rows, cols) in PRODUCT_SHAPES.items():
        raw = mirrored(tile, rows, cols)
        folder = root / f"product-{name.replace(' ', '-')}"
        files = write_band_files(raw, folder, crs=profile.crs, origin=profile.origin)
        dem = write_elevation(raw[..., BANDS.index("DEM")], folder / "elevation.tif", crs=profile.crs,
                              origin=profile.origin)
        items[name] = write_stac_item(files, dem, folder / "item.json", crs=profile.crs,
                                      item_id=f"S2B_product_{name.replace(' ', '_')}")
        if name == "4x":
            stacked = root / "stacked-4x.tif"
            write_geotiff(stacked, to_landslide4sense(raw), crs=profile.crs,
                          transform=(10.0, 0, profile.origin[0], 0, -10.0, profile.origin[1]), band_names=BANDS)
    return items, stacked


def products_benchmark(root: Path, args, batch: int) -> None:
    model_uri = publish_untrained(root / "model-l2a", args.size, L2A_BANDS)
    items, stacked = write_products(root)
    print(f"products: a model of the 13 L2A bands; 4× = {PRODUCT_BASE * 2}² (per-band DN files: 4 at 10 m, "
          f"6 at 20 m, 3 at 60 m; elevation in EPSG:4326) against the same values pre-stacked (14-band float32 GeoTIFF)")
    scene_rate(model_uri, stacked, root / "warm.tif", batch, args.use_gpu, False)  # warm-up
    ratios = []
    for round_no in range(args.rounds):
        pre = scene_rate(model_uri, stacked, root / "stacked-out", batch, args.use_gpu, args.probability)
        product = scene_rate(model_uri, items["4x"], root / "product-out", batch, args.use_gpu, args.probability)
        ratios.append(product / pre)
        print(f"round {round_no + 1}: pre-stacked {pre:.1f} windows/s, product {product:.1f} windows/s, "
              f"ratio {product / pre:.2f}")
    print(f"product / pre-stacked: median {np.median(ratios):.2f}, range {min(ratios):.2f}–{max(ratios):.2f}")
    if args.skip_memory or args.use_gpu:
        return
    peaks = {}
    for name, item in items.items():
        peak, seconds = child_peak_rss(model_uri, item, root / f"product-out-{name.replace(' ', '-')}", batch,
                                       args.probability)
        peaks[name] = peak
        rows, cols = PRODUCT_SHAPES[name]
        print(f"{name:>8} area ({PRODUCT_BASE * rows} × {PRODUCT_BASE * cols}) from its STAC item: peak RSS {peak:.0f} MiB, "
              f"{seconds:.1f} s in all")
    # the read unit spans two strips of windows, so memory follows the width (and the bands), not the height
    print(f"product peak RSS 16× / 1×: {peaks['16x'] / peaks['1x']:.2f}, 16× as tall / 1×: "
          f"{peaks['16x tall'] / peaks['1x']:.2f}; " + json.dumps({k: round(v) for k, v in peaks.items()}))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", default="nano", choices=("nano", "tiny", "small", "base"))
    parser.add_argument("--model", help="a published model instead of an untrained one")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--batch", type=int)
    parser.add_argument("--use-gpu", action="store_true")
    parser.add_argument("--probability", action="store_true", help="also write P(landslide), as --probability does")
    parser.add_argument("--skip-memory", action="store_true")
    parser.add_argument("--products", action="store_true", help="only part 3: Sentinel-2 products against pre-stacked scenes")
    args = parser.parse_args()
    from swinls.prediction.model import load_for_prediction
    from swinls.prediction.run import PredictOptions

    batch = args.batch or PredictOptions(use_gpu=args.use_gpu).batch
    with tempfile.TemporaryDirectory(prefix="predict-bench-") as tmp:
        root = Path(tmp)
        if args.products:
            return products_benchmark(root, args, batch)
        scenes = write_scenes(root)
        model_uri = args.model or publish_untrained(root / "model", args.size)
        loaded = load_for_prediction(model_uri, use_gpu=args.use_gpu)
        device = loaded.predictor.device
        windows = bare_windows(scenes[4], loaded, PredictOptions().overlap)
        print(f"model {loaded.card.model['name']} {loaded.card.model['size']}, {device}, "
              f"batch {batch}, {torch.get_num_threads()} threads; 4× scene {BASE * 2}², {len(windows)} windows, "
              f"14-band float32 GeoTIFF (deflate, pixel-interleaved); probability {'written' if args.probability else 'not written'}")
        bare_rate(loaded.predictor.model, windows[:batch * 2], batch, device)  # warm-up
        ratios = []
        for round_no in range(args.rounds):
            bare = bare_rate(loaded.predictor.model, windows, batch, device)
            scene = scene_rate(model_uri, scenes[4], root / "out.tif", batch, args.use_gpu, args.probability)
            ratios.append(scene / bare)
            gis = gis_seconds(scenes[4], root / "out.tif", args.probability)
            whole = len(windows) / scene
            print(f"round {round_no + 1}: bare forward {bare:.1f} windows/s, scene prediction {scene:.1f} windows/s, "
                  f"ratio {scene / bare:.2f}; COG copy + quick-look {gis:.2f} s of the prediction's {whole:.1f} s "
                  f"({gis / whole:.0%})")
        print(f"scene prediction / bare forward: median {np.median(ratios):.2f}, range {min(ratios):.2f}–{max(ratios):.2f}")
        if args.skip_memory or args.use_gpu:
            return
        peaks = {}
        for factor, scene in scenes.items():
            peak, seconds = child_peak_rss(model_uri, scene, root / f"out-{factor}.tif", batch, args.probability)
            peaks[factor] = peak
            print(f"{factor:>2}× area ({BASE * int(factor ** 0.5)}²): peak RSS {peak:.0f} MiB, {seconds:.1f} s in all")
        print(f"peak RSS 16× / 1×: {peaks[16] / peaks[1]:.2f}; " + json.dumps({f"{k}x": round(v) for k, v in peaks.items()}))


if __name__ == "__main__":
    main()
