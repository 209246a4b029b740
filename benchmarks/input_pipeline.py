"""Input pipeline throughput: patches/s delivered as augmented torch batches.

    python benchmarks/input_pipeline.py [--scenes-per-region 20] [--epochs 4] [--glibc-malloc-defaults]

Ours: Ray Data streaming the Parquet shards from a moto S3 endpoint on 127.0.0.1 (in its own
process), projecting and normalising in Ray tasks, batches augmented in torch (flips +
rotate/shift), read as a Ray Train worker reads them (a streaming split; also through
`dataset.iterator()`, which no training job uses) — by default reading the bucket on the first pass and the node's disk cache of
projected shards after it, also without the cache (the bucket every epoch) and materialised in
memory (the default at this size); the same stream from local disk says how much of it is moto's (which, unlike S3,
reads a whole object for every range request). Baseline, same run, same cores: a re-creation of the official Landslide4Sense
loader — a torch DataLoader over per-file `.h5` on local disk, normalising band by band in
Python, then selecting the bands — with the same augmentations. Both are timed over every pass
after the first (which warms worker processes up, and fills a cache): one pass of 3,584 patches
takes 1–2 s, too short to time alone.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import h5py
import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

sys.path.insert(0, str(Path(__file__).parent))

from _moto import moto_s3  # noqa: E402

from swinls import storage  # noqa: E402
from swinls.augment import AugmentConfig  # noqa: E402
from swinls.augment.ops import Augmenter  # noqa: E402
from swinls.bands import BANDS, OFFICIAL_STATS, resolve_band_set  # noqa: E402
from swinls.data import DataConfig, ShardData  # noqa: E402
from swinls.data.ray_data import build_dataset, iter_worker_batches  # noqa: E402
from swinls.ray_start import init_local_ray  # noqa: E402
from swinls.data.transform import row_key  # noqa: E402
from swinls.host_memory import keep_freed_memory  # noqa: E402
from swinls.shards import ingest  # noqa: E402
from swinls.synthetic import SyntheticSpec, write_synthetic  # noqa: E402

AUGMENT = AugmentConfig(flip=0.5, rotate_shift=0.5)
BATCH = 32


class OfficialStyleDataset(Dataset):
    """As the Landslide4Sense baseline repository loads data: one h5 per item, per-band loop."""

    def __init__(self, root: Path, band_indices: list[int]) -> None:
        self.items = []
        for region in sorted(p for p in root.iterdir() if p.is_dir()):
            for img in sorted((region / "TrainData" / "img").glob("image_*.h5")):
                self.items.append((region.name, img, region / "TrainData" / "mask" / img.name.replace("image_", "mask_")))
        self.mean = [OFFICIAL_STATS[b].mean for b in BANDS]
        self.std = [OFFICIAL_STATS[b].std for b in BANDS]
        self.band_indices = band_indices

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, index):
        region, img, mask = self.items[index]
        with h5py.File(img, "r") as hf:
            image = hf["img"][:]
        with h5py.File(mask, "r") as hf:
            label = hf["mask"][:]
        image = np.asarray(image, np.float32).transpose((-1, 0, 1))
        for i in range(len(self.mean)):
            image[i, :, :] -= self.mean[i]
            image[i, :, :] /= self.std[i]
        key = row_key(region, "train", img.stem)
        return image[self.band_indices].copy(), label.astype(np.int64), key


def time_baseline(root: Path, bands: str, epochs: int) -> float:
    indices = [BANDS.index(b) for b in resolve_band_set(bands).inputs]
    loader = DataLoader(OfficialStyleDataset(root, indices), batch_size=BATCH, shuffle=True, num_workers=2,
                        persistent_workers=True)
    augmenter = Augmenter(AUGMENT)
    passes = []
    for epoch in range(epochs):
        start, n = time.perf_counter(), 0
        for image, mask, keys in loader:
            image, mask = augmenter(image, mask, keys.numpy(), epoch)
            n += image.shape[0]
        passes.append((n, time.perf_counter() - start))
    return _later_rate(passes)


def _later_rate(passes: list[tuple[int, float]]) -> float:
    """Patches/s over every pass after the first (the first alone when there is one)."""
    later = passes[1:] or passes
    return sum(n for n, _ in later) / sum(seconds for _, seconds in later)


def time_ours(shards: str, bands: str, epochs: int, materialize: bool, deterministic: bool = True,
              stream_cache: str | None = None, as_training: bool = True) -> tuple[float, float]:
    """(first pass, later passes) in patches/s; the first pass includes building and, when
    materialising or caching a stream in the (empty) folder `stream_cache`, reading everything
    from S3 once. Without `stream_cache` a stream reads storage every epoch.

    `as_training`: read as a Ray Train worker does, through a streaming split (Ray Train splits
    every dataset it is given, for one worker too), whose executor runs in a coordinator actor;
    otherwise through `dataset.iterator()`, whose executor runs in this consuming process."""
    cache = dict(stream_cache_dir=stream_cache) if stream_cache else dict(stream_cache_mb=0)
    data = ShardData(DataConfig(uri=shards, bands=bands, normalization="official", deterministic=deterministic, **cache))
    augmenter = Augmenter(AUGMENT)
    start = time.perf_counter()
    dataset = build_dataset(data, "train", materialize=materialize)
    iterator = dataset.streaming_split(1, equal=True)[0] if as_training else dataset.iterator()
    passes = []
    for epoch in range(epochs):
        n = 0
        for batch in iter_worker_batches(iterator, batch_size=BATCH, augmenter=augmenter, epoch=epoch,
                                         shuffle_buffer=64, augment_in_prefetch=True):
            n += len(batch)
        passes.append((n, time.perf_counter() - start))
        start = time.perf_counter()
    return passes[0][0] / passes[0][1], _later_rate(passes)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scenes-per-region", type=int, default=20, help="20: 3,584 training patches, as many as Landslide4Sense has")
    parser.add_argument("--epochs", type=int, default=4, help="passes per side; all but the first are timed")
    parser.add_argument("--glibc-malloc-defaults", action="store_true",
                        help="leave malloc as glibc sets it (page faults on every large batch)")
    parser.add_argument("--torch-threads", type=int, default=os.cpu_count(), help="for the consuming process, both sides")
    args = parser.parse_args()
    torch.set_num_threads(args.torch_threads)
    if not args.glibc_malloc_defaults:
        keep_freed_memory()  # as training workers do; this process augments for both sides
    with tempfile.TemporaryDirectory(prefix="bench-input-") as tmp, moto_s3() as bucket:
        raw = Path(tmp) / "raw"
        write_synthetic(raw, SyntheticSpec(scenes_per_region=args.scenes_per_region, h5_dtype="float64", write_scenes=False))
        n = sum(1 for _ in raw.glob("*/TrainData/img/*.h5"))
        ingest(str(raw), f"{bucket}/shards")
        ingest(str(raw), str(Path(tmp) / "shards"))  # the same shards on local disk: moto's share of a stream
        init_local_ray(training_workers=0, log_to_driver=False)
        print(f"{n} training patches, batches of {BATCH}, flips + rotate/shift, {os.cpu_count()} cores")
        for bands in ("RGB", "ALL"):
            baseline = time_baseline(raw, bands, args.epochs)
            s3, local = f"{bucket}/shards", str(Path(tmp) / "shards")
            first, materialised = time_ours(s3, bands, args.epochs, materialize=True)
            cold, cached = time_ours(s3, bands, args.epochs, materialize=False, stream_cache=str(Path(tmp) / f"cache-{bands}"))
            _, streamed = time_ours(s3, bands, args.epochs, materialize=False)
            _, streamed_local = time_ours(local, bands, args.epochs, materialize=False)
            _, unordered = time_ours(s3, bands, args.epochs, materialize=True, deterministic=False)
            _, streamed_unordered = time_ours(s3, bands, args.epochs, materialize=False, deterministic=False)
            _, driver_materialised = time_ours(s3, bands, args.epochs, materialize=True, as_training=False)
            _, driver_cached = time_ours(s3, bands, args.epochs, materialize=False, as_training=False,
                                         stream_cache=str(Path(tmp) / f"driver-cache-{bands}"))
            print(f"{bands:>4}: official-style DataLoader over local h5 {baseline:5.0f} patches/s | ours from S3, read as a "
                  f"training worker does: materialised (the default at this size) {materialised:5.0f} patches/s = "
                  f"{materialised / baseline:.1f}× (first pass, reading S3: {first:.0f}/s) | streamed, later epochs from the "
                  f"node's disk cache (the default for a stream) {cached:5.0f}/s = {cached / baseline:.1f}× (first pass, "
                  f"reading S3: {cold:.0f}/s = {cold / baseline:.1f}×) | streamed from S3 every epoch "
                  f"(data.stream_cache_mb=0) {streamed:5.0f}/s = {streamed / baseline:.1f}× (from local disk instead: "
                  f"{streamed_local:.0f}/s = {streamed_local / baseline:.1f}×)")
            print(f"      read through dataset.iterator() in this process (the executor beside the consumer): materialised "
                  f"{driver_materialised:.0f}/s = {driver_materialised / baseline:.1f}×, cached stream {driver_cached:.0f}/s = "
                  f"{driver_cached / baseline:.1f}×")
            print(f"      block order kept (data.deterministic, the default) against order of task completion: "
                  f"materialised {materialised:.0f} vs {unordered:.0f}/s ({materialised / unordered:.2f}), "
                  f"streamed {streamed:.0f} vs {streamed_unordered:.0f}/s ({streamed / streamed_unordered:.2f})")


if __name__ == "__main__":
    main()
