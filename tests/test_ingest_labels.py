"""Masks that arrive apart from the images (the 2022 release, then its label archive): `--labels`."""

import shutil

import numpy as np
import pytest

from swinls.patches import read_h5_mask
from swinls.shards import IngestError, IngestOptions, Manifest, ingest
from swinls.shards.labels import LabelsError
from tests.helpers import move_labels_apart, upload_tree, write_tree
from tests.test_ingest import read_rows


def labelled(manifest: Manifest, split: str) -> tuple[int, int]:
    shards = manifest.shards([split])
    return sum(s.rows for s in shards), sum(s.labeled_rows for s in shards)


@pytest.fixture
def release_2022(tmp_path):
    tree, labels = tmp_path / "release" / "iberia", tmp_path / "labels"
    write_tree(tree, counts=(4, 3, 2), seed=3)
    masks = move_labels_apart(tree, labels)
    return tree, labels, masks


def test_masks_given_later_are_laid_over_the_images_and_kept_by_later_ingests(tmp_path, release_2022):
    tree, labels, masks = release_2022
    dst = str(tmp_path / "dst")
    ingest(str(tree), dst)
    before = Manifest.load(dst)
    assert labelled(before, "valid") == (3, 0) and labelled(before, "test") == (2, 0)

    report = ingest(str(tree), dst, IngestOptions(labels=str(labels)))
    assert report.ingested == ["iberia"]
    after = Manifest.load(dst)
    assert labelled(after, "valid") == (3, 3) and labelled(after, "test") == (2, 2)
    assert after.regions["iberia"].labels == str(labels)
    assert after.regions["iberia"].source_fingerprint != before.regions["iberia"].source_fingerprint
    rows = {split: read_rows(dst, after, split) for split in ("valid", "test")}
    for (split, patch_id), path in masks.items():
        np.testing.assert_array_equal(rows[split][("iberia", patch_id)][1], read_h5_mask(path.read_bytes(), str(path)))
    # train shards are content-addressed: the same bytes, not a second copy
    assert {s.sha256 for s in after.shards(["train"])} == {s.sha256 for s in before.shards(["train"])}

    again = ingest(str(tree), dst)  # the nightly command, without --labels: keeps what it has
    assert again.unchanged == ["iberia"] and labelled(Manifest.load(dst), "valid") == (3, 3)


def test_labels_in_a_bucket_over_a_local_source(tmp_path, release_2022, bucket):
    tree, labels, masks = release_2022
    upload_tree(labels, f"{bucket}/l4s-labels")
    dst = str(tmp_path / "dst")
    ingest(str(tree), dst, IngestOptions(labels=f"{bucket}/l4s-labels"))
    manifest = Manifest.load(dst)
    assert labelled(manifest, "valid") == (3, 3)
    assert manifest.regions["iberia"].labels == f"{bucket}/l4s-labels"


def test_labels_for_a_folder_of_regions_match_by_region_name(tmp_path):
    for seed, name in enumerate(("north", "south")):
        write_tree(tmp_path / "src" / name, counts=(2, 2, 1), seed=seed)
        move_labels_apart(tmp_path / "src" / name, tmp_path / "labels" / name, seed=seed)
    dst = str(tmp_path / "dst")
    ingest(str(tmp_path / "src"), dst, IngestOptions(labels=str(tmp_path / "labels")))
    manifest = Manifest.load(dst)
    assert labelled(manifest, "valid") == (4, 4)
    assert manifest.regions["south"].labels == str(tmp_path / "labels" / "south")


def test_labels_for_a_region_the_source_lacks_are_a_clear_error_and_publish_nothing(tmp_path, release_2022):
    tree, labels, _ = release_2022
    (tmp_path / "by-region").mkdir()
    labels.rename(tmp_path / "by-region" / "elsewhere")
    dst = tmp_path / "dst"
    with pytest.raises(LabelsError, match=r"holds masks for elsewhere, which .* does not hold \(its regions: iberia\)"):
        ingest(str(tree), str(dst), IngestOptions(labels=str(tmp_path / "by-region")))
    assert not dst.exists()


def test_a_mask_in_both_places_or_without_an_image_names_the_file(tmp_path, release_2022):
    tree, labels, _ = release_2022
    (tree / "ValidData" / "mask").mkdir()
    shutil.copy(labels / "ValidData" / "mask" / "mask_1.h5", tree / "ValidData" / "mask" / "mask_1.h5")
    with pytest.raises(LabelsError, match=r"labels/ValidData/mask/mask_1.h5: the source has this mask too"):
        ingest(str(tree), str(tmp_path / "dst"), IngestOptions(labels=str(labels)))

    (tree / "ValidData" / "mask" / "mask_1.h5").unlink()
    (tree / "ValidData" / "mask").rmdir()
    shutil.copy(labels / "ValidData" / "mask" / "mask_1.h5", labels / "ValidData" / "mask" / "mask_9.h5")
    with pytest.raises(IngestError, match=r"labels/ValidData/mask/mask_9.h5.*mask has no image"):
        ingest(str(tree), str(tmp_path / "dst"), IngestOptions(labels=str(labels)))
    assert not (tmp_path / "dst").exists()


def test_an_empty_or_missing_labels_source_is_a_clear_error(tmp_path, release_2022):
    tree, _, _ = release_2022
    with pytest.raises(LabelsError, match=r"nowhere: no such directory"):
        ingest(str(tree), str(tmp_path / "dst"), IngestOptions(labels=str(tmp_path / "nowhere")))
    (tmp_path / "empty").mkdir()
    with pytest.raises(LabelsError, match=r"empty: no masks found"):
        ingest(str(tree), str(tmp_path / "dst"), IngestOptions(labels=str(tmp_path / "empty")))
