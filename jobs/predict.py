"""Apply a published model: Landslide4Sense submission masks, or georeferenced scene masks.

    python jobs/predict.py MODEL INPUT OUTPUT [options]

MODEL   a published model: an experiment's best/ (or the experiment itself), a versions/<id>/
        folder or its model.pt, a retraining registry's champion/; local or s3://
INPUT   a Landslide4Sense split (TestData/, ValidData/, or the folder holding img/): one
        mask_N.h5 per image_N.h5 and submission.zip, plus metrics.json when mask/ lies beside img/;
        or a GeoTIFF scene, or a folder or s3:// prefix of them: a mask GeoTIFF per scene
        (1 = landslide, 0 = not, 255 = no data) with the scene's CRS, transform and size;
        or a Sentinel-2 product: a STAC item (.json), a SAFE folder, or a folder of per-band files
        (…_B02.tif, …_B11.jp2), read on its 10 m grid (slope and DEM from --elevation)
OUTPUT  a folder (or s3:// prefix); for a single scene, a .tif path works too

Examples:
    python jobs/predict.py runs/smoke-20261124-101500/best .cache/synthetic/volcanic-arc/TestData out/test
    python jobs/predict.py runs/smoke-20261124-101500/best .cache/synthetic/volcanic-arc/scenes out/scenes --probability
    ray job submit --working-dir . -- python jobs/predict.py s3://b/experiments/paper/best \\
        s3://b/scenes/2026-11 s3://b/predictions/2026-11 --use-gpu
    python jobs/predict.py s3://b/retrain/champion s3://b/items/S2B_33TWM_20261120_0_L2A.json \
        s3://b/predictions/S2B_33TWM_20261120 --elevation s3://b/dem/copernicus-30m.tif

Bands, their order and the normalisation come from the model card. Without --ray (and outside
`ray job submit`, which sets RAY_ADDRESS) it runs in this process.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
import warnings

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "platform"))  # the package beside this job (ray job submit's copy), not an installed one


def parse_args(argv=None) -> argparse.Namespace:
    from swinls.cli import JobParser, add_shared

    from swinls.prediction.run import PredictOptions

    defaults = PredictOptions()
    parser = JobParser(__doc__)
    parser.add_argument("model", metavar="MODEL")
    parser.add_argument("input", metavar="INPUT")
    parser.add_argument("output", metavar="OUTPUT")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing OUTPUT")
    parser.add_argument("--threshold", default=defaults.threshold,
                        help="argmax (default), card (the validation's best-F1 threshold in the model card), or a probability")
    parser.add_argument("--probability", action="store_true", help="scenes: also write P(landslide) as <scene>_probability.tif")
    parser.add_argument("--overlap", type=int, default=defaults.overlap, help="scenes: pixels shared by neighbouring windows")
    parser.add_argument("--elevation", metavar="RASTER",
                        help="Sentinel-2 products: the elevation raster (any CRS) slope and DEM are made from")
    parser.add_argument("--batch-size", type=int, help="patches or windows per model call (16 on CPU, 128 on a GPU)")
    add_shared(parser, "--use-gpu", "--shared-fs")
    parser.add_argument("--no-bf16", action="store_true", help="with --use-gpu: float32 instead of bf16 autocast")
    parser.add_argument("--ray", action="store_true", help="Ray Data batch inference (the default under ray job submit)")
    parser.add_argument("--actors", type=int, help="model actors on Ray (default: one per GPU, or what the CPUs allow)")
    parser.add_argument("--cpus-per-actor", type=float)
    return parser.parse_args(argv)


def main(argv=None) -> int:
    """The job; its exit status (a user error is one line on stderr and 2)."""
    from swinls.cli import run_job

    return run_job(_run, argv)


def _run(argv=None) -> int:
    args = parse_args(argv)
    from swinls import preflight
    from swinls.patches.layout import natural_key
    from swinls.prediction.run import PredictOptions, predict

    use_ray = args.ray or bool(os.environ.get("RAY_ADDRESS"))
    options = PredictOptions(threshold=args.threshold, overwrite=args.overwrite, probability=args.probability,
                             overlap=args.overlap, batch_size=args.batch_size, use_gpu=args.use_gpu,
                             bf16=False if args.no_bf16 else None, ray=use_ray, actors=args.actors,
                             cpus_per_actor=args.cpus_per_actor, elevation=args.elevation)
    preflight.check_model(args.model)
    if use_ray:
        from swinls.cli import quiet_bookkeeping
        from swinls.ray_start import check_gpus, init_local_ray

        quiet_bookkeeping()
        init_local_ray(log_to_driver=False)
        check_gpus(1 if args.use_gpu else 0, "prediction")
        from swinls.reachable import check_reachable, current_cluster

        check_reachable({"MODEL": args.model, "INPUT": args.input, "OUTPUT": args.output}, current_cluster(), args.shared_fs)
    else:
        preflight.check_devices(args.use_gpu, 1, local=True)
    with warnings.catch_warnings():
        warnings.simplefilter("always")
        warnings.formatwarning = lambda message, category, *_: f"warning: {message}\n"
        report = predict(args.model, args.input, args.output, options)
    print(f"predicted {report.throughput}")
    if report.metrics:
        m = report.metrics
        what = f"{m['images']} images" if "images" in m else f"{m['scenes']} scene{'s' if m['scenes'] != 1 else ''}"
        print(f"metrics over {what}, {m['pixels']} pixels: precision {m['precision']:.4f}, recall {m['recall']:.4f}, "
              f"F1 {m['f1']:.4f}, IoU {m['iou']:.4f}")
        if len(report.per_scene) > 1:
            for name, scores in report.per_scene.items():
                print(f"  {name}: precision {scores['precision']:.4f}, recall {scores['recall']:.4f}, F1 {scores['f1']:.4f}")
    names = sorted((name.rsplit("/", 1)[-1] for name in report.files), key=natural_key)
    print(f"wrote {report.output}: {', '.join(names[:6])}" + (f" and {len(names) - 6} more" if len(names) > 6 else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
