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
from tests.cluster_world import cluster_env, finished, ray_address_kept, run_pointers

ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.timeout(1500)  # a cluster of three nodes on two cores: minutes

SPACE = """\
metric: valid_f1
mode: max
scope: last-2-avg
budget: {samples: 2, max_concurrent: 1}  # one after the other: one finished, one mid-run when a node goes
scheduler: {type: none}
resources: {num_workers: 1, cpus_per_worker: 1, driver_cpus: 1}
base:
  data: {batch_size: 8, train_regions: [steep-forest]}
  model: {size: nano, decoder_channels: [32, 16, 16, 8, 8], drop_path: 0.0}
  stage1: {epochs: 6, lr: 0.002}
  stage2: {epochs: 1, lr: 0.00001}
  selftrain: {rounds: 0}
  run: {keep_checkpoints: 1, checkpoint_every: 1, max_failures: 2}
parameters:
  data.bands: {choices: [RGB, NGB, RGB+NIR]}
"""


def run_world(tmp_path: Path, *args: str, env: dict | None = None) -> dict:
    report = tmp_path / "report.json"
    with ray_address_kept():  # also when the world is killed before its own shutdown
        subprocess.run([sys.executable, str(ROOT / "tests" / "cluster_world.py"), "--report", str(report), *args],
                       cwd=ROOT, check=True, timeout=1800, env={**cluster_env(), **(env or {})})
    return json.loads(report.read_text())


def what_happened(report: dict) -> str:
    """The job's last output, and where it was stuck if it outlived its time."""
    return report.get("hung", "") + report["stderr"][-3000:] + report["stdout"][-3000:]


def study_states(exp_uri: str) -> list[str]:
    with tempfile.TemporaryDirectory() as tmp:
        study = Path(tmp) / "study.db"
        study.write_bytes(storage.read_bytes(f"{exp_uri}/optuna/study.db"))
        with sqlite3.connect(study) as db:
            return [row[0] for row in db.execute("SELECT state FROM trials ORDER BY number")]


def check_resumed(before: dict, after: dict, phases: list[tuple[str, int]], lost_node: str | None = None) -> list[str]:
    """Finished runs untouched; every interrupted run completed the whole plan, keeping the epochs
    saved before the loss as they were. Returns the runs that went on in a new attempt (on another
    node when one was lost): from their first epoch of a new attempt on, all are new."""
    done_before = {t for t, p in before.items() if finished(p)}
    for run in done_before:  # a finished run is never trained again
        assert after[run] == before[run]
    resumed_runs = []
    for run in (t for t in before if t not in done_before):
        saved, history = before[run]["history"], after[run]["history"]
        assert history[:len(saved)] == saved
        assert [(h["phase"], h["phase_epoch"]) for h in history] == phases
        # a run may still end an epoch, or all of them, between the look at its checkpoint and the loss
        later = history[len(saved):]
        start = next((i for i, h in enumerate(later) if h["attempt"] != saved[-1]["attempt"]), None)
        if start is None:
            continue
        assert all(h["attempt"] != saved[-1]["attempt"] for h in later[start:])
        if lost_node:
            assert all(h["node"] != lost_node for h in later[start:])
        resumed_runs.append(run)
    return resumed_runs


@pytest.fixture(scope="module")
def cluster_data(s3_endpoint, synthetic_raw):
    storage.filesystem("s3://multinode")[0].mkdir("multinode")
    ingest(str(synthetic_raw), "s3://multinode/shards")
    storage.write_bytes_atomic("s3://multinode/space.yaml", SPACE.encode())
    return "s3://multinode/shards"


@pytest.fixture(scope="module")
def search_losing_a_node_then_its_head(cluster_data, tmp_path_factory):
    """A worker node lost mid-trial; once that trial has gone on elsewhere, the head lost (the job's
    driver with it), a new cluster whose head has an empty disk, the job submitted again with --resume.
    One search for both, so that each loss is checked against the runs as it found them."""
    exp_uri = "s3://multinode/experiments/reclaimed"
    report = run_world(tmp_path_factory.mktemp("world"), "--watch", f"{exp_uri}/trials", "--kill-when", "one-finished",
                       "--lose", "node,head", "--", "tune", "--space", "s3://multinode/space.yaml", "--data", cluster_data,
                       "--storage", "s3://multinode/experiments", "--name", "reclaimed")
    return exp_uri, report


# a node is lost under a run with three or more epochs to go, the head under the attempt that
# resumed it with three or more still to go (cluster_world.py)
SEARCH_PHASES = [("stage1", epoch) for epoch in range(1, 7)] + [("stage2", 1)]


def check_study_and_best(exp_uri: str, after: dict) -> None:
    assert study_states(exp_uri) == ["COMPLETE"] * 2  # both trials, none run twice, none lost
    scores = [sum(h["valid_f1"] for h in p["history"][-2:]) / 2 for p in after.values()]
    best = storage.latest_version(f"{exp_uri}/best")
    assert best["metadata"]["objective"]["value"] == pytest.approx(max(scores))


def test_a_search_on_three_nodes_finishes_after_losing_one_mid_trial(search_losing_a_node_then_its_head):
    exp_uri, report = search_losing_a_node_then_its_head
    assert report["exit"] == 0, what_happened(report)
    assert report.get("removed_node"), f"no node was removed: {report.get('watch_errors')}"
    before, after = report["before_node"], report["after"]
    assert len(after) == 2 and all(finished(p) for p in after.values())
    assert any(finished(p) for p in before.values()), "the node was to be lost after a trial had finished"
    lost = report["removed_node"]
    resumed = check_resumed(before, after, SEARCH_PHASES, lost_node=lost)
    assert resumed and all(before[t]["history"][-1]["node"] == lost for t in resumed)


def test_the_study_and_the_published_best_agree_after_both_losses(search_losing_a_node_then_its_head):
    exp_uri, report = search_losing_a_node_then_its_head
    check_study_and_best(exp_uri, report["after"])


def test_a_local_path_is_refused_on_a_multi_node_cluster(cluster_data, synthetic_shards, tmp_path):
    """A dataset on the head's disk: fine for one node, missing on the others."""
    report = run_world(tmp_path, "--", "tune", "--space", "s3://multinode/space.yaml", "--data", synthetic_shards,
                       "--storage", "s3://multinode/experiments", "--name", "refused")
    assert report["exit"] == 2
    error = report["stderr"].strip().splitlines()[-1]
    assert error.startswith(f"error: --data {synthetic_shards} is a local path")
    assert "3 nodes" in error and "s3://" in error and "--shared-fs" in error
    assert not storage.exists("s3://multinode/experiments/refused")  # nothing started, nothing written


def test_a_search_resumed_after_its_head_restarts_repeats_nothing_and_loses_nothing(search_losing_a_node_then_its_head):
    exp_uri, report = search_losing_a_node_then_its_head
    assert report["exits"][0] != 0 and report["exit"] == 0, what_happened(report)
    assert "before_head" in report, f"the head was not lost: {report.get('watch_errors')}"
    assert report["stdout"].startswith("resuming reclaimed: finished trials are kept")
    before, after = report["before_head"], report["after"]
    assert len(after) == 2 and all(finished(p) for p in after.values())
    assert any(finished(p) for p in before.values())
    assert check_resumed(before, after, SEARCH_PHASES)


AUTOSCALED_SPACE = (SPACE.replace("budget: {samples: 2, max_concurrent: 1}  # one after the other: one finished, one mid-run when a node goes",
                                   "budget: {samples: 3}")
                    .replace("stage1: {epochs: 6,", "stage1: {epochs: 3,"))  # no loss to land: shorter runs
assert AUTOSCALED_SPACE.count("epochs: 3,") == 1 and "samples: 3}" in AUTOSCALED_SPACE


@pytest.fixture(scope="module")
def search_on_an_autoscaling_cluster(cluster_data, tmp_path_factory):
    """A head alone (3 CPUs, drivers pinned there) and an autoscaler allowed three worker nodes of
    2 CPUs: the search asks for what the largest cluster holds, and the autoscaler adds nodes."""
    storage.write_bytes_atomic("s3://multinode/autoscaled.yaml", AUTOSCALED_SPACE.encode())
    report = run_world(tmp_path_factory.mktemp("world"), "--workers", "0", "--autoscale", "3", "--head-cpus", "3", "--",
                       "tune", "--space", "s3://multinode/autoscaled.yaml", "--data", cluster_data,
                       "--storage", "s3://multinode/experiments", "--name", "autoscaled",
                       env={"SWINLS_WAIT_NOTICE_S": "2"})
    return "s3://multinode/experiments/autoscaled", report


def test_a_search_gets_its_nodes_from_the_autoscaler_and_runs_what_the_cluster_can_scale_to(search_on_an_autoscaling_cluster):
    exp_uri, report = search_on_an_autoscaling_cluster
    out = report["stdout"]
    assert report["exit"] == 0, what_happened(report)
    # now: 3 CPUs, one trial of 2; the largest cluster: 3 + 3 × 2 CPUs, room for 4 trials (a CPU
    # kept for Ray Data), of which the head's 3 CPUs hold 3 trials' drivers
    assert ("trials at once: up to 3 (what fits the largest cluster its autoscaler allows (9 CPU; now 3 CPU), "
            "within the 3 trial driver(s) the head holds)") in out
    added = report["worker_nodes_seen"]
    assert len(added) >= 2 and all(seconds > 0 for seconds in added.values())  # none at the start
    trained_on = {h["node"] for p in run_pointers(exp_uri).values() for h in p["history"]}
    assert trained_on and trained_on <= set(added)  # the workers ran on the autoscaler's nodes
    notices = [line for line in out.splitlines() if line.startswith("waiting ")]
    assert notices and "the cluster's autoscaler can add nodes" in notices[0]
    assert study_states(exp_uri) == ["COMPLETE"] * 3


def test_what_neither_the_nodes_nor_the_autoscaler_have_is_refused_at_start(cluster_data, tmp_path):
    report = run_world(tmp_path, "--workers", "0", "--autoscale", "3", "--", "tune", "--space", "s3://multinode/space.yaml",
                       "--data", cluster_data, "--storage", "s3://multinode/experiments", "--name", "no-gpu", "--use-gpu")
    assert report["exit"] == 2
    assert report["stderr"].strip().splitlines()[-1] == (
        "error: each trial asks for 1 GPU(s) but the cluster has 0; to run on CPUs, drop --use-gpu or --set run.use_gpu=false")
    assert not report["worker_nodes_seen"]  # refused before anything asked the autoscaler for a node
    assert not storage.exists("s3://multinode/experiments/no-gpu")


NIGHT = """\
model: {size: nano, decoder_channels: [32, 16, 16, 8, 8], drop_path: 0.0}
data: {batch_size: 8}
stage1: {epochs: 5, lr: 0.002}
stage2: {epochs: 1, lr: 0.00001}
selftrain: {rounds: 0}
run: {keep_checkpoints: 1, checkpoint_every: 1, max_failures: 2}
"""


def test_a_retraining_run_losing_its_node_mid_run_resumes_and_promotes(cluster_data, tmp_path):
    config = tmp_path / "night.yaml"
    config.write_text(NIGHT)
    registry = "s3://multinode/registry"
    # a head without CPUs (one of GPUs' would run no Train worker either): the run trains on a node that can go
    report = run_world(tmp_path, "--head-cpus", "0", "--watch", f"{registry}/runs", "--kill-when", "mid-run", "--",
                       "retrain", "--data", cluster_data, "--registry", registry, "--config", str(config))
    assert report["exit"] == 0, what_happened(report)
    assert report.get("removed_node"), f"no node was removed: {report.get('watch_errors')}"
    [run] = report["after"]
    night_phases = [("stage1", epoch) for epoch in range(1, 6)] + [("stage2", 1)]
    assert check_resumed(report["before"], report["after"], night_phases, lost_node=report["removed_node"]) == [run]
    # the job's last line; Ray's own notices of the lost raylet may arrive after it
    [decision] = [line for line in report["stdout"].splitlines() if line.startswith("decision: ")]
    assert decision.startswith("decision: promoted")
    champion = storage.latest_version(f"{registry}/champion")
    assert run.split("/")[-1] in json.dumps(champion)  # the champion is the run that lost its node


def test_an_ablation_grid_losing_a_node_keeps_its_finished_trials_and_completes_the_table(cluster_data, tmp_path):
    exp_uri = "s3://multinode/ablations/grid"
    report = run_world(tmp_path, "--watch", f"{exp_uri}/trials", "--kill-when", "one-finished", "--",
                       "ablate", "balance", "--rows", "ce,wce,focal,lovasz", "--max-concurrent", "2", "--models", "swinls", "--seeds", "1",
                       "--data", cluster_data, "--storage", "s3://multinode/ablations", "--name", "grid", "--holdout", "none",
                       "--set", "model.size=nano", "--set", "stage1.epochs=6", "--set", "run.checkpoint_every=1",
                       "--set", "run.max_failures=2", "--set", "data.batch_size=8")
    assert report["exit"] == 0, what_happened(report)
    assert report.get("removed_node"), f"no node was removed: {report.get('watch_errors')}"
    phases = [("stage1", epoch) for epoch in range(1, 7)]  # the loss lands under a run with 3 or more epochs to go
    assert check_resumed(report["before"], report["after"], phases, lost_node=report["removed_node"])
    table = storage.read_bytes(f"{exp_uri}/table.md").decode()
    for row in ("Normal training (CE)", "Weighted CE", "Focal loss", "CE + Lovász"):
        assert row in table
