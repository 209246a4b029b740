"""Training in a plain process: learning, the two stages, and resuming a killed run."""

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from swinls.checkpoints import CheckpointError, RunStore
from swinls.experiment_config import load_experiment
from swinls.data import DataConfig, ShardData
from swinls.training import run_experiment
from swinls.training.plan import plan, resume_point

ROOT = Path(__file__).resolve().parents[1]
NANO = ["recipe=tiny", "data.batch_size=4", "data.holdout_regions=[volcanic-arc]"]


def test_a_short_run_beats_the_trivial_all_landslide_predictor(synthetic_shards, tmp_path):
    config = load_experiment(overrides=NANO + [
        f"data.uri={synthetic_shards}", f"storage={tmp_path}", "name=learn",
        "stage1.epochs=12", "stage1.lr=0.001", "stage1.loss.lovasz=0.0", "stage1.loss.image=0.5",
        # stage 2 at its default rate: plain CE at 1e-4 undoes what stage 1 learned on some seeds
        "stage2.epochs=2", "stage2.lr=0.00001", "selftrain.rounds=0"])
    result = run_experiment(config, local=True, printer=None)
    data = ShardData(DataConfig(uri=synthetic_shards, holdout_regions=("volcanic-arc",)))
    shards = data.shards("valid")
    positive = sum(s.positive_pixels for s in shards) / sum(s.labeled_pixels for s in shards)
    trivial_f1 = 2 * positive / (1 + positive)  # predict landslide everywhere: precision p, recall 1
    final = result.final
    assert final["phase"] == "stage2" and len(result.history) == 14
    assert final["valid_f1"] > max(0.25, 3 * trivial_f1), (final["valid_f1"], trivial_f1)


def test_stage2_leaves_the_encoder_bit_identical(synthetic_shards, tmp_path):
    config = load_experiment(overrides=NANO + [f"data.uri={synthetic_shards}", f"storage={tmp_path}", "name=freeze",
                                               "stage1.epochs=1", "stage2.epochs=2", "selftrain.rounds=0"])
    run_experiment(config, local=True, printer=None)
    store = RunStore(str(tmp_path / "freeze"))
    finals = store.latest()["phase_finals"]
    stage1, stage2 = store.load(finals["stage1"]), store.load(finals["stage2"])
    encoder = [k for k in stage1["model"] if k.startswith("encoder.")]
    decoder = [k for k in stage1["model"] if k.startswith("decoder.")]
    assert encoder and all(torch.equal(stage1["model"][k], stage2["model"][k]) for k in encoder)
    assert any(not torch.equal(stage1["model"][k], stage2["model"][k]) for k in decoder)


def test_a_run_moved_to_another_storage_resumes_without_retraining(synthetic_shards, tmp_path):
    import shutil

    settings = NANO + [f"data.uri={synthetic_shards}", "name=mover", "stage1.epochs=1", "stage2.epochs=1",
                       "selftrain.rounds=0"]
    first = run_experiment(load_experiment(overrides=settings + [f"storage={tmp_path / 'here'}"]), local=True, printer=None)
    shutil.copytree(tmp_path / "here", tmp_path / "there")
    shutil.rmtree(tmp_path / "here")
    moved = run_experiment(load_experiment(overrides=settings + [f"storage={tmp_path / 'there'}"]), local=True, printer=None)
    assert first.trained and not moved.trained
    assert moved.history == first.history and moved.run_uri.endswith("there/mover")
    with pytest.raises(CheckpointError, match="different config"):  # a moved run still refuses a changed recipe
        run_experiment(load_experiment(overrides=settings + [f"storage={tmp_path / 'there'}", "stage2.epochs=2"]),
                       local=True, printer=None)


def test_resume_point_follows_the_pointer_and_the_pseudo_label_manifests(tmp_path):
    config = load_experiment(overrides=["stage1.epochs=3", "stage2.epochs=2", "selftrain.rounds=1"])
    blocks = plan(config)
    assert [p.name for b in blocks for p in b.phases] == ["stage1", "stage2", "pseudo1", "selftrain1-stage1", "selftrain1-stage2"]
    run = str(tmp_path)
    assert resume_point(blocks, None, run) == (0, 0)
    assert resume_point(blocks, {"phase": "stage1", "epoch": 2, "phase_done": False}, run) == (0, 2)
    assert resume_point(blocks, {"phase": "stage1", "epoch": 3, "phase_done": True}, run) == (1, 0)
    assert resume_point(blocks, {"phase": "stage2", "epoch": 2, "phase_done": True}, run) == (2, 0)  # pseudo-labels pending


def test_a_killed_run_resumes_at_the_right_stage_and_epoch(synthetic_shards, tmp_path):
    storage_dir = tmp_path / "runs"
    args = [sys.executable, "jobs/train.py", "--local", "--name", "killed", "--storage", str(storage_dir), "--data", synthetic_shards]
    for setting in NANO + ["stage1.epochs=2", "stage2.epochs=4", "selftrain.rounds=0", "data.batch_size=2"]:
        args += ["--set", setting]
    pointer_file = storage_dir / "killed" / "checkpoints" / "LATEST.json"
    process = subprocess.Popen(args, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    deadline = time.time() + 300
    while time.time() < deadline:
        if pointer_file.exists():
            pointer = json.loads(pointer_file.read_text())
            if pointer["phase"] == "stage2" and pointer["epoch"] >= 1:
                process.send_signal(signal.SIGKILL)
                break
        if process.poll() is not None:
            pytest.fail("the run ended before it could be interrupted:\n" + process.stdout.read())
        time.sleep(0.05)
    process.wait(timeout=60)
    interrupted = json.loads(pointer_file.read_text())
    assert interrupted["phase"] == "stage2" and not interrupted["phase_done"]

    rerun = subprocess.run(args, cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert rerun.returncode == 0, rerun.stdout + rerun.stderr
    history = json.loads(pointer_file.read_text())["history"]
    steps = [(h["phase"], h["phase_epoch"]) for h in history]
    assert steps == [("stage1", 1), ("stage1", 2), ("stage2", 1), ("stage2", 2), ("stage2", 3), ("stage2", 4)]
    attempts = [h["attempt"] for h in history]
    resumed_at = attempts.index(attempts[-1])
    assert steps[resumed_at] == ("stage2", interrupted["epoch"] + 1), "the re-run must continue after the checkpoint"
    assert "final checkpoint:" in rerun.stdout and "stage2-e0004.pt" in rerun.stdout
