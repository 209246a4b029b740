"""A real multi-node Ray cluster on one machine (ray.cluster_utils: a head and two worker nodes,
each a raylet of 2 CPUs), storage on the moto S3 server: a search that loses a worker node mid-
trial, as a spot reclaim does, and the paths a cluster must refuse. tests/cluster_world.py owns
the cluster in its own process (a process joins one Ray cluster; this session has its own)."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from swinls import storage
from swinls.shards import ingest

ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.timeout(1500)  # a cluster of three nodes on two cores: minutes

SPACE = """\
metric: valid_f1
mode: max
scope: last-2-avg
budget: {samples: 3, max_concurrent: 2}
scheduler: {type: none}
resources: {num_workers: 1, cpus_per_worker: 1, driver_cpus: 1}
base:
  data: {batch_size: 8, train_regions: [steep-forest]}
  model: {size: nano, decoder_channels: [32, 16, 16, 8, 8], drop_path: 0.0}
  stage1: {epochs: 4, lr: 0.002}
  stage2: {epochs: 1, lr: 0.00001}
  selftrain: {rounds: 0}
  run: {keep_checkpoints: 1, checkpoint_every: 1, max_failures: 2}
parameters:
  data.bands: {choices: [RGB, NGB, RGB+NIR]}
"""


def run_world(tmp_path: Path, *args: str) -> dict:
    report = tmp_path / "report.json"
    subprocess.run([sys.executable, str(ROOT / "tests" / "cluster_world.py"), "--report", str(report), *args],
                   cwd=ROOT, check=True, timeout=1800)
    return json.loads(report.read_text())


@pytest.fixture(scope="module")
def cluster_data(s3_endpoint, synthetic_raw):
    storage.filesystem("s3://multinode")[0].mkdir("multinode")
    ingest(str(synthetic_raw), "s3://multinode/shards")
    storage.write_bytes_atomic("s3://multinode/space.yaml", SPACE.encode())
    return "s3://multinode/shards"


@pytest.fixture(scope="module")
def search_losing_a_node(cluster_data, tmp_path_factory):
    exp_uri = "s3://multinode/experiments/reclaimed"
    report = run_world(tmp_path_factory.mktemp("world"), "--watch", exp_uri, "--kill-when", "one-finished", "--",
                       "tune", "--space", "s3://multinode/space.yaml", "--data", cluster_data,
                       "--storage", "s3://multinode/experiments", "--name", "reclaimed")
    return exp_uri, report


def test_a_search_on_three_nodes_finishes_after_losing_one_mid_trial(search_losing_a_node):
    exp_uri, report = search_losing_a_node
    assert report["exit"] == 0, report["stderr"][-3000:] + report["stdout"][-3000:]
    assert report.get("removed_node"), f"no node was removed: {report.get('watch_errors')}"
    before, after = report["before"], report["after"]
    assert len(after) == 3 and all(p["phase"] == "stage2" and p["phase_done"] for p in after.values())

    finished_before = {t for t, p in before.items() if p["phase"] == "stage2" and p["phase_done"]}
    assert finished_before, "the node was to be lost after a trial had finished"
    for trial in finished_before:  # a finished trial is never trained again
        assert after[trial] == before[trial]

    lost = report["removed_node"]
    interrupted = [t for t, p in before.items() if t not in finished_before and p["history"][-1]["node"] == lost]
    assert interrupted
    for trial in interrupted:  # resumed from its checkpoint: the epochs saved before the loss are kept as they were
        saved, history = before[trial]["history"], after[trial]["history"]
        assert history[:len(saved)] == saved
        assert [(h["phase"], h["phase_epoch"]) for h in history] == [
            ("stage1", 1), ("stage1", 2), ("stage1", 3), ("stage1", 4), ("stage2", 1)]
        resumed = history[len(saved):]
        assert resumed and all(h["node"] != lost and h["attempt"] != saved[-1]["attempt"] for h in resumed)


def test_the_study_and_the_published_best_agree_after_the_loss(search_losing_a_node):
    exp_uri, report = search_losing_a_node
    with tempfile.TemporaryDirectory() as tmp:
        study = Path(tmp) / "study.db"
        study.write_bytes(storage.read_bytes(f"{exp_uri}/optuna/study.db"))
        with sqlite3.connect(study) as db:
            states = [row[0] for row in db.execute("SELECT state FROM trials")]
    assert states == ["COMPLETE"] * 3  # three trials, none run twice, none lost
    scores = [sum(h["valid_f1"] for h in p["history"][-2:]) / 2 for p in report["after"].values()]
    best = storage.latest_version(f"{exp_uri}/best")
    assert best["metadata"]["objective"]["value"] == pytest.approx(max(scores))


def test_a_local_path_is_refused_on_a_multi_node_cluster(cluster_data, synthetic_shards, tmp_path):
    """A dataset on the head's disk: fine for one node, missing on the others."""
    report = run_world(tmp_path, "--", "tune", "--space", "s3://multinode/space.yaml", "--data", synthetic_shards,
                       "--storage", "s3://multinode/experiments", "--name", "refused")
    assert report["exit"] == 2
    error = report["stderr"].strip().splitlines()[-1]
    assert error.startswith(f"error: --data {synthetic_shards} is a local path")
    assert "3 nodes" in error and "s3://" in error and "--shared-fs" in error
    assert not storage.exists("s3://multinode/experiments/refused")  # nothing started, nothing written
