"""A Ray Train run whose owner dies without a word (Tune stopping a trial early, a trial actor
killed) leaves its workers' placement group to Ray Train's cleaner, which asks the state API
whether the run's controller is gone. A placement group lives as long as the driver that started
the search, so one the cleaner misses holds its CPUs until the search ends: every trial the
scheduler stops takes CPUs with it, and the search, then the Ray Data pipelines, starve.

The cleaner finds the state API the way a shell does (RAY_ADDRESS, else the address the machine
last recorded in /tmp/ray/ray_current_cluster). A local instance records nothing there, so on a
machine where another Ray ran, or still runs, the cleaner asked the wrong cluster."""

from __future__ import annotations

import time
from contextlib import contextmanager
from pathlib import Path

from swinls.ports import free_port
from tests.cluster_world import ray_address_kept


@contextmanager
def recorded_address(address: str):
    """The machine's record of the Ray cluster last started, as another instance leaves it."""
    with ray_address_kept() as path:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(address)
        yield


def _train_until_killed(config):
    Path(config["started"]).touch()
    time.sleep(300)


def test_a_run_whose_owner_is_killed_frees_its_workers_cpus_while_the_machine_records_another_ray(ray_local, tmp_path):
    ray = ray_local

    @ray.remote(num_cpus=0)
    class Owner:  # what a Tune trial is to the TorchTrainer it fits
        def fit(self, started: str, storage: str) -> None:
            from ray.train import RunConfig, ScalingConfig
            from ray.train.torch import TorchTrainer

            TorchTrainer(_train_until_killed, train_loop_config={"started": started},
                         scaling_config=ScalingConfig(num_workers=1, use_gpu=False),
                         run_config=RunConfig(name="owner-killed", storage_path=storage)).fit()

    total = ray.cluster_resources()["CPU"]
    assert ray.available_resources().get("CPU", 0) == total
    started = tmp_path / "started"
    with recorded_address(f"127.0.0.1:{free_port()}"):  # a Ray that ran here once; nothing listens now
        owner = Owner.remote()
        owner.fit.remote(str(started), str(tmp_path / "runs"))
        deadline = time.time() + 120
        while not started.exists():
            assert time.time() < deadline, "the run's worker never started"
            time.sleep(0.2)
        assert ray.available_resources().get("CPU", 0) == total - 1  # its one worker's bundle
        ray.kill(owner)
        deadline = time.time() + 30
        while ray.available_resources().get("CPU", 0) < total and time.time() < deadline:
            time.sleep(0.5)
        free = ray.available_resources().get("CPU", 0)
    assert free == total, f"{total - free:g} CPU(s) still held 30 s after the run's owner was killed"
