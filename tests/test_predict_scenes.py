"""Georeferenced scenes: windows blended into a mask with the scene's georeferencing, bands found
by name, nodata kept, bad rasters refused, and nothing half-written."""

import json
import warnings

import numpy as np
import pytest
import rasterio
import torch

from swinls.bands import BANDS
from swinls.patches.geotiff import write_geotiff
from swinls.prediction import Decision, Normalizer, PredictionError, PredictOptions, Predictor, WindowGrid, predict
from swinls.prediction.model import LoadedModel
from swinls.prediction.run import predict_scenes
from swinls.published import load_best


def read(path, band=1):
    with rasterio.open(path) as dataset:
        return dataset.read(band)


def write_scene(path, raster, crs="EPSG:32645", transform=(10.0, 0.0, 500000.0, 0.0, -10.0, 3100000.0), **kwargs):
    write_geotiff(path, raster, crs=crs, transform=transform, **kwargs)
    return path


def test_a_scene_not_a_multiple_of_the_window_keeps_its_crs_transform_and_size(prediction_inputs, published_model, tmp_path):
    out = tmp_path / "crop-mask.tif"
    report = predict(published_model, str(prediction_inputs.crop), str(out), PredictOptions(probability=True))
    with rasterio.open(prediction_inputs.crop) as scene, rasterio.open(out) as mask:
        assert (mask.height, mask.width) == (scene.height, scene.width) == (300, 417)
        assert mask.crs == scene.crs and mask.transform == scene.transform
        assert mask.count == 1 and mask.dtypes == ("uint8",) and mask.nodata == 255
        predicted = mask.read(1)
    assert set(np.unique(predicted)) == {0, 1}
    p = read(tmp_path / "crop-mask_probability.tif")
    assert p.dtype == np.float32 and ((p > 0.5) <= (predicted == 1)).all() and ((predicted == 1) <= (p >= 0.5)).all()
    truth = read(prediction_inputs.scenes / "crop_mask.tif").astype(bool)
    tp, fp, fn = (int((a & b).sum()) for a, b in ((predicted == 1, truth), (predicted == 1, ~truth), (predicted == 0, truth)))
    assert report.metrics["tp"] == tp and report.metrics["fp"] == fp and report.metrics["fn"] == fn
    assert report.metrics["f1"] == pytest.approx(2 * tp / (2 * tp + fp + fn))
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


def test_away_from_overlaps_the_scene_mask_is_each_windows_own_prediction(prediction_inputs, published_model, tmp_path):
    out = tmp_path / "mask.tif"
    predict(published_model, str(prediction_inputs.crop), str(out), PredictOptions(probability=True))
    mask, p = read(out), read(tmp_path / "mask_probability.tif")
    model, card = load_best(published_model)
    mean, std = (np.array(card.normalization[k], np.float32)[:, None, None] for k in ("mean", "std"))
    with rasterio.open(prediction_inputs.crop) as dataset:
        scene = dataset.read([BANDS.index(b) + 1 for b in card.normalization["inputs"]]).astype(np.float32)
    grid = WindowGrid(300, 417, 128, 32)
    origins = [grid.origin(r, c) for r in range(grid.rows) for c in range(grid.cols)]
    coverage = np.zeros((300, 417), int)
    for y0, x0 in origins:
        coverage[max(y0, 0):y0 + 128, max(x0, 0):x0 + 128] += 1
    pad = 200
    padded = np.pad(scene, ((0, 0), (pad, pad), (pad, pad)), mode="reflect")
    compared = 0
    for y0, x0 in origins:
        x = (padded[:, pad + y0:pad + y0 + 128, pad + x0:pad + x0 + 128] - mean) / std
        with torch.no_grad():
            logits = model(torch.from_numpy(x[None]))["logits"][0]
        margin = (logits[1] - logits[0]).numpy()
        inside = np.zeros((300, 417), bool)
        inside[max(y0, 0):y0 + 128, max(x0, 0):x0 + 128] = True
        alone = inside & (coverage == 1)
        ys, xs = np.nonzero(alone)
        own = margin[ys - y0, xs - x0]
        sure = np.abs(own) > 1e-4
        assert (mask[ys, xs][sure] == (own[sure] > 0)).all()
        np.testing.assert_allclose(p[ys, xs], 1 / (1 + np.exp(-own)), atol=2e-5)
        compared += len(ys)
    assert compared > 0.3 * 300 * 417


class SmoothPlusEdgeEffect(torch.nn.Module):
    """Landslide logit = the (smooth) input band + a ramp across the window, like a network's
    border effects: neighbouring windows disagree where they overlap."""

    def forward(self, x):
        across = torch.linspace(0, 2, x.shape[-1])[None, None, :]
        return {"logits": torch.stack([torch.zeros_like(x[:, 0]), x[:, 0] + across], dim=1)}


def smooth_prediction(scene, out, overlap):
    normalizer = Normalizer(("B4",), ("B4",), np.zeros(1, np.float32), np.ones(1, np.float32))
    loaded = LoadedModel("smooth", {}, normalizer, Predictor(SmoothPlusEdgeEffect()))
    predict_scenes(loaded, Decision(), str(scene), str(out), PredictOptions(probability=True, overlap=overlap), log=lambda m: None)
    p = read(out.parent / f"{out.stem}_probability.tif").astype(np.float64)
    return np.log(p / (1 - p))


def test_blending_leaves_no_seam_where_a_model_disagrees_with_itself_across_windows(tmp_path):
    rows, cols = np.mgrid[0:300, 0:417]
    raster = np.zeros((300, 417, 14), np.float32)
    raster[..., BANDS.index("B4")] = 0.002 * cols + 0.001 * rows  # smooth: 0.002 per pixel
    scene = write_scene(tmp_path / "ramp.tif", raster, band_names=BANDS)
    blended = smooth_prediction(scene, tmp_path / "blended.tif", overlap=32)
    tiled = smooth_prediction(scene, tmp_path / "tiled.tif", overlap=0)
    jump = lambda m: max(np.abs(np.diff(m, axis=1)).max(), np.abs(np.diff(m, axis=0)).max())  # noqa: E731
    assert jump(tiled) > 1.5  # without blending the windows' edges show
    assert jump(blended) < 0.1  # blended, no step larger than the cross-fade's slope
    assert np.abs(blended - raster[..., 3] - 1.0).max() < 0.95  # the smooth part came through


def test_bands_found_by_description_in_any_order_give_the_same_mask(prediction_inputs, published_model, tmp_path):
    with rasterio.open(prediction_inputs.crop) as dataset:
        raster, crs, transform = np.moveaxis(dataset.read(), 0, -1), dataset.crs, dataset.transform
    order = np.random.default_rng(0).permutation(14)
    names = [f"B{int(BANDS[i][1:]):02d}" if BANDS[i].startswith("B") else BANDS[i].upper() for i in order]
    shuffled = np.concatenate([raster[..., order], raster[..., :1]], axis=-1)  # plus a band nobody asked for
    write_scene(tmp_path / "shuffled.tif", shuffled, crs=crs, transform=transform, band_names=names + ["B8A"])
    predict(published_model, str(prediction_inputs.crop), str(tmp_path / "ordered-mask.tif"))
    predict(published_model, str(tmp_path / "shuffled.tif"), str(tmp_path / "shuffled-mask.tif"))
    np.testing.assert_array_equal(read(tmp_path / "ordered-mask.tif"), read(tmp_path / "shuffled-mask.tif"))


def test_nodata_pixels_are_255_in_the_mask_and_nan_in_the_probability(prediction_inputs, published_model, tmp_path):
    with rasterio.open(prediction_inputs.crop) as dataset:
        raster, crs, transform = np.moveaxis(dataset.read(), 0, -1), dataset.crs, dataset.transform
    raster[40:90, 200:260, BANDS.index("B3")] = -9999.0  # a gap in one band the model reads
    raster[0:10, 0:10, BANDS.index("B9")] = -9999.0  # and one in a band it does not
    write_scene(tmp_path / "gappy.tif", raster, crs=crs, transform=transform, nodata=-9999.0, band_names=BANDS)
    predict(published_model, str(tmp_path / "gappy.tif"), str(tmp_path / "gappy-mask.tif"), PredictOptions(probability=True))
    mask, p = read(tmp_path / "gappy-mask.tif"), read(tmp_path / "gappy-mask_probability.tif")
    gap = np.zeros(mask.shape, bool)
    gap[40:90, 200:260] = True
    assert (mask[gap] == 255).all() and (mask[~gap] != 255).all()
    assert np.isnan(p[gap]).all() and not np.isnan(p[~gap]).any()


def test_a_folder_of_scenes_gets_a_mask_each_and_metrics_per_scene(prediction_inputs, published_model, tmp_path):
    report = predict(published_model, str(prediction_inputs.scenes), str(tmp_path / "out"))
    out = tmp_path / "out"
    assert sorted(p.name for p in out.iterdir()) == [
        "collection.json", "crop_item.json", "crop_prediction.tif", "crop_quicklook.png", "metrics.json", "prediction.json",
        "scene_0_item.json", "scene_0_prediction.tif", "scene_0_quicklook.png"]
    metrics = json.loads((out / "metrics.json").read_text())
    totals = {"tp": 0, "fp": 0, "fn": 0}
    for name in ("scene_0", "crop"):
        predicted, truth = read(out / f"{name}_prediction.tif") == 1, read(prediction_inputs.scenes / f"{name}_mask.tif") == 1
        counts = {"tp": int((predicted & truth).sum()), "fp": int((predicted & ~truth).sum()), "fn": int((~predicted & truth).sum())}
        assert {k: metrics["per_scene"][name][k] for k in counts} == counts
        totals = {k: totals[k] + counts[k] for k in counts}
    assert {k: metrics[k] for k in totals} == totals and report.metrics["scenes"] == 2


def test_bad_scenes_are_errors_naming_the_file_and_what_is_wrong(prediction_inputs, published_model, tmp_path):
    raster = np.ones((200, 150, 14), np.float32)
    without_red = write_scene(tmp_path / "no-red.tif", np.delete(raster, 3, axis=-1), band_names=[b for b in BANDS if b != "B4"])
    five = write_scene(tmp_path / "five.tif", raster[..., :5])
    corrupt = tmp_path / "corrupt.tif"
    corrupt.write_bytes(b"II*\x00" + bytes(range(256)) * 4)
    for scene, message in ((without_red, r"no-red\.tif: the model needs band B4, which the scene lacks"),
                           (five, r"five\.tif: 5 bands without descriptions"),
                           (corrupt, r"corrupt\.tif: not a readable raster"),
                           (tmp_path / "absent.tif", r"absent\.tif: no such file")):
        with pytest.raises(PredictionError, match=message):
            predict(published_model, str(scene), str(tmp_path / "out.tif"))
        assert not (tmp_path / "out.tif").exists()
    folder = tmp_path / "many"
    folder.mkdir()
    write_scene(folder / "good.tif", raster, band_names=BANDS)
    corrupt.rename(folder / "bad.tif")
    with pytest.raises(PredictionError, match=r"bad\.tif: not a readable raster"):  # found before any work is done
        predict(published_model, str(folder), str(tmp_path / "many-out"))
    assert not (tmp_path / "many-out").exists()


def test_a_scene_without_crs_is_predicted_with_a_warning(published_model, tmp_path):
    raster = np.random.default_rng(0).normal(size=(140, 150, 14)).astype(np.float32)
    scene = write_scene(tmp_path / "nocrs.tif", raster, crs=None, transform=(1, 0, 0, 0, -1, 140))
    with pytest.warns(UserWarning, match=r"nocrs\.tif: the scene has no CRS"):
        predict(published_model, str(scene), str(tmp_path / "nocrs-mask.tif"))
    with rasterio.open(tmp_path / "nocrs-mask.tif") as mask:
        assert mask.crs is None and mask.shape == (140, 150)
    with pytest.warns(UserWarning):
        predict(published_model, str(scene), str(tmp_path / "folder"))
    item = json.loads((tmp_path / "folder" / "nocrs_item.json").read_text())
    assert item["geometry"] is None and "bbox" not in item  # no place on Earth, rather than pixel coordinates
    assert item["properties"]["proj:code"] is None and item["properties"]["proj:shape"] == [140, 150]  # the spec: null, no CRS


def test_a_failure_midway_leaves_neither_output_nor_staging_behind(prediction_inputs, published_model, tmp_path):
    from swinls.prediction.model import load_for_prediction

    loaded = load_for_prediction(published_model)

    class Failing(Predictor):
        calls = 0

        def margins(self, image):
            Failing.calls += 1
            if Failing.calls == 3:
                raise RuntimeError("the machine went away")
            return super().margins(image)

    loaded.predictor = Failing(loaded.predictor.model)
    for target in (tmp_path / "folder", tmp_path / "one.tif"):
        Failing.calls = 0
        source = prediction_inputs.scenes if target.suffix == "" else prediction_inputs.crop
        with pytest.raises(RuntimeError, match="went away"):
            predict_scenes(loaded, Decision(), str(source), str(target), PredictOptions(batch_size=4, probability=True),
                           log=lambda m: None)
        assert sorted(p.name for p in tmp_path.iterdir()) == []
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a complete run afterwards is unaffected
        predict(published_model, str(prediction_inputs.crop), str(tmp_path / "one.tif"))
    assert (tmp_path / "one.tif").exists()


def test_the_file_layout_and_a_scene_smaller_than_a_window_change_nothing(prediction_inputs, published_model, tmp_path):
    with rasterio.open(prediction_inputs.crop) as dataset:
        profile, data, descriptions = dataset.profile, dataset.read(), dataset.descriptions
    profile.update(tiled=False, blockysize=7, compress=None, interleave="band")  # strips of 7 rows, band by band
    profile.pop("blockxsize", None)
    with rasterio.open(tmp_path / "striped.tif", "w", **profile) as out:
        out.write(data)
        out.descriptions = descriptions
    with rasterio.open(tmp_path / "striped.tif") as check:
        assert check.block_shapes[0] == (7, 417) and not check.profile.get("tiled")
    predict(published_model, str(prediction_inputs.crop), str(tmp_path / "tiled-mask.tif"))
    predict(published_model, str(tmp_path / "striped.tif"), str(tmp_path / "striped-mask.tif"))
    np.testing.assert_array_equal(read(tmp_path / "tiled-mask.tif"), read(tmp_path / "striped-mask.tif"))
    small = write_scene(tmp_path / "small.tif", np.moveaxis(data[:, :50, :70], 0, -1), band_names=BANDS)
    predict(published_model, str(small), str(tmp_path / "small-mask.tif"))
    with rasterio.open(tmp_path / "small-mask.tif") as mask:
        assert mask.shape == (50, 70) and set(np.unique(mask.read(1))) <= {0, 1}
