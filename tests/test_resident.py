"""Splits held on the device: seeded per-epoch permutations, rank slices, batches on the device."""

import numpy as np
import pytest
import torch

from swinls.augment import AugmentConfig
from swinls.augment.ops import Augmenter
from swinls.data.resident import ResidentSplit, fits_on_device
from swinls.training.runner import resident_splits


def rows(n=23):
    rng = np.random.default_rng(0)
    return {"image": rng.normal(size=(n, 3, 8, 8)).astype(np.float16),
            "mask": rng.integers(0, 2, (n, 8, 8)).astype(np.uint8), "key": np.arange(n, dtype=np.int64) * 7 - 50}


def test_each_epoch_is_a_seeded_permutation_split_between_the_ranks():
    split = ResidentSplit(rows(), "cpu")
    for equal in (True, False):
        parts = [split.indices(epoch=3, shuffle=True, seed=5, rank=r, world_size=4, equal=equal) for r in range(4)]
        seen = torch.cat(parts)
        assert len(set(seen.tolist())) == len(seen)  # disjoint
        if equal:  # training: the same number of steps on every rank, at most 3 rows sit out
            assert {len(p) for p in parts} == {5} and len(seen) == 20
        else:  # evaluation: every row exactly once
            assert sorted(seen.tolist()) == list(range(23))
    again = split.indices(epoch=3, shuffle=True, seed=5, rank=1, world_size=4, equal=True)
    other_epoch = split.indices(epoch=4, shuffle=True, seed=5, rank=1, world_size=4, equal=True)
    assert torch.equal(again, split.indices(epoch=3, shuffle=True, seed=5, rank=1, world_size=4, equal=True))
    assert not torch.equal(again, other_epoch)
    assert torch.equal(split.indices(epoch=3, shuffle=False, seed=5), torch.arange(23))


def test_batches_are_the_rows_widened_and_augmented_by_key():
    data = rows()
    split = ResidentSplit(data, "cpu")
    assert split.image.dtype == torch.float16 and split.mask.dtype == torch.uint8  # stored compactly
    augmenter = Augmenter(AugmentConfig(flip=0.5, seed=1))
    batches = list(split.batches(epoch=0, batch_size=10, augmenter=augmenter, shuffle=True, seed=2))
    assert [len(b) for b in batches] == [10, 10, 3]
    for batch in batches:
        assert batch.image.dtype == torch.float32 and batch.mask.dtype == torch.int64
        take = ((batch.keys + 50) // 7).numpy()
        image, mask = augmenter(torch.from_numpy(data["image"][take]).float(), torch.from_numpy(data["mask"][take]).long(),
                                batch.keys, 0)
        assert torch.equal(batch.image, image) and torch.equal(batch.mask, mask)


def test_which_splits_stay_on_the_device(synthetic_shards):
    from swinls.data import DataConfig, ShardData
    from swinls.experiment_config import ExperimentConfig
    from swinls.training.plan import plan

    first_block = plan(ExperimentConfig())[0]  # trains, then pseudo-labels the unlabeled split

    def chosen(**settings):
        data = ShardData(DataConfig(uri=synthetic_shards, holdout_regions=("volcanic-arc",), **settings))
        return resident_splits(data, first_block)

    assert chosen() == ("train", "valid", "holdout", "unlabeled")
    assert chosen(resident="never") == ()
    assert chosen(resident="always", resident_limit_mb=0) == ("train", "valid", "holdout", "unlabeled")
    data = ShardData(DataConfig(uri=synthetic_shards, holdout_regions=("volcanic-arc",)))
    train_mb = data.projected_bytes("train") / 2**20
    assert chosen(resident_limit_mb=int(train_mb) + 1)[:1] == ("train",)  # the rest streams
    assert not fits_on_device(2**30, "auto", 512) and fits_on_device(2**29, "auto", 512)
