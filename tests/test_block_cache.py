"""The node-local cache of a streamed split's projected shards: later passes read the node's disk,
give the rows storage gives, and never an entry of another shard, band set or normalisation; a
pass that stops early, a damaged entry and a full budget lose nothing."""

import os
from pathlib import Path

import numpy as np
import pytest

from swinls import storage
from swinls.data import DataConfig, ShardData
from swinls.data.block_cache import BlockCache
from swinls.data.local import read_split
from swinls.data.ray_data import ShardReader
from swinls.data.transform import BatchProjector
from swinls.shards import IngestOptions, ingest
from tests.helpers import write_tree


@pytest.fixture(scope="module")
def raw(tmp_path_factory):
    root = tmp_path_factory.mktemp("block-cache")
    write_tree(root / "raw" / "north", counts=(11, 0, 0), seed=4)
    return root / "raw"


def shard_data(raw: Path, dataset: str, **config) -> ShardData:
    ingest(str(raw), dataset, IngestOptions(rows_per_shard=8, rows_per_group=4))
    return ShardData(DataConfig(uri=dataset, **config))


def one_pass(reader: ShardReader, data: ShardData) -> dict[str, np.ndarray]:
    units = {"uri": data.shard_uris("train"), "sha256": [s.sha256 for s in data.shards("train")]}
    blocks = list(reader(units))
    assert max(len(b["key"]) for b in blocks) <= reader.rows_per_block
    return {name: np.concatenate([b[name] for b in blocks]) for name in ("image", "mask", "key")}


def assert_rows_equal(rows, expected):
    for name in ("key", "image", "mask"):
        np.testing.assert_array_equal(rows[name], expected[name])


def entries(root: Path) -> list[Path]:
    return sorted(p for p in root.iterdir()) if root.exists() else []


def test_a_second_pass_reads_the_nodes_disk_not_the_bucket(raw, bucket, tmp_path):
    data = shard_data(raw, f"{bucket}/cached", bands="RGB")
    expected = read_split(data, "train")
    reader = ShardReader(BatchProjector.for_data(data, "train"), rows_per_block=3, cache=(str(tmp_path), 100))
    assert_rows_equal(one_pass(reader, data), expected)
    assert len(entries(tmp_path)) == len(data.shards("train")) == 2
    for uri in data.shard_uris("train"):  # the bucket loses its shards: only the cache can answer now
        storage.remove(uri)
    assert_rows_equal(one_pass(reader, data), expected)


def test_another_band_set_or_normalisation_never_reads_an_entry_made_for_this_one(raw, tmp_path):
    cache = (str(tmp_path / "cache"), 100)
    rgb = shard_data(raw, str(tmp_path / "shards"), bands="RGB")
    one_pass(ShardReader(BatchProjector.for_data(rgb, "train"), cache=cache), rgb)
    for other in (ShardData(DataConfig(uri=rgb.config.uri, bands="RGB+NIR")),
                  ShardData(DataConfig(uri=rgb.config.uri, bands="RGB", normalization="official"))):
        rows = one_pass(ShardReader(BatchProjector.for_data(other, "train"), cache=cache), other)
        assert_rows_equal(rows, read_split(other, "train"))
    assert len(entries(tmp_path / "cache")) == 3 * 2  # three projections of two shards


def test_a_pass_stopped_halfway_leaves_no_entry_and_no_temporary_folder(raw, tmp_path):
    data = shard_data(raw, str(tmp_path / "shards"), bands="ALL")
    reader = ShardReader(BatchProjector.for_data(data, "train"), rows_per_block=2, cache=(str(tmp_path / "cache"), 100))
    blocks = reader({"uri": data.shard_uris("train")[:1], "sha256": [data.shards("train")[0].sha256]})
    next(blocks)
    blocks.close()  # what Ray does to a task whose consumer went away
    assert entries(tmp_path / "cache") == []
    assert_rows_equal(one_pass(reader, data), read_split(data, "train"))


def test_a_damaged_entry_is_removed_and_the_shard_read_again(raw, tmp_path):
    data = shard_data(raw, str(tmp_path / "shards"), bands="RGB")
    reader = ShardReader(BatchProjector.for_data(data, "train"), cache=(str(tmp_path / "cache"), 100))
    one_pass(reader, data)
    damaged = entries(tmp_path / "cache")[0] / "image.bin"
    with open(damaged, "r+b") as handle:  # a node that crashed mid-copy, a disk error
        handle.truncate(100)
    assert_rows_equal(one_pass(reader, data), read_split(data, "train"))
    assert all((entry / "image.bin").stat().st_size > 100 for entry in entries(tmp_path / "cache"))


def test_the_least_recently_used_entries_go_when_the_budget_is_full(tmp_path):
    def block(value: int, rows: int = 64) -> dict:  # 64 rows × 16 KiB of image: 1 MiB and a little
        return {"image": np.full((rows, 1, 64, 128), value, np.float16), "mask": np.zeros((rows, 64, 128), np.uint8),
                "key": np.arange(rows, dtype=np.int64) + value}

    cache = BlockCache(tmp_path, limit_mb=4)  # room for two entries of ~1.5 MiB, not three
    for value in range(3):
        entry = cache.entry(f"shard-{value}", "RGB")
        assert list(cache.write_through(entry, [block(value)]))[0]["key"][0] == value
        if value == 1:  # the first, made first, is read again: the second is now the least recently used
            os.utime(cache.entry("shard-0", "RGB"), (1, 1))
            os.utime(cache.entry("shard-1", "RGB"), (2, 2))
            assert cache.read(cache.entry("shard-0", "RGB"), 64) is not None
    kept = {path.name for path in entries(tmp_path)}
    assert kept == {cache.entry("shard-0", "RGB").name, cache.entry("shard-2", "RGB").name}
    again = next(cache.read(cache.entry("shard-2", "RGB"), 10))
    assert again["image"].shape == (10, 1, 64, 128) and again["key"][0] == 2
    # an entry larger than the whole budget streams through and is not kept
    assert len(list(cache.write_through(cache.entry("large", "RGB"), [block(9, rows=200)]))) == 1
    assert cache.entry("large", "RGB").name not in {path.name for path in entries(tmp_path)}


def test_two_readers_finishing_the_same_entry_keep_one_and_both_give_every_row(tmp_path):
    cache = BlockCache(tmp_path, limit_mb=10)
    entry = cache.entry("shard", "RGB")
    first = cache.write_through(entry, [{"image": np.ones((3, 1, 2, 2), np.float16), "mask": np.zeros((3, 2, 2), np.uint8),
                                         "key": np.arange(3, dtype=np.int64)}])
    second = cache.write_through(entry, [{"image": np.ones((3, 1, 2, 2), np.float16), "mask": np.zeros((3, 2, 2), np.uint8),
                                          "key": np.arange(3, dtype=np.int64)}])
    assert len(list(first)) == len(list(second)) == 1
    assert entries(tmp_path) == [entry]
    assert np.array_equal(next(cache.read(entry, 8))["key"], np.arange(3))


def test_a_streamed_ray_dataset_reads_each_shard_from_the_bucket_once_per_node(ray_local, raw, bucket, tmp_path):
    from swinls.data.ray_data import build_dataset, stream_cache

    data = shard_data(raw, f"{bucket}/streamed", bands="RGB+NIR", stream_cache_dir=str(tmp_path / "cache"))
    assert stream_cache(DataConfig(uri=data.config.uri, stream_cache_mb=0)) is None
    dataset = build_dataset(data, "train", materialize=False, seed=1)
    expected = read_split(data, "train")

    def epoch():
        rows = dataset.take_batch(100, batch_format="numpy")
        order = np.argsort(rows["key"])
        return {name: np.asarray(rows[name])[order] for name in ("image", "mask", "key")}

    first = epoch()
    order = np.argsort(expected["key"])
    assert_rows_equal(first, {name: expected[name][order] for name in first})
    for uri in data.shard_uris("train"):
        storage.remove(uri)
    assert_rows_equal(epoch(), first)
