"""Projection, normalisation and split selection, read without Ray."""

import json

import numpy as np
import pytest

from swinls.bands import BANDS, NAMED_SETS, OFFICIAL_STATS, PCAProjection, BandError
from swinls.data import DataConfig, ShardData
from swinls.data.local import iter_rows, read_split
from swinls.data.transform import row_key
from swinls.moments import BandMoments
from swinls.shards import IngestOptions, ManifestError, ingest
from tests.helpers import write_tree

FLOAT16 = 2.0**-10  # two float16 roundings: storage, then the normalised batch


@pytest.fixture(scope="module")
def shards(tmp_path_factory):
    root = tmp_path_factory.mktemp("data")
    written = {"north": write_tree(root / "raw" / "north", counts=(6, 3, 2), seed=1),
               "south": write_tree(root / "raw" / "south", counts=(4, 2, 1), seed=2)}
    ingest(str(root / "raw"), str(root / "shards"), IngestOptions(rows_per_shard=4, rows_per_group=2))
    return written, str(root / "shards")


def by_key(rows):
    return {int(k): (img, m) for k, img, m in zip(rows["key"], rows["image"], rows["mask"])}


def expected_rows(written, regions, split):
    out = {}
    for region in regions:
        for (s, patch_id), (image, mask) in written[region].items():
            if s == split:
                out[row_key(region, split, patch_id)] = (image, mask)
    return out


def numpy_stats(written, regions):
    pixels = np.concatenate([img.reshape(-1, 14) for r in regions for (s, _), (img, _) in written[r].items() if s == "train"])
    return pixels.astype(np.float64).mean(axis=0), pixels.astype(np.float64).std(axis=0)


@pytest.mark.parametrize("bands", sorted(NAMED_SETS) + ["B8,B11,slope"])
def test_projection_and_normalisation_match_numpy_by_hand(shards, bands):
    written, uri = shards
    data = ShardData(DataConfig(uri=uri, bands=bands, holdout_regions=("south",)))
    mean, std = numpy_stats(written, ["north"])
    names = NAMED_SETS.get(bands) or tuple(bands.split(","))
    idx = [BANDS.index(b) for b in names]
    rows = by_key(read_split(data, "train"))
    expected = expected_rows(written, ["north"], "train")
    assert set(rows) == set(expected)
    for key, (image, mask) in expected.items():
        by_hand = np.moveaxis((image[..., idx] - mean[idx]) / std[idx], -1, 0)
        got, got_mask = rows[key]
        np.testing.assert_allclose(got.astype(np.float32), by_hand, rtol=FLOAT16, atol=FLOAT16 * 4)
        np.testing.assert_array_equal(got_mask, mask)


def test_pca3_uses_the_projection_fitted_on_the_training_regions(shards):
    written, uri = shards
    data = ShardData(DataConfig(uri=uri, bands="PCA-3", train_regions=("north",)))
    moments = BandMoments(BANDS)
    for (s, _), (img, _) in written["north"].items():
        if s == "train":
            moments.update(img)
    pca = PCAProjection.fit(moments)
    rows = by_key(read_split(data, "valid"))
    for key, (image, _) in expected_rows(written, ["north"], "valid").items():
        by_hand = np.moveaxis(pca.apply(image) / np.sqrt(pca.variances), -1, 0)
        np.testing.assert_allclose(rows[key][0].astype(np.float32), by_hand, rtol=5e-3, atol=5e-3)
    np.testing.assert_allclose(data.normalization_record()["pca"]["components"], pca.components, rtol=1e-9)


def test_official_normalisation_uses_the_published_constants(shards):
    written, uri = shards
    data = ShardData(DataConfig(uri=uri, bands="RGB", normalization="official"))
    np.testing.assert_allclose(data.mean, [OFFICIAL_STATS[b].mean for b in ("B4", "B3", "B2")], rtol=1e-6)
    rows = by_key(read_split(data, "train"))
    key, (image, _) = next(iter(expected_rows(written, ["north"], "train").items()))
    by_hand = (image[..., 3] - OFFICIAL_STATS["B4"].mean) / OFFICIAL_STATS["B4"].std
    np.testing.assert_allclose(rows[key][0][0].astype(np.float32), by_hand, rtol=FLOAT16, atol=FLOAT16 * 4)


def test_splits_select_regions_and_the_unlabeled_rows(shards):
    written, uri = shards
    data = ShardData(DataConfig(uri=uri, holdout_regions=("south",)))
    assert (data.rows("train"), data.rows("valid"), data.rows("unlabeled"), data.rows("holdout")) == (6, 3, 3, 6)
    unlabeled = read_split(data, "unlabeled")
    assert (unlabeled["mask"] == 255).all()
    assert set(by_key(read_split(data, "holdout"))) == set(expected_rows(written, ["south"], "train")) | set(
        expected_rows(written, ["south"], "valid"))


def test_batches_have_the_requested_size_and_cover_the_split_once(shards):
    _, uri = shards
    data = ShardData(DataConfig(uri=uri))
    sizes, keys = [], []
    for rows in iter_rows(data, "train", batch_size=4, shuffle_seed=3):
        sizes.append(len(rows["key"]))
        keys.extend(rows["key"].tolist())
    assert sizes == [4, 4, 2] and len(set(keys)) == 10


def test_a_missing_band_statistic_is_an_error_never_a_default(shards, tmp_path):
    _, uri = shards
    manifest = json.loads(open(f"{uri}/manifest.json").read())
    for region in manifest["regions"].values():
        region["train_moments"] = None
    (tmp_path / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(ManifestError, match="no labeled training pixels"):
        ShardData(DataConfig(uri=str(tmp_path)))
    with pytest.raises(BandError, match="unknown band set 'RBG'"):
        ShardData(DataConfig(uri=uri, bands="RBG"))
    with pytest.raises(ManifestError, match="no region atlantis"):
        ShardData(DataConfig(uri=uri, holdout_regions=("atlantis",)))
