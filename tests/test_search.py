"""A real search on the local Ray: Optuna + ASHA, data and results on the moto S3 endpoint."""

import contextlib
import io
import json

import numpy as np
import optuna
import pytest

from swinls.model_card import Regions

from swinls import storage
from swinls.checkpoints import RunStore
from swinls.patches import read_h5_image
from swinls.prediction.model import predict_patch
from swinls.published import load_best, publish_best
from swinls.search.experiment import run_search
from swinls.shards import Manifest, ingest
from tests.conftest import FAKE_KEY_ID, FAKE_SECRET

SPACE = """\
metric: train_loss
mode: min
scope: last-2-avg
budget: {samples: 4, max_concurrent: 1}
scheduler: {type: asha, grace_period: 2, reduction_factor: 2}  # after one epoch a good rate can still trail
resources: {num_workers: 1, cpus_per_worker: 1, driver_cpus: 1}
base:
  data: {batch_size: 4, train_regions: [steep-forest, terraced-farmland]}
  model: {size: nano, decoder_channels: [32, 16, 16, 8, 8], drop_path: 0.0}
  stage1: {epochs: 3}
  stage2: {epochs: 1, lr: 0.00001}
  selftrain: {rounds: 0}
  run: {keep_checkpoints: 1}
parameters:
  stage1.lr: {choices: [0.0002, 1.0e-7]}  # one that learns from the first epoch (at 0.002 the first
                                          # epoch's loss overshoots the start, and the grace period's
                                          # last-2-avg counts it) and one that cannot learn
  data.bands: {choices: [RGB, NGB]}
"""


@pytest.fixture(scope="module")
def search(ray_local, synthetic_raw):
    storage.filesystem("s3://search-tests")[0].mkdir("search-tests")
    ingest(str(synthetic_raw), "s3://search-tests/shards")
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):  # Tune's live table, as a user watching the search sees it
        result = run_search(SPACE, data_uri="s3://search-tests/shards", storage_uri="s3://search-tests/experiments",
                            name="tiny", seed=1, verbose=1)
    result.printed = printed.getvalue()
    return result


def test_the_live_table_shows_each_trials_score_and_the_metric_it_is_ranked_by(search):
    border = "│|"  # Tune draws its tables with box characters, or ASCII where the output cannot encode them
    lines = [line.strip(border + " ") for line in search.printed.splitlines()]
    tables = [i for i, line in enumerate(lines) if line.startswith("Trial name")]
    assert tables, search.printed[-2000:]
    columns = lines[tables[-1]].split("(s)", 1)[1].split()
    assert columns[:3] == ["score", "train_loss", "epoch"]  # the space's metric; ASHA stops by the score
    final = lines[tables[-1]:]
    for row in search.trials:  # the last table, printed when the search ends, holds every trial's last values
        cells = next(line for line in final if row["trial"] in line).split()
        assert float(cells[-4]) == pytest.approx(row["value"], rel=1e-4)
        assert float(cells[-3]) == pytest.approx(row["final"], rel=1e-4)


def test_trials_are_ranked_and_the_early_stopped_ones_are_pruned_in_the_saved_study(search, tmp_path):
    statuses = [t["status"] for t in search.trials]
    assert len(statuses) == 4 and statuses[0] == "complete" and "pruned" in statuses
    assert search.trials[0]["params"]["stage1.lr"] == 0.0002
    study_file = tmp_path / "study.db"
    study_file.write_bytes(storage.read_bytes(f"{search.experiment_uri}/optuna/study.db"))
    study = optuna.load_study(study_name="study", storage=f"sqlite:///{study_file}")
    states = [t.state for t in study.trials]
    assert states.count(optuna.trial.TrialState.PRUNED) == statuses.count("pruned")
    assert states.count(optuna.trial.TrialState.COMPLETE) == statuses.count("complete")
    pruned = [t for t in study.trials if t.state == optuna.trial.TrialState.PRUNED]
    for trial in pruned:  # every epoch it ran reached Optuna, the one that got it stopped included
        steps = sorted(trial.intermediate_values)
        assert steps == list(range(1, len(steps) + 1)) and len(steps) >= 2  # the grace period
        assert trial.value is None or trial.value == trial.intermediate_values[steps[-1]]
    ranked_pruned = sorted(t["epochs"] for t in search.trials if t["status"] == "pruned")
    assert ranked_pruned == sorted(len(t.intermediate_values) for t in pruned)
    files = storage.list_files(f"{search.experiment_uri}/optuna")
    assert {"study.db", "optimization_history.png"} <= set(files)


def test_a_trial_is_scored_by_the_mean_of_its_last_two_epochs_in_the_table_the_study_and_the_card(search, tmp_path):
    study_file = tmp_path / "study.db"
    study_file.write_bytes(storage.read_bytes(f"{search.experiment_uri}/optuna/study.db"))
    study = optuna.load_study(study_name="study", storage=f"sqlite:///{study_file}")
    study_values = sorted(t.value for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE)
    expected = {}
    for row in search.trials:
        history = RunStore(f"{search.experiment_uri}/trials/{row['trial']}").latest()["history"]
        # a complete run waits for its last checkpoint; a stopped one may have saved one more epoch
        # before the stop reached it, or lost the epoch whose upload the stop cut short
        if row["status"] == "complete":
            assert len(history) == row["epochs"]
        else:
            assert abs(len(history) - row["epochs"]) <= 1
            if len(history) < row["epochs"]:
                continue
        losses = [h["train_loss"] for h in history[:row["epochs"]]]
        assert row["final"] == pytest.approx(losses[-1])
        assert row["value"] == pytest.approx(sum(losses[-2:]) / len(losses[-2:]))
        if row["status"] == "complete":
            expected[row["trial"]] = row["value"]
    assert study_values == pytest.approx(sorted(expected.values()))
    assert any(row["value"] != pytest.approx(row["final"]) for row in search.trials)  # the scope changed the score
    _, card = load_best(search.best_uri)
    assert card.objective["scope"] == "last-2-avg" and card.objective["value"] == pytest.approx(expected[card.trial])


def test_the_best_model_and_its_card_are_on_s3_and_predict_a_patch(search, synthetic_raw):
    assert search.best_model_uri.startswith("s3://search-tests/experiments/tiny/best/versions/")
    model, card = load_best(search.best_uri)
    assert card.objective["metric"] == "train_loss" and card.objective["value"] == pytest.approx(
        min(t["value"] for t in search.trials if t["status"] == "complete"))
    assert card.bands in (("B4", "B3", "B2"), ("B8", "B3", "B2"))
    assert card.data_manifest_sha256 == Manifest.load("s3://search-tests/shards").content_hash()
    assert card.regions == Regions(trained=("steep-forest", "terraced-farmland"), held_out=())
    assert set(card.metrics.per_phase) == {"stage1", "stage2"} and card.config["model"]["size"] == "nano"
    assert card.libraries["torch"] and card.libraries["ray"] and card.code_version.package
    assert len(card.normalization["mean"]) == 3
    patch = read_h5_image((synthetic_raw / "steep-forest/TestData/img/image_1.h5").read_bytes(), "p")
    mask = predict_patch(model, card, patch)
    assert mask.shape == (128, 128) and mask.dtype == np.uint8 and set(np.unique(mask)) <= {0, 1}
    for name in ("model.pt", "model_card.json"):
        blob = storage.read_bytes(search.best_model_uri.rsplit("/", 1)[0] + "/" + name)
        assert FAKE_SECRET.encode() not in blob and FAKE_KEY_ID.encode() not in blob


def test_a_crash_in_the_middle_of_publication_leaves_the_previous_best_readable(search):
    before = storage.latest_version(search.best_uri)
    trial_runs = storage.join(search.experiment_uri, "trials")
    any_run = sorted({p.split("/")[0] for p in storage.list_files(trial_runs)})[0]
    pointer = storage.read_json(storage.join(trial_runs, any_run, "checkpoints", "LATEST.json"))

    def crash():
        raise KeyboardInterrupt("driver killed between the upload and the pointer")

    with pytest.raises(KeyboardInterrupt):
        publish_best(search.best_uri, storage.join(trial_runs, any_run, "checkpoints", pointer["checkpoint"]),
                     experiment="tiny", trial=any_run, objective={"metric": "x", "mode": "min", "value": -1.0},
                     before_pointer=crash)
    after = storage.latest_version(search.best_uri)
    assert after["version"] == before["version"]
    _, card = load_best(search.best_uri)
    assert card.trial == before["metadata"]["trial"]
    assert json.loads(storage.read_published(search.best_uri, "model_card.json"))["objective"]["value"] != -1.0


def test_a_second_search_under_the_same_name_is_refused_without_resume(search):
    from swinls.search.experiment import ExperimentExists

    with pytest.raises(ExperimentExists, match="--resume"):
        run_search(SPACE, data_uri="s3://search-tests/shards", storage_uri="s3://search-tests/experiments", name="tiny")
