"""Ingest throughput, peak memory and storage size, against the raw float64 h5 files.

    python benchmarks/ingest.py [--scene-size 1024] [--regions 4] [--s3]

Generates the synthetic dataset as float64 `.h5` (what Landslide4Sense ships), ingests it in a
child process (so its peak RSS is its own) and prints: patches/s, peak RSS, bytes per patch of
the shards against the raw h5 files, and the precision lost by storing float16.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq

from swinls import storage
from swinls.bands import BANDS
from swinls.patches import read_h5_image
from swinls.shards import Manifest
from swinls.shards.schema import decode_bands
from swinls.synthetic import DEFAULT_REGIONS, SyntheticSpec, write_synthetic

CHILD = """
import json, sys, time
from swinls.shards import IngestOptions, ingest
report = ingest(sys.argv[1], sys.argv[2], IngestOptions(image_dtype=sys.argv[3]))
peak = next(int(l.split()[1]) for l in open("/proc/self/status") if l.startswith("VmHWM:"))
print(json.dumps({"patches": report.patches, "seconds": report.seconds, "peak_mib": peak / 1024}))
"""


def run_ingest(src: str, dst: str, dtype: str) -> dict:
    import json

    out = subprocess.run([sys.executable, "-c", CHILD, src, dst, dtype], check=True, capture_output=True, text=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def precision(raw_root: Path, dataset: str) -> tuple[float, float]:
    """Largest float16 error, absolute in units of each band's std, and relative."""
    manifest = Manifest.load(dataset)
    stats = manifest.band_stats()
    std = np.array([stats[b].std for b in BANDS])[:, None, None]
    worst_sigma = worst_rel = 0.0
    for shard in manifest.shards(["train"]):
        fs, path = storage.filesystem(storage.join(dataset, shard.path))
        with fs.open(path, "rb") as handle:
            table = pq.read_table(handle, columns=["region", "id", *BANDS])
        images = decode_bands(table, list(BANDS), manifest.patch_shape, manifest.image_dtype)
        for i in range(table.num_rows):
            region, patch_id = table.column("region")[i].as_py(), table.column("id")[i].as_py()
            original = read_h5_image((raw_root / region / "TrainData/img" / f"{patch_id}.h5").read_bytes(), patch_id)
            original = np.moveaxis(original, -1, 0)
            error = np.abs(images[i] - original)
            worst_sigma = max(worst_sigma, float((error / std).max()))
            worst_rel = max(worst_rel, float((error / np.maximum(np.abs(original), 1e-3)).max()))
    return worst_sigma, worst_rel


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scene-size", type=int, default=1024)
    parser.add_argument("--regions", type=int, default=4)
    parser.add_argument("--s3", action="store_true", help="also ingest from and to a moto S3 endpoint")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-ingest-") as tmp:
        raw = Path(tmp) / "raw"
        spec = SyntheticSpec(regions=tuple(list(DEFAULT_REGIONS)[: args.regions]), scene_size=args.scene_size,
                             h5_dtype="float64", write_scenes=False)
        write_synthetic(raw, spec)
        h5_files = list(raw.rglob("img/*.h5"))
        h5_bytes = sum(p.stat().st_size for p in raw.rglob("*.h5"))
        image_bytes = sum(p.stat().st_size for p in h5_files)
        n = len(h5_files)
        print(f"dataset: {n} patches of 128×128×14, float64 h5: {image_bytes / n / 1024:.0f} KiB per image "
              f"({h5_bytes / n / 1024:.0f} KiB with its mask)")
        runs = [("local → local", str(raw), str(Path(tmp) / "shards"))]
        for label, src, dst in runs:
            for dtype in ("float16", "float32"):
                target = f"{dst}-{dtype}"
                result = run_ingest(src, target, dtype)
                shard_bytes = sum(s.bytes for s in Manifest.load(target).shards())
                print(f"{label} [{dtype}]: {result['patches'] / result['seconds']:.0f} patches/s, "
                      f"peak RSS {result['peak_mib']:.0f} MiB, shards {shard_bytes / n / 1024:.0f} KiB per patch "
                      f"= {shard_bytes / h5_bytes:.3f} of the float64 h5 (image+mask)")
        sigma, rel = precision(raw, str(Path(tmp) / "shards-float16"))
        print(f"float16 precision loss: at most {sigma:.2e} band standard deviations, {rel:.2e} relative")
        if args.s3:
            sys.path.insert(0, str(Path(__file__).parent))
            from _moto import moto_s3

            with moto_s3() as bucket:
                for path in sorted(raw.rglob("*.h5")):
                    storage.put_file_atomic(path, f"{bucket}/raw/{path.relative_to(raw).as_posix()}")
                result = run_ingest(f"{bucket}/raw", f"{bucket}/shards", "float16")
                print(f"s3 → s3 (moto on 127.0.0.1) [float16]: {result['patches'] / result['seconds']:.0f} patches/s, "
                      f"peak RSS {result['peak_mib']:.0f} MiB")


if __name__ == "__main__":
    main()
