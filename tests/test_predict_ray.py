"""Ray Data batch inference against the real local Ray and the moto S3 endpoint: the same masks
as in this process, inputs and outputs in a bucket."""

import io
import json
import zipfile

import numpy as np
import rasterio

from swinls import storage
from swinls.prediction import PredictOptions, predict
from tests.conftest import FAKE_KEY_ID, FAKE_SECRET
from tests.helpers import upload_tree


def raster_bytes(data: bytes, band=1):
    with rasterio.MemoryFile(data) as memfile, memfile.open() as dataset:
        return dataset.read(band), dataset.crs, dataset.transform


def test_scenes_from_and_to_s3_on_ray_data_match_the_in_process_prediction(ray_local, bucket, prediction_inputs,
                                                                         published_model, tmp_path):
    upload_tree(prediction_inputs.scenes, f"{bucket}/scenes")
    upload_tree(prediction_inputs.root / "model", f"{bucket}/model")
    options = dict(probability=True, batch_size=8)
    on_ray = predict(f"{bucket}/model/best", f"{bucket}/scenes", f"{bucket}/out", PredictOptions(ray=True, **options))
    local = predict(published_model, str(prediction_inputs.scenes), str(tmp_path / "out"), PredictOptions(**options))
    files = storage.list_files(f"{bucket}/out")
    assert sorted(files) == sorted(p.name for p in (tmp_path / "out").iterdir()) == sorted(
        ["crop_prediction.tif", "crop_probability.tif", "scene_0_prediction.tif", "scene_0_probability.tif",
         "crop_quicklook.png", "scene_0_quicklook.png", "crop_item.json", "scene_0_item.json", "collection.json",
         "metrics.json", "prediction.json"])
    for name in ("crop_prediction.tif", "scene_0_prediction.tif", "crop_probability.tif"):
        remote, crs, transform = raster_bytes(storage.read_bytes(f"{bucket}/out/{name}"))
        with rasterio.open(tmp_path / "out" / name) as dataset:
            np.testing.assert_array_equal(remote, dataset.read(1))
            assert crs == dataset.crs and transform == dataset.transform
    assert on_ray.metrics == local.metrics
    summary = storage.read_bytes(f"{bucket}/out/prediction.json")
    assert json.loads(summary)["ray"] is True
    assert FAKE_SECRET.encode() not in summary and FAKE_KEY_ID.encode() not in summary


def test_a_split_on_s3_gives_the_same_submission_in_process_and_on_ray_data(ray_local, bucket, prediction_inputs,
                                                                          published_model, tmp_path):
    upload_tree(prediction_inputs.split, f"{bucket}/ValidData")
    local = predict(published_model, f"{bucket}/ValidData", str(tmp_path / "local"), PredictOptions(batch_size=2))
    on_ray = predict(published_model, f"{bucket}/ValidData", f"{bucket}/submission", PredictOptions(ray=True, batch_size=2))
    assert on_ray.metrics == local.metrics and local.metrics["tp"] > 0
    remote = zipfile.ZipFile(io.BytesIO(storage.read_bytes(f"{bucket}/submission/submission.zip")))
    here = zipfile.ZipFile(tmp_path / "local" / "submission.zip")
    assert remote.namelist() == here.namelist() and len(here.namelist()) == 5
    for name in here.namelist():
        assert remote.read(name) == here.read(name)


def test_a_bad_patch_read_by_a_ray_task_is_the_same_clear_error(ray_local, prediction_inputs, published_model, tmp_path):
    import shutil

    import pytest

    from swinls.patches import PatchError

    split = tmp_path / "ValidData"
    shutil.copytree(prediction_inputs.split, split)
    (split / "img" / "image_25.h5").write_bytes(b"not hdf5 at all")
    with pytest.raises(PatchError, match=r"image_25\.h5: unreadable or truncated HDF5"):
        predict(published_model, str(split), str(tmp_path / "out"), PredictOptions(ray=True, batch_size=2))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ValidData"]
