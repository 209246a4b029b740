"""Tracking a team can look at: a run's learning curves drawn from its history, and its MLflow run
on a real MLflow server (swinls.tracking.local_server: SQLite backend on 127.0.0.1) holding the
resolved config and every epoch's metrics; a server that is down costs a warning, not the run."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from swinls.checkpoints import RunStore
from swinls.tracking.curves import CURVES_NAME, curves_figure
from tests.jobs import run_in_process
from swinls.ports import free_port

pytest.importorskip("mlflow")  # the tracking extra; the test extra installs it

SEARCH = """\
metric: valid_f1
mode: max
budget: {samples: 2, max_concurrent: 2}
scheduler: {type: none}
resources: {num_workers: 1, cpus_per_worker: 1, driver_cpus: 1}
base:
  data: {batch_size: 8, train_regions: [steep-forest]}
  model: {size: nano, decoder_channels: [32, 16, 16, 8, 8], drop_path: 0.0}
  stage1: {epochs: 1, lr: 0.002}
  stage2: {epochs: 1, lr: 0.00001}
  selftrain: {rounds: 0}
parameters:
  data.bands: {choices: [RGB, NGB]}
"""
TRAIN = ("--local", "--recipe", "tiny", "--set", "stage1.epochs=2", "--set", "stage2.epochs=1",
         "--set", "selftrain.rounds=0", "--set", "data.holdout_regions=[volcanic-arc]")


@pytest.fixture(scope="module")
def tracked_run(mlflow_uri, synthetic_shards, tmp_path_factory):
    storage = tmp_path_factory.mktemp("runs")
    code, out, err = run_in_process("train", *TRAIN, "--data", synthetic_shards, "--storage", str(storage),
                                    "--name", "tracked", "--mlflow", mlflow_uri)
    assert code == 0, err
    return storage / "tracked", out


def test_a_runs_config_and_every_epoch_read_back_from_mlflow(mlflow_uri, tracked_run):
    from mlflow import MlflowClient

    run_dir, out = tracked_run
    history = RunStore(str(run_dir)).latest()["history"]
    client = MlflowClient(mlflow_uri)
    experiment = client.get_experiment_by_name("swinls-train")
    [run] = client.search_runs([experiment.experiment_id], "attributes.run_name = 'tracked'")
    assert f"tracking: MLflow run {run.info.run_id} at {mlflow_uri}" in out
    assert run.info.status == "FINISHED"
    assert run.data.params["stage1.epochs"] == "2" and run.data.params["model.size"] == "nano"
    assert run.data.params["data.holdout_regions"] == "['volcanic-arc']"
    assert len(history) == 3  # 2 + 1 epochs
    for key in ("train_loss", "valid_f1", "valid_ap", "holdout_f1", "lr"):
        logged = sorted((m.step, m.value) for m in client.get_metric_history(run.info.run_id, key))
        assert [step for step, _ in logged] == [h["epoch"] for h in history], key
        np.testing.assert_allclose([value for _, value in logged], [h[key] for h in history], err_msg=key)
    assert run.data.tags["swinls.run_uri"] == str(run_dir)
    assert run.data.tags["swinls.checkpoint"].startswith(str(run_dir / "checkpoints"))
    assert [a.path for a in client.list_artifacts(run.info.run_id)] == [CURVES_NAME]


def test_every_run_draws_its_curves_from_its_history(tracked_run):
    run_dir, out = tracked_run
    assert (run_dir / CURVES_NAME).read_bytes().startswith(b"\x89PNG")
    assert f"learning curves: {run_dir / CURVES_NAME}" in out
    history = RunStore(str(run_dir)).latest()["history"]
    figure = curves_figure(history)
    lines = {line.get_gid(): line for ax in figure.axes for line in ax.lines if line.get_gid()}  # not the phase marks
    assert set(lines) == {"train_loss", "valid_f1", "holdout_f1", "valid_ap", "holdout_ap"}
    for key, line in lines.items():
        np.testing.assert_array_equal(line.get_xdata(), [h["epoch"] for h in history])
        np.testing.assert_allclose(line.get_ydata(), [h[key] for h in history])
    code, redrawn, err = run_in_process("plot", str(run_dir), "--out", str(run_dir / "again.png"))
    assert code == 0 and "3 epochs (stage1, stage2)" in redrawn, err
    assert (run_dir / "again.png").read_bytes().startswith(b"\x89PNG")


def test_a_tracking_server_that_is_down_costs_one_warning_and_not_the_run(synthetic_shards, tmp_path):
    down = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        code, out, err = run_in_process("train", *TRAIN, "--data", synthetic_shards, "--storage", str(tmp_path),
                                        "--name", "untracked", "--mlflow", down)
    assert code == 0, err
    said = [str(w.message) for w in caught if "MLflow tracking" in str(w.message)]
    assert len(said) == 1 and said[0].startswith(f"MLflow tracking at {down} stopped, the run goes on untracked")
    assert len(RunStore(str(tmp_path / "untracked")).latest()["history"]) == 3


def test_a_search_is_a_parent_run_with_a_child_run_per_trial(mlflow_uri, ray_local, synthetic_shards, tmp_path):
    from mlflow import MlflowClient

    space = tmp_path / "space.yaml"
    space.write_text(SEARCH)
    code, out, err = run_in_process("tune", "--space", str(space), "--data", synthetic_shards,
                                    "--storage", str(tmp_path / "runs"), "--name", "tracked-search", "--mlflow", mlflow_uri)
    assert code == 0, err[-3000:]
    client = MlflowClient(mlflow_uri)
    experiment = client.get_experiment_by_name("swinls-search")
    [parent] = client.search_runs([experiment.experiment_id], "attributes.run_name = 'tracked-search'")
    assert f"tracking: MLflow run {parent.info.run_id} at {mlflow_uri} (a child run per trial)" in out
    assert parent.info.status == "FINISHED" and parent.data.params["space.samples"] == "2"
    assert parent.data.tags["swinls.best_model"].endswith("model.pt")
    children = client.search_runs([experiment.experiment_id], f"tags.mlflow.parentRunId = '{parent.info.run_id}'")
    trials = tmp_path / "runs" / "tracked-search" / "trials"
    assert sorted(c.info.run_name for c in children) == sorted(p.name for p in trials.iterdir())
    assert {c.data.tags["swinls.sampled.data.bands"] for c in children} <= {"RGB", "NGB"}
    for child in children:
        history = RunStore(str(trials / child.info.run_name)).latest()["history"]
        logged = sorted((m.step, m.value) for m in client.get_metric_history(child.info.run_id, "valid_f1"))
        assert [step for step, _ in logged] == [h["epoch"] for h in history]
        np.testing.assert_allclose([v for _, v in logged], [h["valid_f1"] for h in history])
        assert child.data.params["data.bands"] == child.data.tags["swinls.sampled.data.bands"]
        assert (trials / child.info.run_name / CURVES_NAME).exists()
    # the trials on one plot, from their recorded histories
    from swinls.tracking.overviews import TRIALS_NAME, trials_figure

    assert (tmp_path / "runs" / "tracked-search" / TRIALS_NAME).read_bytes().startswith(b"\x89PNG")
    histories = {p.name: RunStore(str(p)).latest()["history"] for p in trials.iterdir()}
    lines = {line.get_gid(): line for line in trials_figure(histories, "valid_f1").axes[0].lines}
    assert set(lines) == set(histories)
    for trial, line in lines.items():
        np.testing.assert_allclose(line.get_ydata(), [h["valid_f1"] for h in histories[trial]])
