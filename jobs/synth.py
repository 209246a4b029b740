"""Generate the built-in synthetic Landslide4Sense-format dataset.

    python jobs/synth.py OUT [--seed 0] [--regions steep-forest,volcanic-arc] [--scene-size 1024]
    python jobs/synth.py OUT --ingest DST      # then ingest it into shards at DST (local or s3://)
    python jobs/synth.py OUT --preset l4s      # the benchmark's sizes: 3,799 / 245 / 800 patches, six regions
    python jobs/synth.py OUT --preset small    # a quarter of that (950 / 62 / 200), for CPU work
    python jobs/synth.py --recalibrate        # after changing the generator
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "platform"))  # the package beside this job (ray job submit's copy), not an installed one

from swinls.synthetic import DEFAULT_REGIONS, SyntheticSpec, ensure_synthetic


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    from swinls.cli import JobParser

    parser = JobParser(__doc__)
    parser.add_argument("out", nargs="?", help="folder to create; an existing one generated with the same settings is reused")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--preset", choices=("l4s", "small"),
                        help="Landslide4Sense-size data over six regions (volcanic-arc to hold out), patches only; "
                             "sets the regions and counts")
    parser.add_argument("--regions", default=",".join(DEFAULT_REGIONS),
                        help=f"comma-separated; known: {', '.join(DEFAULT_REGIONS)}")
    parser.add_argument("--scene-size", type=int, default=1024, help="pixels per side of each scene")
    parser.add_argument("--scenes-per-region", type=int, default=1)
    parser.add_argument("--patch-size", type=int, default=128)
    parser.add_argument("--h5-dtype", choices=("float32", "float64"), default="float32")
    parser.add_argument("--no-scenes", action="store_true", help="skip the georeferenced GeoTIFF scenes")
    parser.add_argument("--ingest", metavar="DST", help="ingest the result into a shard dataset at DST")
    parser.add_argument("--recalibrate", action="store_true", help="re-measure the value mapping and exit")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    """The job; its exit status (a user error is one line on stderr and 2)."""
    from swinls.cli import run_job

    return run_job(_run, argv)


def _run(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.recalibrate:
        from swinls.synthetic.calibration import write_calibration

        print(f"wrote {write_calibration()}")
        return 0
    if not args.out:
        print("error: OUT is required", file=sys.stderr)
        return 2
    if args.preset:
        from swinls.synthetic.presets import preset_spec

        spec = preset_spec(args.preset, seed=args.seed, scene_size=args.scene_size)  # patches only: no scenes
    else:
        spec = SyntheticSpec(
            seed=args.seed, regions=tuple(r.strip() for r in args.regions.split(",") if r.strip()),
            scene_size=args.scene_size, scenes_per_region=args.scenes_per_region, patch_size=args.patch_size,
            h5_dtype=args.h5_dtype, write_scenes=not args.no_scenes,
        )
    import time

    started = time.perf_counter()
    from swinls.progress import Progress

    scenes = Progress("synth", "scenes")
    summary = ensure_synthetic(args.out, spec, scenes)
    scenes.close()
    for name, region in summary["regions"].items():
        fractions = ", ".join(f"{s} {f:.2%}" for s, f in region["positive_fraction"].items())
        print(f"{name}: {json.dumps(region['counts'])}; landslide pixels: {fractions}")
    totals = {s: sum(r["counts"][s] for r in summary["regions"].values()) for s in ("train", "valid", "test")}
    size = sum(f.stat().st_size for f in Path(args.out).rglob("*") if f.is_file())
    print(f"wrote {args.out}: {totals['train']} train, {totals['valid']} valid, {totals['test']} test patches, "
          f"{size / 2**20:.0f} MiB, {time.perf_counter() - started:.0f} s")
    if args.ingest:
        from swinls.shards import ingest

        patches = Progress("ingest", "patches")
        report = ingest(args.out, args.ingest, progress=patches)
        patches.close()
        print(f"ingested {report.patches} patches into {report.manifest_uri}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
