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
    assert "parameter 'stage1.lrate' (line 4)" in done.stderr and "unknown parameter" in done.stderr
    assert not (tmp_path / "cache").exists() and not (tmp_path / "runs").exists()  # no data made, no experiment


def test_overrides_of_the_command_line_are_checked_like_the_file(tmp_path):
    done = run_tune("--workers", "0", "--storage", str(tmp_path / "runs"), "--cache", str(tmp_path / "cache"))
    assert done.returncode == 2 and "num_workers" in done.stderr


def test_resume_needs_the_experiment_name(tmp_path):
    done = run_tune("--resume", "--storage", str(tmp_path))
    assert done.returncode == 2 and "--resume needs the --name" in done.stderr
