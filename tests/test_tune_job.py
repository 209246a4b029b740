"""jobs/tune.py's command line: a bad space or bad flags stop it before Ray or any data."""

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def run_tune(*args, cwd=ROOT):
    return subprocess.run([sys.executable, str(ROOT / "jobs" / "tune.py"), *args], capture_output=True, text=True,
                          timeout=120, cwd=cwd)


def test_a_malformed_space_is_refused_naming_the_parameter_before_anything_starts(tmp_path):
    space = tmp_path / "space.yaml"
    space.write_text("metric: valid_f1\nparameters:\n  data.bands: {choices: [RGB]}\n  stage1.lrate: {low: 0.001, high: 0.01}\n")
    done = run_tune("--space", str(space), "--storage", str(tmp_path / "runs"), "--cache", str(tmp_path / "cache"),
                    cwd=tmp_path)
    assert done.returncode == 2
    assert "space.yaml, line 4: parameter 'stage1.lrate': unknown parameter" in done.stderr
    assert not (tmp_path / "cache").exists() and not (tmp_path / "runs").exists()  # no data made, no experiment


def test_overrides_of_the_command_line_are_checked_like_the_file(tmp_path):
    done = run_tune("--workers", "0", "--storage", str(tmp_path / "runs"), "--cache", str(tmp_path / "cache"))
    assert done.returncode == 2 and "num_workers" in done.stderr


def test_resume_needs_the_experiment_name(tmp_path):
    done = run_tune("--resume", "--storage", str(tmp_path))
    assert done.returncode == 2 and "--resume needs the --name" in done.stderr


def test_the_ranked_table_keeps_the_live_tables_columns():
    from swinls.search.summary import ranked_table

    rows = [{"trial": "a1", "status": "complete", "epochs": 9, "value": 0.41, "final": 0.38,
             "also": {"valid_ap": 0.45, "holdout_f1": 0.37}, "params": {"data.bands": "RGB"}},
            {"trial": "b2", "status": "pruned", "epochs": 2, "value": 0.03, "final": 0.06,
             "also": {"valid_ap": 0.05}, "params": {"data.bands": "NGB"}}]
    header, first, second = ranked_table(rows)
    assert header.split()[:8] == ["rank", "trial", "status", "epochs", "score", "final", "valid_ap", "holdout_f1"]
    assert first.split()[:8] == ["1", "a1", "complete", "9", "0.4100", "0.3800", "0.4500", "0.3700"]
    assert second.split()[:8] == ["2", "b2", "pruned", "2", "0.0300", "0.0600", "0.0500", "-"]


WAIT_SPACE = """\
metric: valid_f1
mode: max
budget: {samples: 1, max_concurrent: 1}
scheduler: {type: none}
resources: {num_workers: 1, cpus_per_worker: 1, driver_cpus: 1}
base:
  data: {batch_size: 8, train_regions: [steep-forest]}
  model: {size: nano, decoder_channels: [32, 16, 16, 8, 8], drop_path: 0.0}
  stage1: {epochs: 1, lr: 0.002}
  stage2: {epochs: 1, lr: 0.00001}
  selftrain: {rounds: 0}
parameters:
  data.bands: {choices: [RGB]}
"""


def test_a_trial_waiting_for_resources_says_so_then_trains(ray_local, synthetic_shards, tmp_path, monkeypatch):
    """What an autoscaling cluster's first minutes look like from the log: the trial cannot be
    placed (every CPU held here by a placement group, released after a while), and the driver
    says so instead of staying silent."""
    import threading

    from ray.util.placement_group import placement_group, remove_placement_group

    from swinls.search.callbacks import WAIT_NOTICE_ENV
    from tests.jobs import run_in_process

    monkeypatch.setenv(WAIT_NOTICE_ENV, "2")
    free = int(ray_local.available_resources().get("CPU", 0))
    held = placement_group([{"CPU": 1}] * free)
    ray_local.get(held.ready(), timeout=60)
    release = threading.Timer(10, remove_placement_group, args=(held,))
    release.start()
    space = tmp_path / "space.yaml"
    space.write_text(WAIT_SPACE)
    try:
        code, out, err = run_in_process("tune", "--space", str(space), "--data", synthetic_shards,
                                        "--storage", str(tmp_path / "runs"), "--name", "waits")
    finally:
        release.cancel()
        remove_placement_group(held) if release.is_alive() else None
    assert code == 0, err[-2000:]
    notices = [line for line in out.splitlines() if line.startswith("waiting ")]
    assert notices and "no trial could be placed" in notices[0], out[-3000:]
    assert "1 worker(s) of 1 CPU each; free now: nothing" in notices[0] and "nothing will add nodes here" in notices[0]
    assert out.index(notices[0]) < out.index("stage1")  # said before the first epoch, which came after
