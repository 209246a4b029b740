"""The Ray Data pipeline on a real local Ray, reading shards from the moto S3 endpoint."""

import json
from pathlib import Path

import numpy as np
import pytest

from swinls.augment import AugmentConfig
from swinls.data import DataConfig, ShardData
from swinls.data.local import read_split
from swinls.data.ray_data import build_dataset, should_materialize, split_data_config
from swinls.ray_start import API_SERVER_ENV, LOCAL_TRAIN_POLL_S, TRAIN_POLL_ENV, local_cpus
from swinls.shards import IngestOptions, ingest
from tests.helpers import upload_tree, write_tree


@pytest.fixture(scope="module")
def s3_shards(tmp_path_factory, s3_endpoint):
    from swinls import storage

    root = tmp_path_factory.mktemp("ray-data")
    write_tree(root / "raw" / "north", counts=(8, 5, 3), seed=5)  # 8 training rows, 5 validation rows
    bucket = "s3://ray-data-tests"
    storage.filesystem(bucket)[0].mkdir("ray-data-tests")
    upload_tree(root / "raw", f"{bucket}/raw")
    ingest(f"{bucket}/raw", f"{bucket}/shards", IngestOptions(rows_per_shard=3, rows_per_group=2))
    return f"{bucket}/shards"


def sorted_rows(rows):
    order = np.argsort(rows["key"])
    return {k: np.asarray(v)[order] for k, v in rows.items()}


@pytest.mark.parametrize("materialize", [False, True])
def test_ray_dataset_streams_from_s3_and_matches_the_plain_reader(ray_local, s3_shards, materialize):
    data = ShardData(DataConfig(uri=s3_shards, bands="RGB+NIR"))
    dataset = build_dataset(data, "valid", materialize=materialize)
    rows = sorted_rows(dataset.take_batch(100, batch_format="numpy"))
    expected = sorted_rows(read_split(data, "valid"))
    assert rows["image"].shape == (5, 4, 32, 32) and rows["image"].dtype == np.float16
    np.testing.assert_array_equal(rows["key"], expected["key"])
    np.testing.assert_array_equal(rows["image"], expected["image"])
    np.testing.assert_array_equal(rows["mask"], expected["mask"])
    if materialize:  # re-iterating a materialised dataset reads nothing again and gives the same rows
        again = sorted_rows(dataset.take_batch(100, batch_format="numpy"))
        np.testing.assert_array_equal(again["image"], rows["image"])


def test_materialise_automatically_only_below_the_limit(s3_shards):
    small = ShardData(DataConfig(uri=s3_shards, materialize="auto", materialize_limit_mb=1))
    tiny_limit = ShardData(DataConfig(uri=s3_shards, materialize="auto", materialize_limit_mb=0))
    assert should_materialize(small, "train") and not should_materialize(tiny_limit, "train")
    assert local_cpus(training_workers=2) > 2  # room for Ray Data beside two training workers


def seen_by_a_ray_process(ray_local, name: str) -> str | None:
    """An environment variable as the local instance's processes have it."""
    @ray_local.remote
    def read(name: str) -> str | None:
        import os

        return os.environ.get(name)

    return ray_local.get(read.remote(name))


def test_a_local_instance_hands_its_processes_the_shorter_ray_train_poll(ray_local):
    """Set before the local Ray starts, so every process it starts has it: the Tune trial actors
    whose fits' controllers read it, not only this driver."""
    assert seen_by_a_ray_process(ray_local, TRAIN_POLL_ENV) == LOCAL_TRAIN_POLL_S


def test_a_fit_on_a_local_instance_starts_no_preemption_watcher(ray_local, tmp_path):
    """Nothing drains the one node of a local instance; the watcher would be a process per fit."""
    from ray.train import RunConfig, ScalingConfig
    from ray.train.torch import TorchTrainer
    from ray.util.state import list_actors

    TorchTrainer(lambda: None, scaling_config=ScalingConfig(num_workers=1),
                 run_config=RunConfig(name="no-watcher", storage_path=str(tmp_path))).fit()
    state_api = seen_by_a_ray_process(ray_local, API_SERVER_ENV)  # where its processes find it (ray_start.py)
    started = {actor.class_name for actor in list_actors(address=state_api, limit=10_000)}
    assert "TrainController" in started  # the fit's own actors are listed
    assert "PreemptionWatcher" not in started


def _record_keys(config):
    """A Ray Train worker: walk two epochs of its shards and write down the keys it saw."""
    import ray.train

    from swinls.augment.ops import Augmenter
    from swinls.data.ray_data import iter_worker_batches

    rank = ray.train.get_context().get_world_rank()
    augmenter = Augmenter(AugmentConfig(**config["augment"]))
    for epoch in range(2):
        seen = {}
        for split in ("train", "valid"):
            keys, shapes = [], []
            for batch in iter_worker_batches(ray.train.get_dataset_shard(split), batch_size=2, augmenter=augmenter if split == "train" else None,
                                             epoch=epoch, shuffle_buffer=4 if split == "train" else 0, seed=1):
                keys.extend(int(k) for k in batch.keys)
                shapes.append(list(batch.image.shape))
                assert batch.mask.dtype.is_floating_point is False
            seen[split] = {"keys": keys, "shapes": shapes}
        Path(config["out"], f"rank{rank}-epoch{epoch}.json").write_text(json.dumps(seen))


def _fit_recording_keys(data, out: Path, deterministic: bool = True) -> list[list[dict]]:
    """What each of two workers saw in each of two epochs, as [epoch][rank]."""
    from ray.train import RunConfig, ScalingConfig
    from ray.train.torch import TorchTrainer

    out.mkdir()
    trainer = TorchTrainer(
        _record_keys,
        train_loop_config={"out": str(out), "augment": {"flip": 0.5, "rotate_shift": 0.5}},
        scaling_config=ScalingConfig(num_workers=2, use_gpu=False),
        datasets={"train": build_dataset(data, "train", materialize=False),
                  "valid": build_dataset(data, "valid", materialize=False)},
        dataset_config=split_data_config(deterministic),
        run_config=RunConfig(name="split-test", storage_path=str(out / "ray")),
    )
    trainer.fit()
    return [[json.loads((out / f"rank{r}-epoch{epoch}.json").read_text()) for r in range(2)] for epoch in range(2)]


def test_two_workers_see_disjoint_rows_covering_each_epoch_on_two_cores(ray_local, s3_shards, tmp_path):
    data = ShardData(DataConfig(uri=s3_shards))
    runs = [_fit_recording_keys(data, tmp_path / f"run{i}") for i in range(2)]
    all_train = set(read_split(data, "train")["key"].tolist())
    all_valid = set(read_split(data, "valid")["key"].tolist())
    for seen in runs[0]:
        train = [s["train"]["keys"] for s in seen]
        assert not set(train[0]) & set(train[1]), "a training row went to both workers"
        assert set(train[0]) | set(train[1]) == all_train and sum(map(len, train)) == len(all_train)
        assert len(train[0]) == len(train[1])  # DDP needs the same number of steps on each worker
        valid = [s["valid"]["keys"] for s in seen]
        assert sorted(valid[0] + valid[1]) == sorted(all_valid), "every validation row is evaluated exactly once"
        assert all(shape[1:] == [3, 32, 32] for s in seen for shape in s["train"]["shapes"])
    # the same seed gives each worker the same rows in the same order, run after run
    assert runs[1] == runs[0]


@pytest.fixture(scope="module")
def two_region_shards(tmp_path_factory, s3_endpoint):
    """Two regions of 12 training rows, 3 rows a shard: 8 shards that a manifest lists region by region."""
    from swinls import storage

    root = tmp_path_factory.mktemp("two-regions")
    for seed, region in enumerate(("east", "west")):
        write_tree(root / "raw" / region, counts=(12, 2, 0), seed=seed)
    bucket = "s3://ray-data-mixing"
    storage.filesystem(bucket)[0].mkdir("ray-data-mixing")
    upload_tree(root / "raw", f"{bucket}/raw")
    ingest(f"{bucket}/raw", f"{bucket}/shards", IngestOptions(rows_per_shard=3, rows_per_group=3))
    return f"{bucket}/shards"


def pass_order(dataset) -> list[int]:
    return [int(k) for batch in dataset.iter_batches(batch_size=None, batch_format="numpy") for k in batch["key"]]


@pytest.mark.parametrize("materialize", [False, True])
def test_each_training_pass_reads_in_a_new_seeded_order_that_mixes_regions(ray_local, two_region_shards, materialize):
    data = ShardData(DataConfig(uri=two_region_shards, bands="RGB"))  # labelled ValidData: no carve
    east = set(read_split(ShardData(DataConfig(uri=two_region_shards, train_regions=("east",))), "train")["key"].tolist())
    dataset = build_dataset(data, "train", materialize=materialize, seed=7)
    first, second = pass_order(dataset), pass_order(dataset)
    assert sorted(first) == sorted(second) and len(first) == 24  # every row once a pass
    assert first != second  # a new order every epoch
    if not materialize:  # a stream's shards come in a new order; a materialised split's 16-row blocks do
        assert 0 < sum(k in east for k in first[:12]) < 12  # the first half is not one region read through
    again = build_dataset(data, "train", materialize=materialize, seed=7)
    assert pass_order(again) == first  # the same seed, the same orders
    unseeded = build_dataset(data, "train", materialize=materialize)
    assert pass_order(unseeded) == pass_order(unseeded)  # evaluation splits keep their order
