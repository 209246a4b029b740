"""Landslide4Sense splits: submission masks named by the images, the official metrics, bad input."""

import json
import shutil
import zipfile

import h5py
import numpy as np
import pytest
import torch

from swinls.patches import PatchError, read_h5_image, read_h5_mask, write_h5_image, write_h5_mask
from swinls.prediction import PredictionError, PredictOptions, predict
from swinls.prediction.model import predict_patch
from swinls.published import load_best

NUMBERS = (3, 7, 10, 25, 100)


def unlabelled_copy(split, target):
    shutil.copytree(split / "img", target / "img")
    return target


def no_leftovers(parent):
    return not [p.name for p in parent.iterdir() if ".partial-" in p.name or ".replaced-" in p.name]


def test_submission_masks_are_named_by_each_images_number_and_equal_predict_patch(prediction_inputs, published_model, tmp_path):
    split = unlabelled_copy(prediction_inputs.split, tmp_path / "TestData")
    report = predict(published_model, str(split), str(tmp_path / "out"), PredictOptions(batch_size=2))
    out = tmp_path / "out"
    assert sorted(p.name for p in out.iterdir()) == sorted([f"mask_{n}.h5" for n in NUMBERS] + ["prediction.json", "submission.zip"])
    assert report.metrics is None and not (out / "metrics.json").exists()
    model, card = load_best(published_model)
    positives = 0
    for n in NUMBERS:
        with h5py.File(out / f"mask_{n}.h5") as handle:
            assert list(handle) == ["mask"] and handle["mask"].dtype == np.uint8 and handle["mask"].shape == (128, 128)
        mask = read_h5_mask((out / f"mask_{n}.h5").read_bytes(), "mask")
        image = read_h5_image((split / "img" / f"image_{n}.h5").read_bytes(), "image")
        np.testing.assert_array_equal(mask, predict_patch(model, card, image))
        positives += int(mask.sum())
    assert 0 < positives < len(NUMBERS) * 128 * 128  # the masks say something
    with zipfile.ZipFile(out / "submission.zip") as archive:
        assert sorted(archive.namelist()) == sorted(f"mask_{n}.h5" for n in NUMBERS)
        for name in archive.namelist():
            assert archive.read(name) == (out / name).read_bytes()
    summary = json.loads((out / "prediction.json").read_text())
    assert summary["count"] == len(NUMBERS) and summary["bands"] == ["B4", "B3", "B2"] and summary["decision"] == "argmax"
    assert no_leftovers(tmp_path)


def test_metrics_of_a_labelled_split_are_the_pixel_counts_summed_over_it(prediction_inputs, published_model, tmp_path):
    report = predict(published_model, str(prediction_inputs.split), str(tmp_path / "out"))
    written = json.loads((tmp_path / "out" / "metrics.json").read_text())
    totals = dict(tp=0, fp=0, fn=0, tn=0)
    for n in NUMBERS:
        predicted = read_h5_mask((tmp_path / "out" / f"mask_{n}.h5").read_bytes(), "p").astype(bool)
        truth = read_h5_mask((prediction_inputs.split / "mask" / f"mask_{n}.h5").read_bytes(), "t").astype(bool)
        counts = dict(tp=int((predicted & truth).sum()), fp=int((predicted & ~truth).sum()),
                      fn=int((~predicted & truth).sum()), tn=int((~predicted & ~truth).sum()))
        assert written["per_image"][f"image_{n}"] == counts
        totals = {k: totals[k] + counts[k] for k in totals}
    assert {k: written[k] for k in totals} == totals and totals["tp"] > 0
    assert written["f1"] == pytest.approx(2 * totals["tp"] / (2 * totals["tp"] + totals["fp"] + totals["fn"]))
    assert written["precision"] == pytest.approx(totals["tp"] / (totals["tp"] + totals["fp"]))
    assert written["iou"] == pytest.approx(totals["tp"] / (totals["tp"] + totals["fp"] + totals["fn"]))
    assert written["pixels"] == len(NUMBERS) * 128 * 128 and report.metrics["f1"] == written["f1"]


def test_the_cards_validation_threshold_decides_when_asked(prediction_inputs, published_model, tmp_path):
    predict(published_model, str(prediction_inputs.split), str(tmp_path / "card"), PredictOptions(threshold="card"))
    model, card = load_best(published_model)
    assert card.metrics.final["valid_best_threshold"] == 0.62
    mean, std = (np.array(card.normalization[k], np.float32) for k in ("mean", "std"))
    for n in NUMBERS:
        image = read_h5_image((prediction_inputs.split / "img" / f"image_{n}.h5").read_bytes(), "i")[..., [3, 2, 1]]
        x = torch.from_numpy(np.moveaxis((image - mean) / std, -1, 0)[None].astype(np.float32))
        with torch.no_grad():
            p = torch.softmax(model(x)["logits"], 1)[0, 1].numpy()
        mask = read_h5_mask((tmp_path / "card" / f"mask_{n}.h5").read_bytes(), "m")
        decided = p >= 0.62
        undecided = np.abs(p - 0.62) < 1e-5  # rounding between softmax and the margin's sigmoid
        assert (mask.astype(bool) == decided)[~undecided].all()
    with pytest.raises(PredictionError, match="between 0 and 1"):
        predict(published_model, str(prediction_inputs.split), str(tmp_path / "bad"), PredictOptions(threshold="1.5"))


def test_a_pca_model_projects_with_the_fitted_components_of_its_card(prediction_inputs, synthetic_shards, tmp_path):
    from swinls.shards import Manifest
    from tests.helpers import publish_model

    pca = Manifest.load(synthetic_shards).pca(["steep-forest"])
    best = publish_model(str(tmp_path / "pca-model"), bands="PCA-3", pca=pca)
    predict(best, str(prediction_inputs.split), str(tmp_path / "out"))
    model, _ = load_best(best)
    for n in NUMBERS[:2]:
        raw = read_h5_image((prediction_inputs.split / "img" / f"image_{n}.h5").read_bytes(), "i").astype(np.float64)
        components = ((raw - pca.center) / pca.scale) @ pca.components.T  # H×W×3
        x = (components - 0.0) / np.sqrt(pca.variances)
        with torch.no_grad():
            logits = model(torch.from_numpy(np.moveaxis(x, -1, 0)[None].astype(np.float32)))["logits"][0]
        margin = (logits[1] - logits[0]).numpy()
        mask = read_h5_mask((tmp_path / "out" / f"mask_{n}.h5").read_bytes(), "m")
        assert (mask == (margin > 0))[np.abs(margin) > 1e-4].all()


def test_an_existing_output_is_refused_and_replaced_only_with_overwrite(prediction_inputs, published_model, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "old.txt").write_text("from an earlier run")
    with pytest.raises(PredictionError, match="already exists.*--overwrite"):
        predict(published_model, str(prediction_inputs.split), str(out))
    assert (out / "old.txt").exists()
    with pytest.raises(PredictionError, match=r"is not an earlier prediction \(no prediction.json\)"):
        predict(published_model, str(prediction_inputs.split), str(out), PredictOptions(overwrite=True))
    assert (out / "old.txt").read_text() == "from an earlier run"  # --overwrite replaces predictions only
    (out / "old.txt").unlink()
    predict(published_model, str(prediction_inputs.split), str(out))  # an empty folder is no prediction either


def test_bad_splits_are_errors_naming_the_file_and_leave_no_output(prediction_inputs, published_model, tmp_path):
    def broken(name, damage):
        split = tmp_path / name
        shutil.copytree(prediction_inputs.split, split)
        damage(split)
        return split

    cases = [
        (broken("unnamed", lambda s: shutil.copy(s / "img/image_3.h5", s / "img/patch_a.h5")),
         PredictionError, r"patch_a\.h5: not named image_N"),
        (broken("no-mask", lambda s: (s / "mask/mask_25.h5").unlink()),
         PredictionError, r"image_25\.h5: has no mask .*expected mask_25\.h5"),
        (broken("corrupt", lambda s: (s / "img/image_10.h5").write_bytes(b"\x89HDF\r\n" + b"\0" * 40)),
         PatchError, r"image_10\.h5: unreadable or truncated HDF5"),
        (broken("small", lambda s: (write_h5_image(s / "img/image_7.h5", np.zeros((64, 64, 14), np.float32)),
                                    write_h5_mask(s / "mask/mask_7.h5", np.zeros((64, 64), np.uint8)))),
         PredictionError, r"image_7\.h5: patch is 64×64"),
        (broken("bands", lambda s: write_h5_image(s / "img/image_7.h5", np.zeros((128, 128, 12), np.float32))),
         PatchError, r"image_7\.h5: image has 12 bands, expected 14"),
    ]
    for split, kind, message in cases:
        out = tmp_path / f"out-{split.name}"
        with pytest.raises(kind, match=message):
            predict(published_model, str(split), str(out), PredictOptions(batch_size=2))
        assert not out.exists()
    assert no_leftovers(tmp_path)


def test_a_model_card_without_normalisation_is_refused(prediction_inputs, published_model, tmp_path):
    from swinls import storage

    version = storage.latest_version(published_model)["uri"]
    folder = tmp_path / "stripped"
    shutil.copytree(version, folder)
    card = json.loads((folder / "model_card.json").read_text())
    del card["normalization"]
    (folder / "model_card.json").write_text(json.dumps(card))
    with pytest.raises(PredictionError, match=r"stripped/model_card\.json: the model card has no normalisation"):
        predict(str(folder), str(prediction_inputs.split), str(tmp_path / "out"))
    card["normalization"] = {"band_set": "RGB", "inputs": ["B4", "B3", "B2"], "channels": ["B4", "B3", "B2"],
                             "mean": [0.0, 0.0, 0.0], "std": [1.0, 0.0, 1.0]}
    (folder / "model_card.json").write_text(json.dumps(card))
    with pytest.raises(PredictionError, match="non-positive standard deviation"):
        predict(str(folder / "model.pt"), str(prediction_inputs.split), str(tmp_path / "out"))
    with pytest.raises(PredictionError, match="no published model here"):
        predict(str(tmp_path), str(prediction_inputs.split), str(tmp_path / "out"))
    assert not (tmp_path / "out").exists()
