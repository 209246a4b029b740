"""Ray Train: two DDP workers through both stages and a self-training round, shards read from
and checkpoints written to the moto S3 endpoint, with a worker killed mid-run."""

import json
import os
import signal
import threading
import time

import pytest
import torch

from swinls import selftrain, storage
from swinls.checkpoints import RunStore
from swinls.experiment_config import load_experiment
from swinls.shards import ingest
from swinls.training import run_experiment
from tests.conftest import FAKE_KEY_ID, FAKE_SECRET


class WorkerKiller(threading.Thread):
    """Kills rank 1's process (SIGKILL) once the run has checkpointed its first epoch."""

    def __init__(self, run_uri: str, pid_file: str) -> None:
        super().__init__(daemon=True)
        self.run_uri, self.pid_file = run_uri, pid_file
        self.killed_after: dict | None = None

    def run(self) -> None:
        deadline = time.time() + 600
        pointer_uri = storage.join(self.run_uri, "checkpoints", "LATEST.json")
        while time.time() < deadline and self.killed_after is None:
            try:
                if storage.exists(pointer_uri) and os.path.exists(f"{self.pid_file}-rank1"):
                    pointer = storage.read_json(pointer_uri)
                    pid = int(open(f"{self.pid_file}-rank1").read())
                    os.kill(pid, signal.SIGKILL)
                    self.killed_after = {k: pointer[k] for k in ("phase", "epoch", "phase_done")}
            except (OSError, ValueError):
                pass
            time.sleep(0.1)


@pytest.fixture(scope="module")
def ray_run(ray_local, synthetic_raw, tmp_path_factory):
    fs, _ = storage.filesystem("s3://training-tests")
    fs.mkdir("training-tests")
    ingest(str(synthetic_raw), "s3://training-tests/shards")
    config = load_experiment(overrides=[
        "name=ddp", "storage=s3://training-tests/runs", "data.uri=s3://training-tests/shards",
        "data.train_regions=[steep-forest, terraced-farmland]", "data.batch_size=4",
        "model.size=nano", "model.decoder_channels=[32, 16, 16, 8, 8]", "model.drop_path=0.0",
        "stage1.epochs=3", "stage1.lr=0.001", "stage2.epochs=2", "stage2.lr=0.0001",
        "selftrain.rounds=1", "selftrain.top_percent=90", "selftrain.png_samples=2",
        "selftrain.stage1.epochs=1", "selftrain.stage2.epochs=1",
        "run.num_workers=2", "run.max_failures=2",
        "data.resident=never"])  # Ray Data streams every split here; the searches hold them on the device
    pid_file = str(tmp_path_factory.mktemp("pids") / "worker")
    killer = WorkerKiller("s3://training-tests/runs/ddp", pid_file)
    killer.start()
    forwarded: list[dict] = []  # what the driver got while the workers trained
    result = run_experiment(config, pid_file=pid_file, printer=forwarded.append)
    killer.join(timeout=1)
    return config, result, killer, forwarded


def test_both_stages_and_a_self_training_round_complete_under_ddp(ray_run):
    _, result, _, _ = ray_run
    steps = [(h["phase"], h["phase_epoch"]) for h in result.history]
    assert steps == [("stage1", 1), ("stage1", 2), ("stage1", 3), ("stage2", 1), ("stage2", 2),
                     ("selftrain1-stage1", 1), ("selftrain1-stage2", 1)]
    assert result.checkpoint == "s3://training-tests/runs/ddp/checkpoints/selftrain1-stage2-e0001.pt"
    # every validation pixel counted once, summed over both workers
    assert {h["valid_pixels"] for h in result.history} == {4 * 128 * 128}


def test_the_driver_gets_every_epoch_while_the_workers_train(ray_run):
    """Under Ray the epochs run in worker processes whose output the jobs do not forward; each
    epoch's report still reaches the driver's printer (a restarted attempt repeats epochs)."""
    _, result, _, forwarded = ray_run
    last_of = {(m["phase"], m["phase_epoch"]): m for m in forwarded}  # a repeated epoch's latest report
    assert [(k, last_of[k]["valid_f1"]) for k in last_of] == [((h["phase"], h["phase_epoch"]), h["valid_f1"])
                                                             for h in result.history]
    last = forwarded[-1]
    assert (last["phase"], last["epoch"], last["epochs_total"]) == ("selftrain1-stage2", 7, 7)
    assert "checkpoint" not in last  # only what a line shows travels


def test_a_killed_worker_is_recovered_from_its_checkpoint(ray_run):
    _, result, killer, _ = ray_run
    assert killer.killed_after is not None, "the test never got to kill a worker"
    attempts = [h["attempt"] for h in result.history]
    assert len(set(attempts)) >= 3  # first attempt, restarted group, self-training fit
    restart = next(i for i in range(1, len(attempts)) if attempts[i] != attempts[i - 1])
    after = killer.killed_after
    first_after = result.history[restart]
    if after["phase_done"]:
        assert first_after["phase_epoch"] == 1
    else:
        assert (first_after["phase"], first_after["phase_epoch"]) == (after["phase"], after["epoch"] + 1)


def test_checkpoints_on_s3_load_safely_and_stage2_kept_the_encoder(ray_run):
    _, result, _, _ = ray_run
    store = RunStore(result.run_uri)
    finals = store.latest()["phase_finals"]
    stage1, stage2 = store.load(finals["stage1"]), store.load(finals["stage2"])
    encoder = [k for k in stage1["model"] if k.startswith("encoder.")]
    assert all(torch.equal(stage1["model"][k], stage2["model"][k]) for k in encoder)
    assert stage2["normalization"]["channels"] == ["B4", "B3", "B2"]
    config_text = storage.read_bytes(store.config_uri).decode()
    assert "storage: s3://training-tests/runs" in config_text and FAKE_SECRET not in config_text and FAKE_KEY_ID not in config_text


def test_pseudo_labels_were_written_beside_the_run(ray_run):
    _, result, _, _ = ray_run
    manifest = selftrain.describe(result.run_uri, 1)
    assert manifest["files"] == ["rank-0.parquet", "rank-1.parquet"] and manifest["top_percent"] == 90.0
    assert 0.88 < manifest["kept"] <= 0.92  # top 90% of each class (rounded up per class)
    pngs = storage.list_files(storage.join(selftrain.round_uri(result.run_uri, 1), "png"))
    assert sorted(pngs) == ["pseudo-0.png", "pseudo-1.png"]
    masks = selftrain.load_masks(result.run_uri, 1)
    assert len(masks) == manifest["rows"]
