"""The data jobs as a user runs them: whole command lines on tiny data."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

from swinls.shards import Manifest
from tests.helpers import upload_tree, write_tree

ROOT = Path(__file__).resolve().parents[1]


def run(*args, check=True):
    result = subprocess.run([sys.executable, *args], cwd=ROOT, capture_output=True, text=True)
    if check and result.returncode != 0:
        raise AssertionError(result.stdout + result.stderr)
    return result


def test_synth_then_ingest_command_lines(tmp_path):
    out = run("jobs/synth.py", str(tmp_path / "raw"), "--regions", "glacial-valley", "--scene-size", "256",
              "--seed", "5", "--no-scenes", "--ingest", str(tmp_path / "shards")).stdout
    assert "glacial-valley:" in out and "ingested 4 patches" in out
    manifest = Manifest.load(str(tmp_path / "shards"))
    assert list(manifest.regions) == ["glacial-valley"]
    again = run("jobs/ingest.py", str(tmp_path / "raw"), str(tmp_path / "shards")).stdout
    assert "glacial-valley: unchanged" in again


def test_ingest_command_line_against_s3_reports_bad_files(tmp_path, bucket):
    write_tree(tmp_path / "src", counts=(3, 1, 0))
    (tmp_path / "src/TrainData/mask/mask_2.h5").unlink()
    upload_tree(tmp_path / "src", f"{bucket}/raw")
    failed = run("jobs/ingest.py", f"{bucket}/raw", f"{bucket}/shards", "--region", "hills", check=False)
    assert failed.returncode == 2 and "image_2.h5" in failed.stderr and "nothing was published" in failed.stderr
    skipped = run("jobs/ingest.py", f"{bucket}/raw", f"{bucket}/shards", "--region", "hills", "--on-bad", "skip").stdout
    assert "skipped" in skipped and "image_2.h5" in skipped
    manifest = Manifest.load(f"{bucket}/shards")
    assert manifest.counts()["total"]["train"] == 2


@pytest.mark.parametrize("args, message", [
    (["--on-bad", "ignore"], "invalid choice"),
])
def test_ingest_rejects_bad_arguments(tmp_path, args, message):
    result = run("jobs/ingest.py", str(tmp_path), str(tmp_path / "d"), *args, check=False)
    assert result.returncode == 2 and message in result.stderr
