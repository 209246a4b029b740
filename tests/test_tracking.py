"""Tracking a team can look at: a run's learning curves drawn from its history, and its MLflow run
on a real MLflow server (tests/mlflow_server.py: SQLite backend on 127.0.0.1) holding the
resolved config and every epoch's metrics; a server that is down costs a warning, not the run."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from swinls.checkpoints import RunStore
from swinls.tracking.curves import CURVES_NAME, curves_figure
from tests.jobs import run_in_process
from tests.mlflow_server import free_port, start_server, stop_server

pytest.importorskip("mlflow")  # the tracking extra; the test extra installs it

TRAIN = ("--local", "--recipe", "tiny", "--set", "stage1.epochs=2", "--set", "stage2.epochs=1",
         "--set", "selftrain.rounds=0", "--set", "data.holdout_regions=[volcanic-arc]")


@pytest.fixture(scope="module")
def mlflow_uri(tmp_path_factory):
    uri, process = start_server(tmp_path_factory.mktemp("mlflow"))
    yield uri
    stop_server(process)


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
