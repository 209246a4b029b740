from pathlib import Path

import h5py
import numpy as np
import pytest

from swinls.patches import (PatchError, decode_patch, discover, read_geotiff, read_h5_image, read_h5_mask,
                            write_geotiff, write_h5_image, write_h5_mask)
from swinls.patches.layout import natural_key


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_h5_round_trip_keeps_values_dtype_and_keys(tmp_path, dtype):
    rng = np.random.default_rng(0)
    image = rng.normal(size=(128, 128, 14))
    mask = (rng.random((128, 128)) > 0.9).astype(np.uint8)
    write_h5_image(tmp_path / "image_1.h5", image, dtype)
    write_h5_mask(tmp_path / "mask_1.h5", mask)
    with h5py.File(tmp_path / "image_1.h5") as f:
        assert list(f.keys()) == ["img"] and f["img"].dtype == np.dtype(dtype)
    back = read_h5_image((tmp_path / "image_1.h5").read_bytes(), "image_1.h5")
    np.testing.assert_array_equal(back, image.astype(dtype))
    np.testing.assert_array_equal(read_h5_mask((tmp_path / "mask_1.h5").read_bytes(), "mask_1.h5"), mask)


def test_geotiff_round_trip_keeps_bands_crs_transform_nodata_and_names(tmp_path):
    rng = np.random.default_rng(1)
    image = rng.normal(size=(64, 48, 14)).astype(np.float32)
    image[0, 0, :] = -9999.0
    transform = (10.0, 0.0, 500000.0, 0.0, -10.0, 4100000.0)
    names = tuple(f"band{i}" for i in range(14))
    write_geotiff(tmp_path / "p.tif", image, crs="EPSG:32645", transform=transform, nodata=-9999.0, band_names=names)
    back, meta = read_geotiff((tmp_path / "p.tif").read_bytes(), "p.tif")
    np.testing.assert_array_equal(back, image)
    assert meta.crs == "EPSG:32645" and meta.transform == transform and meta.nodata == -9999.0
    assert meta.band_names == names


def test_geotiff_nodata_pixels_become_ignored_labels(tmp_path):
    image = np.ones((32, 32, 14), dtype=np.float32)
    image[5, 7, 2] = -1.0
    mask = np.zeros((32, 32), dtype=np.uint8)
    mask[5, 7] = 1
    write_geotiff(tmp_path / "i.tif", image, crs="EPSG:4326", transform=(10, 0, 1000, 0, -10, 2000), nodata=-1.0)
    write_geotiff(tmp_path / "m.tif", mask, crs="EPSG:4326", transform=(10, 0, 1000, 0, -10, 2000))
    patch = decode_patch((tmp_path / "i.tif").read_bytes(), "i.tif", (tmp_path / "m.tif").read_bytes(), "m.tif")
    assert patch.nodata.sum() == 1 and patch.nodata[5, 7]
    assert patch.image[5, 7, 2] == 0.0  # stored as 0, the pixel is excluded from statistics
    assert patch.geo.crs == "EPSG:4326"


def _h5_bytes(tmp_path: Path, key: str, array) -> bytes:
    path = tmp_path / f"{key}-{np.random.default_rng().integers(1 << 30)}.h5"
    with h5py.File(path, "w") as f:
        f.create_dataset(key, data=array)
    return path.read_bytes()


@pytest.mark.parametrize("image, mask, fragment", [
    (np.zeros((128, 128, 13)), None, "image has 13 bands, expected 14"),
    (np.zeros((128, 14)), None, r"rank 3\), got shape \(128, 14\)"),
    (np.full((8, 8, 14), np.nan), None, "896 NaN or infinite values"),
    (np.where(np.arange(14) == 4, np.inf, 0.0) * np.ones((8, 8, 14)), None, "band B5"),
    (np.zeros((8, 8, 14)), np.zeros((8, 9), np.uint8), "mask is 8×9 but its image is 8×8"),
    (np.zeros((8, 8, 14)), np.full((8, 8), 2, np.uint8), "mask values must be 0 or 1, found 2"),
])
def test_invalid_patches_are_errors_that_name_the_file(tmp_path, image, mask, fragment):
    image_bytes = _h5_bytes(tmp_path, "img", image)
    mask_bytes = None if mask is None else _h5_bytes(tmp_path, "mask", mask)
    with pytest.raises(PatchError, match=fragment) as info:
        decode_patch(image_bytes, "TrainData/img/image_3.h5", mask_bytes, "TrainData/mask/mask_3.h5")
    assert "TrainData/" in str(info.value)


def test_truncated_and_garbage_files_are_reported_as_unreadable(tmp_path):
    good = _h5_bytes(tmp_path, "img", np.zeros((128, 128, 14)))
    with pytest.raises(PatchError, match="image_9.h5: unreadable or truncated HDF5"):
        decode_patch(good[: len(good) // 2], "image_9.h5")
    with pytest.raises(PatchError, match="unreadable or truncated HDF5"):
        decode_patch(b"definitely not hdf5", "image_9.h5")
    with pytest.raises(PatchError, match="no dataset 'img'.*found: data"):
        decode_patch(_h5_bytes(tmp_path, "data", np.zeros((4, 4, 14))), "image_9.h5")
    write_geotiff(tmp_path / "x.tif", np.zeros((64, 64, 14), np.float32), crs="EPSG:4326", transform=(10, 0, 1000, 0, -10, 2000), compress=None)
    data = (tmp_path / "x.tif").read_bytes()
    with pytest.raises(PatchError, match="x.tif: unreadable or truncated GeoTIFF"):
        decode_patch(data[:400], "x.tif")


def test_discover_pairs_images_and_masks_across_splits_and_regions():
    files = [
        "north/TrainData/img/image_10.h5", "north/TrainData/img/image_2.h5",
        "north/TrainData/mask/mask_10.h5", "north/TrainData/mask/mask_2.h5",
        "north/ValidData/img/image_1.h5",  # no ValidData/mask: an unlabeled validation split
        "north/TestData/img/image_1.h5",
        "north/scenes/scene_0.tif", "README.md",
        "south/TrainData/img/image_1.tif", "south/TrainData/mask/mask_1.tif",
    ]
    regions = discover(files, "unused")
    assert [r.name for r in regions] == ["north", "south"]
    north = regions[0]
    assert [(p.split, p.patch_id, p.mask is not None) for p in north.patches] == [
        ("train", "image_2", True), ("train", "image_10", True), ("valid", "image_1", False), ("test", "image_1", False)]
    assert north.problems == [] and regions[1].patches[0].mask == "south/TrainData/mask/mask_1.tif"


def test_discover_reports_structural_problems_by_file():
    files = [
        "TrainData/img/image_1.h5", "TrainData/img/image_2.h5", "TrainData/mask/mask_1.h5",
        "TrainData/mask/mask_7.h5", "TrainData/img/notes.txt",
        "ValidData/img/image_1.h5", "ValidData/img/image_2.h5", "ValidData/mask/mask_1.h5",
    ]
    (region,) = discover(files, "single")
    assert region.name == "single"
    problems = {p.source: p.reason for p in region.problems}
    assert "TrainData/mask/mask_2.h5" in problems["TrainData/img/image_2.h5"]
    assert problems["TrainData/mask/mask_7.h5"] == "mask has no image"
    assert "not a patch file" in problems["TrainData/img/notes.txt"]
    # masks in ValidData make it labeled: then every image needs one
    assert "no mask" in problems["ValidData/img/image_2.h5"]
    assert natural_key("image_2") < natural_key("image_10")
