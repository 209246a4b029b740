"""Prediction outputs are committed, never merged: what an operator or a fault does to OUTPUT
loses nothing that is not an earlier prediction, and a reader never takes half a prediction for a
whole one. Local files and the moto S3 server; concurrency with real threads."""

from __future__ import annotations

import hashlib
import os
import shutil
import threading

import pytest
import rasterio

from swinls import storage
from swinls.prediction import PredictionError, PredictOptions, predict
TAG = "SWINLS_PREDICTION"  # the GeoTIFF tag the docs name
from swinls.storage import StorageError
from tests.flaky_proxy import Answer, FlakyProxy, first_matching
from tests.jobs import load_job


def upload(local, uri):
    for path in sorted(local.rglob("*")):
        if path.is_file():
            storage.put_file_atomic(path, storage.join(uri, path.relative_to(local).as_posix()))


def complete(uri) -> dict:
    """The marker of a complete prediction at a folder URI, after checking that every file it lists
    is there with the content it lists."""
    marker = storage.read_json(storage.join(uri, "prediction.json"))
    for name, digest in marker.get("files", {}).items():
        assert hashlib.sha256(storage.read_bytes(storage.join(uri, name))).hexdigest() == digest, name
    return marker


def test_a_scene_to_an_s3_folder_without_probability_writes_the_mask_and_lists_only_what_exists(
        prediction_inputs, published_model, bucket, tmp_path):
    out = f"{bucket}/out"
    report = predict(published_model, str(prediction_inputs.crop), out)
    # the crop has labels beside it: metrics
    written = ["collection.json", "crop_item.json", "crop_prediction.tif", "crop_quicklook.png", "metrics.json", "prediction.json"]
    assert sorted(storage.list_files(out)) == written and report.files == written
    assert list(complete(out)["files"]) == [name for name in written if name != "prediction.json"]
    local = predict(published_model, str(prediction_inputs.crop), str(tmp_path / "local"))
    assert local.files == written
    assert sorted(p.name for p in (tmp_path / "local").iterdir()) == local.files


def test_output_equal_to_above_or_inside_input_or_model_is_refused_and_nothing_is_touched(
        prediction_inputs, published_model, tmp_path):
    project = tmp_path / "project"
    shutil.copytree(prediction_inputs.scenes, project / "scenes")
    before = sorted(p.name for p in (project / "scenes").iterdir())
    cases = [(project / "scenes", "is INPUT itself"), (project, "contains INPUT"),
             (project / "scenes" / "out", "lies inside INPUT"),
             (tmp_path.parent, "contains INPUT")]
    for output, message in cases:
        with pytest.raises(PredictionError, match=message):
            predict(published_model, str(project / "scenes"), str(output), PredictOptions(overwrite=True))
    assert sorted(p.name for p in (project / "scenes").iterdir()) == before
    model_folder = storage.filesystem(published_model)[1]
    with pytest.raises(PredictionError, match="lies inside MODEL"):
        predict(published_model, str(project / "scenes"), f"{model_folder}/predictions", PredictOptions(overwrite=True))
    with pytest.raises(PredictionError, match="is INPUT itself"):  # one scene onto itself
        predict(published_model, str(project / "scenes" / "crop.tif"), str(project / "scenes" / "crop.tif"),
                PredictOptions(overwrite=True))
    assert sorted(p.name for p in (project / "scenes").iterdir()) == before


def test_on_s3_a_prefix_above_the_input_or_a_bucket_root_is_refused_and_the_bucket_keeps_everything(
        prediction_inputs, published_model, bucket):
    upload(prediction_inputs.scenes, f"{bucket}/project/scenes")
    storage.write_bytes_atomic(f"{bucket}/notes/readme.txt", b"someone else's")
    before = storage.list_files(bucket)
    for output, message in ((f"{bucket}/project", "contains INPUT"), (bucket, "a bucket root cannot be OUTPUT"),
                            (f"{bucket}/", "a bucket root cannot be OUTPUT")):
        with pytest.raises(PredictionError, match=message):
            predict(published_model, f"{bucket}/project/scenes", output, PredictOptions(overwrite=True))
    assert storage.list_files(bucket) == before


@pytest.mark.parametrize("where", ["local", "s3"])
def test_overwrite_replaces_an_earlier_prediction_and_refuses_to_delete_anything_else(
        prediction_inputs, published_model, where, tmp_path, request):
    out = str(tmp_path / "out") if where == "local" else request.getfixturevalue("bucket") + "/out"
    predict(published_model, str(prediction_inputs.scenes), out, PredictOptions(probability=True))
    first = complete(out)
    storage.write_bytes_atomic(storage.join(out, "notes.txt"), b"field notes")
    with pytest.raises(PredictionError, match=r"holds files no prediction wrote \(notes\.txt\)"):
        predict(published_model, str(prediction_inputs.scenes), out, PredictOptions(overwrite=True))
    assert storage.read_bytes(storage.join(out, "notes.txt")) == b"field notes"
    assert complete(out)["files"] == first["files"]  # the earlier prediction untouched
    storage.remove(storage.join(out, "notes.txt"))
    predict(published_model, str(prediction_inputs.scenes), out, PredictOptions(overwrite=True, threshold="0.9"))
    second = complete(out)
    assert sorted(storage.list_files(out)) == sorted([*second["files"], "prediction.json"])
    assert not any(name.endswith("_probability.tif") for name in storage.list_files(out))  # the old run's, removed
    assert second["decision"] != first["decision"]


def test_a_single_file_output_is_replaced_only_when_it_is_a_prediction(prediction_inputs, published_model, tmp_path):
    target = tmp_path / "mask.tif"
    shutil.copy(prediction_inputs.crop, target)  # a scene, not a prediction, at the OUTPUT path
    scene_bytes = target.read_bytes()
    with pytest.raises(PredictionError, match=f"is not a prediction this platform wrote \\(no {TAG} tag\\)"):
        predict(published_model, str(prediction_inputs.crop), str(target), PredictOptions(overwrite=True))
    assert target.read_bytes() == scene_bytes
    target.unlink()
    predict(published_model, str(prediction_inputs.crop), str(target))
    with rasterio.open(target) as mask:
        assert mask.tags()[TAG] == "mask"
    predict(published_model, str(prediction_inputs.crop), str(target), PredictOptions(overwrite=True, threshold="0.9"))


@pytest.mark.parametrize("replace", ["exchange", "two renames"])
def test_a_failure_while_replacing_a_local_output_leaves_the_earlier_prediction_in_place(
        prediction_inputs, published_model, tmp_path, monkeypatch, replace):
    """The filesystem refuses the step that moves the new prediction in (a full disk, a lost NFS
    server): OUTPUT must still be the earlier prediction, whole, and nothing left beside it."""
    out = tmp_path / "out"
    predict(published_model, str(prediction_inputs.scenes), str(out))
    first = complete(str(out))
    real_rename = os.rename

    def refusing(source, target, *args, **kwargs):
        if ".partial-" in os.fspath(source):
            raise OSError(5, "Input/output error", os.fspath(target))
        return real_rename(source, target, *args, **kwargs)

    def failing_exchange(a, b):
        raise OSError(5, "Input/output error", os.fspath(b))

    monkeypatch.setattr(os, "rename", refusing)
    from swinls.prediction import commit

    monkeypatch.setattr(commit, "exchange", failing_exchange if replace == "exchange" else lambda a, b: False)
    with pytest.raises(OSError, match="Input/output error"):
        predict(published_model, str(prediction_inputs.scenes), str(out), PredictOptions(overwrite=True, threshold="0.9"))
    assert complete(str(out)) == first
    assert [p.name for p in tmp_path.iterdir()] == ["out"]


def test_a_replace_cut_off_between_its_two_renames_is_undone_by_the_next_run(
        prediction_inputs, published_model, tmp_path):
    """Where renames cannot exchange, a run killed between parking the old prediction and moving
    the new one in leaves no OUTPUT: the next run to it puts the old one back first."""
    out = tmp_path / "out"
    predict(published_model, str(prediction_inputs.scenes), str(out))
    first = complete(str(out))
    os.rename(out, tmp_path / ".out.swinls-old-4242")  # what the kill leaves
    with pytest.raises(PredictionError, match="already exists"):
        predict(published_model, str(prediction_inputs.scenes), str(out))
    assert complete(str(out)) == first and [p.name for p in tmp_path.iterdir()] == ["out"]


def test_two_runs_to_one_new_output_one_wins_and_nothing_of_it_is_lost(prediction_inputs, published_model, tmp_path):
    out = tmp_path / "out"
    results: dict[str, object] = {}
    start = threading.Barrier(2)

    def run(name, threshold):
        start.wait()
        try:
            results[name] = predict(published_model, str(prediction_inputs.scenes), str(out),
                                    PredictOptions(threshold=threshold), log=lambda line: None)
        except PredictionError as exc:
            results[name] = exc

    threads = [threading.Thread(target=run, args=(n, t)) for n, t in (("a", "0.3"), ("b", "0.7"))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    errors = [r for r in results.values() if isinstance(r, PredictionError)]
    wins = [r for r in results.values() if not isinstance(r, PredictionError)]
    assert len(wins) == 1 and len(errors) == 1, results
    assert "under way" in str(errors[0]) or "already exists" in str(errors[0])
    marker = complete(str(out))
    assert marker["files"] and set(wins[0].files) == {*marker["files"], "prediction.json"}


def test_a_failed_overwrite_upload_never_leaves_a_marker_over_mixed_files(prediction_inputs, published_model, bucket,
                                                                          s3_endpoint, monkeypatch):
    out = f"{bucket}/out"
    predict(published_model, str(prediction_inputs.scenes), out, PredictOptions(probability=True))
    old = {name: storage.read_bytes(storage.join(out, name)) for name in storage.list_files(out)}
    old_marker = complete(out)
    refuse = first_matching(lambda r: r.method == "PUT" and r.path.endswith("_probability.tif"),
                            Answer(403, "AccessDenied"), times=100)
    with FlakyProxy(s3_endpoint, rule=refuse) as proxy:
        monkeypatch.setenv("AWS_ENDPOINT_URL", proxy.endpoint)
        with pytest.raises(OSError):
            predict(published_model, str(prediction_inputs.scenes), out,
                    PredictOptions(probability=True, overwrite=True, threshold="0.9"))
    assert proxy.failures >= 1
    files = storage.list_files(out)
    if "prediction.json" in files:  # a marker is only ever over the files it describes
        if complete(out) == old_marker:
            assert {n: storage.read_bytes(storage.join(out, n)) for n in files} == old
    else:
        assert ".swinls-pending.json" in files
    assert any(storage.read_bytes(storage.join(out, n)) != old.get(n) for n in files if n.endswith("_prediction.tif"))
    with pytest.raises(PredictionError, match="holds an unfinished prediction"):
        predict(published_model, str(prediction_inputs.scenes), out)
    predict(published_model, str(prediction_inputs.scenes), out, PredictOptions(overwrite=True))
    assert sorted(storage.list_files(out)) == sorted([*complete(out)["files"], "prediction.json"])


def test_a_probability_raster_that_may_pass_4_gb_is_written_as_bigtiff(tmp_path):
    from pathlib import Path

    from swinls.prediction.model import Decision
    from swinls.prediction.rasters import SceneInfo
    from swinls.prediction.scenes import SceneWriter

    side = 33_000  # float32: 4.4 GB uncompressed, past a classic TIFF's 32-bit offsets
    info = SceneInfo("big", "big", side, side, None, (10.0, 0.0, 0.0, 0.0, -10.0, 0.0), (1,), (None,))
    writer = SceneWriter(info, Path(tmp_path / "m.tif"), Path(tmp_path / "p.tif"), Decision())
    writer.close()
    version = int.from_bytes((tmp_path / "p.tif").read_bytes()[2:4], "little")
    assert version == 43, "a classic TIFF (42) cannot hold a probability raster this size"


def test_odd_uris_are_one_line_errors_and_never_local_folders(prediction_inputs, published_model, tmp_path,
                                                              monkeypatch):
    monkeypatch.chdir(tmp_path)
    for output, message in (("s3://", "no bucket name"), ("s3:///foo", "no bucket name"),
                            ("gs://bucket/out", "unsupported scheme gs://"), ("s3://Bad_Bucket/x", "not a valid S3 bucket")):
        with pytest.raises(StorageError, match=message):
            predict(published_model, str(prediction_inputs.crop), output)
    assert list(tmp_path.iterdir()) == []


def test_the_job_prints_one_line_for_every_refusal(prediction_inputs, published_model, tmp_path, capsys):
    predict_job = load_job("predict")
    code = predict_job.main([published_model, str(prediction_inputs.crop), "s3:///foo"])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and err.startswith("error: s3:///foo: no bucket name")
