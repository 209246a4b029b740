"""Validation that is always labelled: a region whose ValidData has no masks is validated on a
fixed carve of its TrainData, the same patches on every run, reader and ingest."""

import numpy as np
import pytest

from swinls.data import DataConfig, ShardData
from swinls.data.local import read_split
from swinls.data.transform import row_key
from swinls.data.validation import carve_cutoff, carve_draw, carve_size
from swinls.shards import IngestOptions, Manifest, ingest
from tests.helpers import move_labels_apart, write_tree


def release_2022(root, name, counts=(30, 4, 2), seed=0):
    """A region laid out like the 2022 release; its label tree beside it."""
    write_tree(root / "raw" / name, counts=counts, seed=seed)
    move_labels_apart(root / "raw" / name, root / "labels" / name, seed=seed)


def keys(rows) -> set[int]:
    return {int(k) for k in rows["key"]}


def train_keys(region: str, ids) -> set[int]:
    return {row_key(region, "train", i) for i in ids}


@pytest.fixture(scope="module")
def carved(tmp_path_factory):
    root = tmp_path_factory.mktemp("carve")
    release_2022(root, "north", seed=1)
    ingest(str(root / "raw"), str(root / "shards"), IngestOptions(rows_per_shard=7, rows_per_group=3))
    return root


def carved_ids(region, ids, fraction=0.1):
    cutoff = carve_cutoff(region, ids, fraction)
    return {i for i in ids if carve_draw(region, i) <= cutoff}


def test_the_carve_is_the_fraction_of_each_region_by_fixed_draws():
    ids = [f"image_{i}" for i in range(1, 41)]
    assert [carve_draw("north", i) for i in ids] == [carve_draw("north", i) for i in ids]  # no state, no seed
    assert len(carved_ids("north", ids)) == 4  # exactly ⌈10 % of 40⌉, where a draw below 0.1 could give none
    assert carved_ids("north", ids) != carved_ids("south", ids)  # each region draws its own
    # at least one patch validates and at least one trains
    assert [carve_size(n, 0.1) for n in (0, 1, 2, 9, 10, 11)] == [0, 0, 1, 1, 1, 2]
    assert carve_size(10, 0.95) == 9
    # a patch added to the region moves the carve by at most one patch
    grown = carved_ids("north", ids + ["image_41"])
    assert len(grown ^ carved_ids("north", ids)) <= 2


def test_unlabelled_valid_data_means_train_and_valid_split_the_training_patches(carved):
    data = ShardData(DataConfig(uri=str(carved / "shards")))
    assert data.validation.carved == ("north",) and data.validation.labelled == ()
    assert data.validation.describe().startswith("validation: 10% of TrainData carved out of north (3 patches)")
    train, valid = read_split(data, "train"), read_split(data, "valid")
    ids = [f"image_{i}" for i in range(1, 31)]
    expected_valid = train_keys("north", carved_ids("north", ids))
    assert keys(valid) == expected_valid and len(expected_valid) == 3
    assert keys(train) == train_keys("north", ids) - expected_valid  # disjoint, and together every patch
    assert (valid["mask"] != 255).any()  # labelled: the metric is defined
    assert (data.rows("train"), data.rows("valid")) == (27, 3)  # what a run is planned with: the rows it reads


def test_the_carve_survives_a_fresh_ingest_and_a_new_region(carved, tmp_path):
    before = keys(read_split(ShardData(DataConfig(uri=str(carved / "shards"))), "valid"))
    release_2022(tmp_path, "north", seed=1)
    release_2022(tmp_path, "south", counts=(20, 3, 1), seed=2)
    ingest(str(tmp_path / "raw" / "north"), str(tmp_path / "shards"), IngestOptions(region="north", rows_per_shard=4))
    ingest(str(tmp_path / "raw"), str(tmp_path / "shards"))  # south is new; north is unchanged
    data = ShardData(DataConfig(uri=str(tmp_path / "shards")))
    assert data.validation.carved == ("north", "south")
    valid = keys(read_split(data, "valid"))
    assert {k for k in valid if k in train_keys("north", [f"image_{i}" for i in range(1, 31)])} == before


def test_masks_for_valid_data_end_the_carve(carved, tmp_path):
    import shutil

    shutil.copytree(carved / "shards", tmp_path / "shards")
    ingest(str(carved / "raw"), str(tmp_path / "shards"), IngestOptions(labels=str(carved / "labels")))
    data = ShardData(DataConfig(uri=str(tmp_path / "shards")))
    assert data.validation.labelled == ("north",) and data.validation.carved == ()
    assert data.validation.describe() == "validation: ValidData of north"
    assert len(read_split(data, "train")["key"]) == 30 and len(read_split(data, "valid")["key"]) == 4
    assert Manifest.load(str(tmp_path / "shards")).regions["north"].labels == str(carved / "labels" / "north")


def test_the_fraction_is_checked(carved):
    with pytest.raises(ValueError, match="valid_fraction"):
        DataConfig(uri=str(carved / "shards"), valid_fraction=1.0)


def test_ray_data_reads_the_same_carve_as_the_plain_reader(ray_local, carved):
    from swinls.data.ray_data import build_dataset

    data = ShardData(DataConfig(uri=str(carved / "shards")))
    for split in ("train", "valid"):
        rows = build_dataset(data, split, materialize=False).take_batch(100, batch_format="numpy")
        assert keys(rows) == keys(read_split(data, split)), split


def test_a_verdict_share_of_validation_is_set_aside_by_patch_id(carved, tmp_path):
    """Retraining with --space: trials validate on one part, the verdict is judged on the other."""
    from swinls.data.validation import plan_validation

    uri = str(carved / "shards")
    whole = keys(read_split(ShardData(DataConfig(uri=uri)), "valid"))
    data = ShardData(DataConfig(uri=uri, verdict_fraction=0.5))
    seen = keys(read_split(data, "valid"))
    plan = plan_validation(data.manifest, uri, ["north"], 0.1, 0.5)
    verdict = keys(read_split_filtered(data, plan, "verdict"))
    assert seen.isdisjoint(verdict) and seen | verdict == whole and verdict
    assert keys(read_split(data, "train")) == keys(read_split(ShardData(DataConfig(uri=uri)), "train"))
    assert "50% of it set aside by patch id for the verdict" in data.validation.describe()


def read_split_filtered(data, plan, split):
    """The rows of a plan's split read the way retraining's evaluation reads them."""
    import pyarrow.parquet as pq

    from swinls import storage

    keep = plan.row_filter(split)
    out = []
    for shard in plan.shards(data.manifest, split):
        fs, path = storage.filesystem(storage.join(data.config.uri, shard.path))
        with fs.open(path, "rb") as handle:
            table = keep.apply(pq.read_table(handle, columns=["id", "region", "split"]))
        out += [row_key(r, s, i) for r, s, i in zip(table.column("region").to_pylist(), table.column("split").to_pylist(),
                                                    table.column("id").to_pylist())]
    return {"key": out}
