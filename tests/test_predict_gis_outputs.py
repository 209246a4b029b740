"""Outputs a GIS opens: Cloud-Optimized GeoTIFFs (checked by rio-cogeo's validator), a STAC item per
scene and a collection per batch (checked by pystac against the core schemas it ships), and a
quick-look whose outline is the predicted mask's."""

import datetime as dt
import json
import shutil

import matplotlib.image
import numpy as np
import pystac
import pytest
import rasterio
from pystac.validation import validate_dict
from rasterio.warp import transform as warp_points
from rio_cogeo.cogeo import cog_validate

from swinls import storage
from swinls.prediction import PredictOptions, predict
from swinls.prediction.quicklook import OUTLINE, outline


@pytest.fixture(scope="module")
def dated_scenes(prediction_inputs, tmp_path_factory):
    """The two labelled scenes; scene_0 carries its acquisition time as GeoTIFFs do."""
    folder = tmp_path_factory.mktemp("dated") / "scenes"
    shutil.copytree(prediction_inputs.scenes, folder)
    with rasterio.open(folder / "scene_0.tif", "r+") as scene:
        scene.update_tags(TIFFTAG_DATETIME="2024:07:14 05:01:29")
    return folder


@pytest.fixture(scope="module")
def folder_prediction(dated_scenes, published_model, tmp_path_factory):
    """With a threshold that makes about a third of scene_0 landslide (this tiny model's P sits near 0.5)."""
    root = tmp_path_factory.mktemp("gis")
    predict(published_model, str(dated_scenes / "scene_0.tif"), str(root / "first.tif"), PredictOptions(probability=True))
    with rasterio.open(root / "first_probability.tif") as chance:
        threshold = f"{np.quantile(chance.read(1), 2 / 3):.4f}"
    predict(published_model, str(dated_scenes), str(root / "out"), PredictOptions(probability=True, threshold=threshold))
    return root / "out", float(threshold)


def test_masks_and_probabilities_are_valid_cogs_with_overviews_and_the_prediction_tag(folder_prediction):
    folder_prediction, _ = folder_prediction
    for name in ("scene_0_prediction.tif", "scene_0_probability.tif", "crop_prediction.tif"):
        valid, errors, _ = cog_validate(str(folder_prediction / name), strict=True)
        assert valid, (name, errors)
    with rasterio.open(folder_prediction / "scene_0_prediction.tif") as mask:
        assert mask.overviews(1) == [2]  # 512 px in tiles of 256: one level, the scene in one tile
        assert mask.block_shapes == [(256, 256)] and mask.nodata == 255
        assert mask.descriptions == ("landslide",) and mask.tags()["SWINLS_PREDICTION"] == "mask"
    with rasterio.open(folder_prediction / "scene_0_probability.tif") as chance:
        assert chance.dtypes == ("float32",) and chance.descriptions == ("P(landslide)",)


def test_each_scene_has_a_stac_item_and_the_batch_a_collection_that_validate(folder_prediction, dated_scenes):
    folder_prediction, threshold = folder_prediction
    collection = pystac.Collection.from_file(str(folder_prediction / "collection.json"))
    validate_dict(collection.to_dict(), extensions=[])  # the core schema, which pystac has offline
    items = {item.id: item for item in collection.get_items()}
    assert sorted(items) == ["crop-landslides", "scene_0-landslides"]
    for item in items.values():
        validate_dict(item.to_dict(), extensions=[])
        for asset in item.assets.values():  # relative hrefs, resolved beside the item
            assert (folder_prediction / asset.href.removeprefix("./")).is_file()
    item = items["scene_0-landslides"]
    assert set(item.assets) == {"mask", "probability", "quicklook"}
    assert item.assets["mask"].media_type == pystac.MediaType.COG
    assert item.datetime == dt.datetime(2024, 7, 14, 5, 1, 29, tzinfo=dt.timezone.utc)
    assert item.properties["swinls:input_datetime"] == "2024-07-14T05:01:29+00:00"
    assert items["crop-landslides"].properties["swinls:input_datetime"] is None  # said, not invented
    card = json.loads(storage.read_bytes(item.properties["swinls:model_card"]))
    assert item.properties["swinls:bands"] == list(card["bands"])
    assert item.properties["swinls:decision"] == f"P(landslide) >= {threshold:g}"
    assert item.properties["swinls:threshold"] == threshold
    assert item.properties["proj:code"] == "EPSG:32645" and item.properties["proj:shape"] == [512, 512]
    with rasterio.open(dated_scenes / "scene_0.tif") as scene:  # the footprint holds the scene's corners
        b = scene.bounds
        xs, ys = warp_points(scene.crs, "EPSG:4326", [b.left, b.right, b.right, b.left], [b.top, b.top, b.bottom, b.bottom])
    west, south, east, north = item.bbox
    assert west <= min(xs) and east >= max(xs) and south <= min(ys) and north >= max(ys)
    assert max(min(xs) - west, east - max(xs), min(ys) - south, north - max(ys)) < 1e-4  # edges bend, a little
    ring = item.geometry["coordinates"][0]
    assert ring[0] == ring[-1] and len(ring) == 4 * 21 + 1


def test_the_quicklook_outlines_exactly_the_predicted_landslides(folder_prediction):
    folder_prediction, _ = folder_prediction
    picture = matplotlib.image.imread(folder_prediction / "scene_0_quicklook.png")[..., :3]
    with rasterio.open(folder_prediction / "scene_0_prediction.tif") as mask:
        predicted = mask.read(1) == 1  # 512 px: the picture is the scene's own size
    edge = outline(predicted)
    assert picture.shape == (512, 512, 3) and 0.2 < predicted.mean() < 0.5 and 0 < edge.sum() < predicted.sum() / 2
    is_outline = np.all(np.abs(picture - OUTLINE) < 1 / 255, axis=-1)
    assert (is_outline[edge]).all()
    assert is_outline[~edge].mean() < 0.01  # true colour may hold a few yellow pixels of its own


def test_a_prediction_to_s3_holds_its_stac_with_hrefs_that_resolve_there(dated_scenes, published_model, bucket, tmp_path):
    out = f"{bucket}/gis/prediction"
    predict(published_model, str(dated_scenes), out)
    collection = storage.read_json(f"{out}/collection.json")
    children = [link["href"] for link in collection["links"] if link["rel"] == "item"]
    assert sorted(children) == ["./crop_item.json", "./scene_0_item.json"]
    for child in children:
        item = storage.read_json(f"{out}/{child[2:]}")
        assert {a["href"] for a in item["assets"].values()} == {f"./{item['id'].removesuffix('-landslides')}{s}"
                                                                for s in ("_prediction.tif", "_quicklook.png")}
        for asset in item["assets"].values():
            assert storage.exists(f"{out}/{asset['href'][2:]}")
    copy = tmp_path / "from-s3.tif"
    copy.write_bytes(storage.read_bytes(f"{out}/scene_0_prediction.tif"))
    assert cog_validate(str(copy), strict=True)[0]  # uploaded as written: the header still first
