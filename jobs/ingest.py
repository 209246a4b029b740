"""Ingest raw Landslide4Sense-layout patches into Parquet shards plus a manifest.

    python jobs/ingest.py SRC DST [--region NAME] [--labels DIR] [--on-bad fail|skip]
    python jobs/ingest.py --scenes SCENES --labels INVENTORY --region NAME [--ignore AREAS] DST

Examples:
    # the real dataset, unpacked locally, into a bucket
    python jobs/ingest.py /data/Landslide4Sense s3://my-bucket/l4s/shards --region landslide4sense
    # the validation and test masks, released later as their own archive (ValidData/mask/, TestData/mask/)
    python jobs/ingest.py /data/Landslide4Sense s3://my-bucket/l4s/shards --region landslide4sense --labels /data/l4s-labels
    # new labelled regions later (a folder of trees, one per region): adds shards, keeps the old
    python jobs/ingest.py s3://my-bucket/raw/new-regions s3://my-bucket/l4s/shards
    # the built-in synthetic data (python jobs/synth.py .cache/synthetic) into a local dataset
    python jobs/ingest.py .cache/synthetic shards/
    # a new region from an event's scenes and its landslide inventory (polygons in any CRS, or a label raster)
    python jobs/ingest.py --scenes s3://my-bucket/events/2026-10/scenes/ --labels inventory.gpkg --ignore not-surveyed.geojson --region event-2026-10 s3://my-bucket/l4s/shards
    # the same from a Sentinel-2 L1C product (Landslide4Sense has B10, which L2A lacks)
    python jobs/ingest.py --scenes s3://my-bucket/items/S2B_MSIL1C_20261014.json --labels inventory.gpkg --elevation dem.tif --region event-2026-10 s3://my-bucket/l4s/shards

SRC is one Landslide4Sense tree (TrainData/, ValidData/, TestData/) or a folder of such trees,
one per region; DST is the shard dataset. Both may be local paths or s3:// URIs (the endpoint
comes from AWS_ENDPOINT_URL, credentials from the usual AWS chain). Re-running is cheap: regions
whose source has not changed are kept; new regions are added to the existing dataset. Masks given
with --labels are recorded in the manifest and used again by later ingests of the same region.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "platform"))  # the package beside this job (ray job submit's copy), not an installed one

from swinls.shards import IngestOptions, ingest
from swinls.regions import SceneCutOptions, cut_region
from swinls.shards.writer import BAND_COMPRESSIONS


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    from swinls.cli import JobParser

    parser = JobParser(__doc__)
    parser.add_argument("paths", nargs="+", metavar="SRC DST", help="SRC and DST; only DST with --scenes")
    parser.add_argument("--region", help="region name when SRC is a single tree (default: its folder name); required with --scenes")
    parser.add_argument("--labels", metavar="DIR",
                        help="masks shipped apart from the images: a tree (or one tree per region) of <Split>/mask/mask_N.h5; "
                             "with --scenes, the landslide inventory: polygons (GeoJSON, GeoPackage, Shapefile) or a label raster")
    # a region from scenes and an inventory (docs/data.md)
    parser.add_argument("--scenes", metavar="SCENES", help="a 14-band GeoTIFF scene, or a folder or prefix of them; "
                                                           "or one Sentinel-2 product (STAC item, SAFE, per-band files)")
    parser.add_argument("--elevation", metavar="RASTER", help="with a Sentinel-2 product: the elevation raster (any CRS) "
                                                              "slope and DEM are made from")
    parser.add_argument("--ignore", metavar="AREAS", help="polygons of areas not surveyed: their pixels are ignored")
    parser.add_argument("--patch-size", type=int, default=SceneCutOptions.patch)
    parser.add_argument("--stride", type=int, default=SceneCutOptions.stride)
    parser.add_argument("--block", type=int, default=SceneCutOptions.block, help="windows per side of a spatial block")
    parser.add_argument("--split", default=",".join(map(str, SceneCutOptions.fractions)), metavar="TRAIN,VALID,TEST",
                        help="fractions of the blocks per split")
    parser.add_argument("--seed", type=int, default=SceneCutOptions.seed)
    parser.add_argument("--on-bad", choices=("fail", "skip"), default="fail",
                        help="fail: stop and publish nothing; skip: leave bad files out and list them in the manifest")
    parser.add_argument("--rows-per-shard", type=int, default=IngestOptions.rows_per_shard)
    parser.add_argument("--rows-per-group", type=int, default=IngestOptions.rows_per_group,
                        help="Parquet row group size; a stream reads each chosen band of a group in one request")
    parser.add_argument("--image-dtype", choices=("float16", "float32"), default="float16")
    parser.add_argument("--band-compression", choices=BAND_COMPRESSIONS, default=IngestOptions.band_compression,
                        help="codec of the image planes (ids and masks are always zstd); plain decodes ~7× faster")
    parser.add_argument("--read-threads", type=int, default=IngestOptions.read_threads)
    args = parser.parse_args(argv)
    if args.scenes:
        if len(args.paths) != 1 or not args.labels or not args.region:
            parser.error("--scenes takes DST only, with --labels INVENTORY and --region NAME")
        args.src, args.dst = None, args.paths[0]
    elif len(args.paths) != 2:
        parser.error("give SRC and DST (or --scenes with DST)")
    else:
        args.src, args.dst = args.paths
        if args.ignore or args.elevation:
            parser.error("--ignore and --elevation go with --scenes")
    return args


def main(argv: list[str] | None = None) -> int:
    """The job; its exit status (a user error is one line on stderr and 2)."""
    from swinls.cli import run_job

    return run_job(_run, argv)


def _run(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(message)s")
    options = IngestOptions(on_bad=args.on_bad, region=args.region, labels=args.labels, rows_per_shard=args.rows_per_shard,
                            rows_per_group=args.rows_per_group, image_dtype=args.image_dtype, band_compression=args.band_compression,
                            read_threads=args.read_threads)
    from swinls.progress import Progress

    patches = Progress("ingest", "patches")
    try:
        if args.scenes:
            report = _ingest_scenes(args, options, patches)
        else:
            report = ingest(args.src, args.dst, options, progress=patches)
    finally:
        patches.close()
    for name in report.unchanged:
        print(f"{name}: unchanged since the last ingest, kept")
    for name in report.ingested:
        print(f"{name}: ingested")
    for skipped in report.skipped:
        print(f"skipped {skipped['source']}: {skipped['reason']}")
    print(f"{report.patches} patches in {report.seconds:.1f}s ({report.patches_per_second:.0f}/s), "
          f"{report.shards_uploaded} new shards; manifest {report.manifest_uri} (sha256 {report.manifest_sha256[:12]})")
    return 0


def _ingest_scenes(args, options, progress):
    """Cut the scenes into a local tree of GeoTIFF patches, then ingest it as one region."""
    import dataclasses
    import tempfile

    try:
        fractions = tuple(float(x) for x in args.split.split(","))
        assert len(fractions) == 3
        cut = SceneCutOptions(args.patch_size, args.stride, args.block, fractions, args.seed)
    except (ValueError, AssertionError) as exc:
        from swinls.errors import SwinLSError

        raise SwinLSError(f"--patch-size/--stride/--block/--split: {exc or 'three fractions, e.g. 0.7,0.15,0.15'}") from exc
    with tempfile.TemporaryDirectory(prefix="swinls-scenes-") as tmp:
        done = cut_region(args.scenes, args.labels, tmp, cut, ignore=args.ignore, elevation=args.elevation)
        print(f"{args.region}: {len(done.scenes)} scene(s) → " + ", ".join(f"{n} {s}" for s, n in done.windows.items())
              + f" patches ({done.dropped_at_split_borders} dropped at split borders, "
              f"{done.dropped_without_labels} without a labelled pixel)")
        return ingest(tmp, args.dst, dataclasses.replace(options, labels=None), progress=progress)


if __name__ == "__main__":
    sys.exit(main())
