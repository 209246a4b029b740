import json
import shutil
from pathlib import Path

import h5py
import numpy as np
import pyarrow.parquet as pq
import pytest

from swinls import storage
from swinls.bands import BANDS
from swinls.moments import BandMoments
from swinls.patches import write_geotiff
from swinls.shards import IngestError, IngestOptions, Manifest, ingest
from swinls.shards.schema import IGNORE, decode_bands, decode_masks
from tests.conftest import FAKE_KEY_ID, FAKE_SECRET
from tests.helpers import upload_tree, write_tree

FLOAT16_RELATIVE = 2.0**-11  # half precision: 11 significant bits


def read_rows(dataset: str, manifest: Manifest, split: str, region: str | None = None):
    rows = {}
    for shard in manifest.shards([split], [region] if region else None):
        fs, path = storage.filesystem(storage.join(dataset, shard.path))
        with fs.open(path, "rb") as handle:
            table = pq.read_table(handle)
        images = decode_bands(table, list(BANDS), manifest.patch_shape, manifest.image_dtype)
        masks = decode_masks(table, manifest.patch_shape)
        for i, patch_id in enumerate(table.column("id").to_pylist()):
            rows[(table.column("region")[i].as_py(), patch_id)] = (images[i], masks[i], table.slice(i, 1).to_pylist()[0])
    return rows


def assert_matches_source(rows, written, region):
    for (split, patch_id), (image, mask) in written.items():
        if split != "train":
            continue
        stored, stored_mask, meta = rows[(region, patch_id)]
        np.testing.assert_allclose(stored, np.moveaxis(image, -1, 0), rtol=FLOAT16_RELATIVE, atol=1e-7)
        np.testing.assert_array_equal(stored_mask, mask)
        assert meta["has_landslide"] == bool(mask.any()) and meta["positive_pixels"] == int(mask.sum())


def test_local_ingest_stores_patches_faithfully_and_computes_statistics(tmp_path):
    written = write_tree(tmp_path / "src", counts=(6, 2, 3))
    report = ingest(str(tmp_path / "src"), str(tmp_path / "dst"), IngestOptions(region="north", rows_per_shard=4))
    manifest = Manifest.load(str(tmp_path / "dst"))
    assert report.ingested == ["north"] and report.patches == 11
    assert manifest.counts()["total"] == {"train": 6, "valid": 2, "test": 3}
    assert [s.rows for s in manifest.shards(["train"])] == [4, 2]
    rows = read_rows(str(tmp_path / "dst"), manifest, "train")
    assert_matches_source(rows, written, "north")
    test_rows = read_rows(str(tmp_path / "dst"), manifest, "test")
    assert all(meta["labeled"] is False and (mask == IGNORE).all() for _, mask, meta in test_rows.values())

    # per-band statistics: exactly those of the training images, computed here with numpy
    train = np.stack([img for (split, _), (img, _) in written.items() if split == "train"]).reshape(-1, 14).astype(np.float64)
    stats = manifest.band_stats()
    np.testing.assert_allclose([stats[b].mean for b in BANDS], train.mean(axis=0), rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose([stats[b].std for b in BANDS], train.std(axis=0), rtol=1e-9)
    positives = sum(m.sum() for (split, _), (_, m) in written.items() if split == "train")
    assert manifest.positive_fraction() == pytest.approx(positives / (6 * 32 * 32))

    # the shard hash in the manifest is the hash of the bytes
    for shard in manifest.shards():
        assert storage.sha256_file(tmp_path / "dst" / shard.path) == shard.sha256
    data = json.loads((tmp_path / "dst" / "manifest.json").read_text())
    assert data["sources"] == [str(tmp_path / "src")] and data["bands"] == list(BANDS)
    assert set(data["pca"]) >= {"components", "center", "scale"}


def test_s3_to_s3_ingest_reads_and_writes_through_the_endpoint(tmp_path, bucket):
    written = write_tree(tmp_path / "src" / "east", counts=(4, 2, 1), seed=3)
    upload_tree(tmp_path / "src", f"{bucket}/raw")
    report = ingest(f"{bucket}/raw", f"{bucket}/shards")
    assert report.ingested == ["east"]
    manifest = Manifest.load(f"{bucket}/shards")
    assert manifest.regions["east"].source == f"{bucket}/raw/east"
    assert_matches_source(read_rows(f"{bucket}/shards", manifest, "train"), written, "east")
    for rel in storage.list_files(f"{bucket}/shards"):
        blob = storage.read_bytes(f"{bucket}/shards/{rel}")
        assert FAKE_SECRET.encode() not in blob and FAKE_KEY_ID.encode() not in blob


def corrupt(kind: str, root: Path) -> str:
    """Make one file of the tree bad in the given way; returns the file's relative path."""
    img = root / "TrainData/img/image_3.h5"
    mask = root / "TrainData/mask/mask_3.h5"

    def rewrite(path, key, array):
        with h5py.File(path, "w") as f:
            f.create_dataset(key, data=array)

    if kind == "band count":
        rewrite(img, "img", np.zeros((32, 32, 12), np.float32))
    elif kind == "rank":
        rewrite(img, "img", np.zeros((32, 32), np.float32))
    elif kind == "size mismatch":
        rewrite(mask, "mask", np.zeros((32, 30), np.uint8))
        return "TrainData/mask/mask_3.h5"
    elif kind == "nan":
        rewrite(img, "img", np.full((32, 32, 14), np.nan, np.float32))
    elif kind == "inf":
        array = np.zeros((32, 32, 14), np.float32)
        array[1, 1, 1] = np.inf
        rewrite(img, "img", array)
    elif kind == "mask values":
        rewrite(mask, "mask", np.full((32, 32), 3, np.uint8))
        return "TrainData/mask/mask_3.h5"
    elif kind == "missing mask":
        mask.unlink()
    elif kind == "truncated":
        data = img.read_bytes()
        img.write_bytes(data[: len(data) // 3])
    elif kind == "float16 overflow":
        rewrite(img, "img", np.full((32, 32, 14), 1e6, np.float32))
    else:
        raise AssertionError(kind)
    return "TrainData/img/image_3.h5"


BAD_KINDS = {
    "band count": "12 bands, expected 14",
    "rank": "rank 3",
    "size mismatch": "mask is 32×30 but its image is 32×32",
    "nan": "NaN or infinite",
    "inf": "NaN or infinite",
    "mask values": "mask values must be 0 or 1, found 3",
    "missing mask": "has no mask",
    "truncated": "unreadable or truncated HDF5",
    "float16 overflow": "exceed the float16 range",
}


@pytest.mark.parametrize("kind", sorted(BAD_KINDS))
def test_each_bad_input_stops_ingest_naming_the_file_and_publishes_nothing(tmp_path, kind):
    write_tree(tmp_path / "good" / "north", counts=(4, 1, 1))
    dst = str(tmp_path / "dst")
    ingest(str(tmp_path / "good"), dst)
    before = {rel: storage.sha256_file(Path(dst) / rel) for rel in storage.list_files(dst)}

    write_tree(tmp_path / "bad" / "south", counts=(5, 1, 1), seed=9)  # bad file comes after good ones
    bad_file = corrupt(kind, tmp_path / "bad" / "south")
    with pytest.raises(IngestError, match=BAD_KINDS[kind]) as info:
        ingest(str(tmp_path / "bad"), dst, IngestOptions(rows_per_shard=2))
    assert bad_file.split("/")[-1] in str(info.value) and "nothing was published" in str(info.value)
    after = {rel: storage.sha256_file(Path(dst) / rel) for rel in storage.list_files(dst)}
    assert after == before, "a failed ingest must leave the destination exactly as it was"


def test_a_failed_first_ingest_leaves_no_dataset_at_all(tmp_path):
    write_tree(tmp_path / "src", counts=(4, 0, 0))
    corrupt("nan", tmp_path / "src")
    with pytest.raises(IngestError):
        ingest(str(tmp_path / "src"), str(tmp_path / "dst"), IngestOptions(rows_per_shard=1))
    assert not (tmp_path / "dst").exists() or storage.list_files(str(tmp_path / "dst")) == {}


def test_skip_mode_leaves_bad_files_out_and_lists_each_with_its_reason(tmp_path):
    write_tree(tmp_path / "src", counts=(5, 2, 0))
    corrupt("nan", tmp_path / "src")
    (tmp_path / "src/ValidData/mask/mask_2.h5").unlink()
    report = ingest(str(tmp_path / "src"), str(tmp_path / "dst"), IngestOptions(on_bad="skip", region="r"))
    skipped = {s["source"].split("/src/")[-1]: s["reason"] for s in report.skipped}
    assert set(skipped) == {"TrainData/img/image_3.h5", "ValidData/img/image_2.h5"}
    manifest = Manifest.load(str(tmp_path / "dst"))
    assert manifest.counts()["total"] == {"train": 4, "valid": 1, "test": 0}
    listed = json.loads((tmp_path / "dst/manifest.json").read_text())["skipped"]
    assert len(listed) == 2 and all(item["reason"] and item["region"] == "r" for item in listed)


def test_rerun_is_a_no_op_and_a_fresh_ingest_gives_identical_shards(tmp_path):
    write_tree(tmp_path / "src" / "north", counts=(5, 2, 2))
    dst = tmp_path / "dst"
    ingest(str(tmp_path / "src"), str(dst), IngestOptions(rows_per_shard=2))
    manifest_bytes = (dst / "manifest.json").read_bytes()
    mtimes = {p: p.stat().st_mtime_ns for p in dst.rglob("*.parquet")}
    again = ingest(str(tmp_path / "src"), str(dst), IngestOptions(rows_per_shard=2))
    assert again.unchanged == ["north"] and again.ingested == [] and again.shards_uploaded == 0
    assert (dst / "manifest.json").read_bytes() == manifest_bytes
    assert {p: p.stat().st_mtime_ns for p in dst.rglob("*.parquet")} == mtimes

    ingest(str(tmp_path / "src"), str(tmp_path / "dst2"), IngestOptions(rows_per_shard=2))
    first = {s.path: s.sha256 for s in Manifest.load(str(dst)).shards()}
    second = {s.path: s.sha256 for s in Manifest.load(str(tmp_path / "dst2")).shards()}
    assert first == second
    for rel in first:
        assert (dst / rel).read_bytes() == (tmp_path / "dst2" / rel).read_bytes()


def test_adding_a_region_adds_shards_without_rewriting_old_ones(tmp_path):
    write_tree(tmp_path / "batch1" / "north", counts=(4, 1, 1), seed=1)
    write_tree(tmp_path / "batch2" / "south", counts=(3, 1, 0), seed=2)
    dst = tmp_path / "dst"
    ingest(str(tmp_path / "batch1"), str(dst))
    old = {p: (p.stat().st_mtime_ns, p.read_bytes()) for p in dst.rglob("*.parquet")}
    report = ingest(str(tmp_path / "batch2"), str(dst))
    assert report.ingested == ["south"]
    manifest = Manifest.load(str(dst))
    assert sorted(manifest.regions) == ["north", "south"]
    for path, (mtime, data) in old.items():
        assert path.stat().st_mtime_ns == mtime and path.read_bytes() == data
    # statistics of the grown dataset equal those of both regions ingested at once
    together = tmp_path / "together"
    shutil.copytree(tmp_path / "batch1" / "north", together / "north")
    shutil.copytree(tmp_path / "batch2" / "south", together / "south")
    ingest(str(together), str(tmp_path / "dst_all"))
    both = Manifest.load(str(tmp_path / "dst_all"))
    for band in BANDS:
        assert manifest.band_stats()[band].mean == pytest.approx(both.band_stats()[band].mean, rel=1e-12)
        assert manifest.band_stats()[band].std == pytest.approx(both.band_stats()[band].std, rel=1e-12)
    assert manifest.band_stats(["north"])["B1"].mean != pytest.approx(manifest.band_stats()["B1"].mean)


def test_geotiff_patches_ingest_with_nodata_ignored(tmp_path):
    root = tmp_path / "src"
    (root / "TrainData/img").mkdir(parents=True)
    (root / "TrainData/mask").mkdir(parents=True)
    rng = np.random.default_rng(4)
    image = rng.normal(size=(32, 32, 14)).astype(np.float32)
    image[0, :5, :] = -9999.0
    mask = np.zeros((32, 32), np.uint8)
    mask[0, :10] = 1
    transform = (10.0, 0.0, 600000.0, 0.0, -10.0, 3000000.0)
    write_geotiff(root / "TrainData/img/image_1.tif", image, crs="EPSG:32645", transform=transform, nodata=-9999.0)
    write_geotiff(root / "TrainData/mask/mask_1.tif", mask, crs="EPSG:32645", transform=transform)
    ingest(str(root), str(tmp_path / "dst"), IngestOptions(region="tif"))
    manifest = Manifest.load(str(tmp_path / "dst"))
    (stored, stored_mask, meta) = read_rows(str(tmp_path / "dst"), manifest, "train")[("tif", "image_1")]
    assert (stored_mask[0, :5] == IGNORE).all() and (stored_mask[0, 5:10] == 1).all()
    assert meta["positive_pixels"] == 5
    valid = image[~(image == -9999.0).any(axis=-1)].astype(np.float64)
    moments = BandMoments(BANDS)
    moments.update(valid)
    assert manifest.band_stats()["B1"].mean == pytest.approx(moments.mean[0], rel=1e-9)


def test_a_source_with_nothing_to_ingest_is_a_clear_error(tmp_path):
    (tmp_path / "empty" / "notes").mkdir(parents=True)
    with pytest.raises(IngestError, match="no Landslide4Sense tree"):
        ingest(str(tmp_path / "empty"), str(tmp_path / "dst"))
    with pytest.raises(FileNotFoundError, match="no such directory"):
        ingest(str(tmp_path / "missing"), str(tmp_path / "dst"))


def test_float64_sources_are_accepted(tmp_path):
    written = write_tree(tmp_path / "src", counts=(2, 0, 0), dtype="float64")
    ingest(str(tmp_path / "src"), str(tmp_path / "dst"), IngestOptions(region="d"))
    manifest = Manifest.load(str(tmp_path / "dst"))
    assert_matches_source(read_rows(str(tmp_path / "dst"), manifest, "train"), written, "d")
