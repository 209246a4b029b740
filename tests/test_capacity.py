"""Trials that share GPUs, and concurrency from the cluster a search can scale to."""

from pathlib import Path

import pytest

from swinls.search.capacity import concurrency_for, driver_slots, max_resources, trials_that_fit
from swinls.search.space import SpaceError, parse_space
from swinls.training.runner import scaling_config

ROOT = Path(__file__).resolve().parents[1]

SPACE = """
metric: valid_f1
resources: {num_workers: 1, cpus_per_worker: 2, use_gpu: true, gpus_per_worker: 0.25}
base: {model: {size: nano}}
parameters:
  stage1.lr: {low: 1.0e-4, high: 1.0e-3, log: true}
"""


def test_a_space_with_a_quarter_gpu_per_worker_validates_and_reaches_ray_train():
    space = parse_space(SPACE)
    run = space.experiment({"stage1.lr": 3e-4}).run
    assert run.use_gpu and run.gpus_per_worker == 0.25
    scaling = scaling_config(run)
    assert scaling.use_gpu and scaling.resources_per_worker == {"CPU": 2.0, "GPU": 0.25}
    with pytest.raises(SpaceError, match="gpus_per_worker must be a fraction in \\(0, 1\\] or a whole number"):
        parse_space(SPACE.replace("0.25", "1.5"))


def test_the_largest_cluster_of_cluster_yaml():
    largest = max_resources((ROOT / "cluster.yaml").read_text())
    assert largest["GPU"] == 8 and largest["CPU"] == 8 + 8 * 8 and largest["swinls_driver"] == 100
    capped = max_resources((ROOT / "cluster.yaml").read_text().replace("max_workers: 8\nupscaling", "max_workers: 3\nupscaling"))
    assert capped["GPU"] == 3


def test_concurrency_counts_what_the_cluster_can_scale_to_and_gpu_shares():
    trial = dict(num_workers=1, cpus_per_worker=2, driver_cpus=1, use_gpu=True, gpus_per_worker=0.25)
    head_only = {"CPU": 8}
    largest = max_resources((ROOT / "cluster.yaml").read_text())
    assert trials_that_fit(head_only, **trial) == 1  # no GPU yet: one trial, which makes the autoscaler add one
    assert concurrency_for(head_only, largest, **trial)[0] == (72 - 1) // 3  # CPUs bind before 8 / 0.25 = 32 GPU shares
    assert concurrency_for(head_only, largest, **dict(trial, cpus_per_worker=0.5))[0] == 32  # now the GPU shares bind
    assert concurrency_for({"CPU": 16, "GPU": 1}, None, **dict(trial, cpus_per_worker=0.5))[0] == 4  # four trials on one GPU
    assert concurrency_for({"CPU": 16, "GPU": 1}, None, **dict(trial, gpus_per_worker=1.0))[0] == 1
    fit, why = concurrency_for(head_only, largest, **trial)
    assert why.startswith("what fits the largest cluster its autoscaler allows (72 CPU, 8 GPU; now 8 CPU")


def test_trial_drivers_pinned_to_the_head_bound_the_concurrency():
    """cluster.yaml keeps drivers on the head (swinls_driver): 23 trials fit the largest cluster's
    CPUs and GPUs, but only 8 drivers of one CPU fit the head's 8 CPUs; more would wait, and their
    parameters would be sampled before anything was learnt from the first ones."""
    trial = dict(num_workers=1, cpus_per_worker=2, driver_cpus=1, use_gpu=True, gpus_per_worker=0.25)
    largest = max_resources((ROOT / "cluster.yaml").read_text())
    nodes = [{"CPU": 8, "swinls_driver": 100}, {"CPU": 8, "GPU": 1}]
    drivers = driver_slots(nodes, 1, "swinls_driver")
    assert drivers == 8
    fit, why = concurrency_for({"CPU": 16, "GPU": 1}, largest, drivers=drivers, **trial)
    assert fit == 8 and why.endswith("within the 8 trial driver(s) the head holds")
    assert driver_slots([{"CPU": 8}], 1, "swinls_driver") is None  # nothing pinned: the CPUs decide
    assert driver_slots(nodes, 0, "swinls_driver") is None


def test_a_worker_no_node_can_hold_is_refused_at_start(ray_local, synthetic_shards, tmp_path):
    """Ray would leave such a trial pending forever; the session's Ray has one node of 4 CPUs."""
    from tests.jobs import run_in_process

    code, out, err = run_in_process("tune", "--cpus-per-worker", "64", "--data", synthetic_shards,
                                    "--storage", str(tmp_path), "--name", "too-wide")
    assert code == 2, err
    assert err.strip().splitlines()[-1] == (
        "error: each trial asks for 64 CPU(s) per Ray Train worker, on one node; no node of the cluster has that (the largest: "
        "4 CPU(s), 0 GPU(s)): lower run.cpus_per_worker or add a larger node type")
    assert not (tmp_path / "too-wide").exists()
