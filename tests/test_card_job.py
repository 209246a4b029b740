"""jobs/card.py: a published model's card in readable form, read from its folder or from S3."""

import json
import os
import subprocess
import sys
from pathlib import Path

from swinls import storage
from tests.helpers import upload_tree

ROOT = Path(__file__).resolve().parents[1]


def run_card(*args):
    return subprocess.run([sys.executable, str(ROOT / "jobs" / "card.py"), *args], capture_output=True, text=True,
                          timeout=120, cwd=ROOT, env=dict(os.environ))


def test_the_card_shows_bands_normalisation_regions_and_each_phases_f1(published_model):
    version = storage.latest_version(published_model)["uri"]
    card = json.loads(Path(version, "model_card.json").read_text())
    done = run_card(published_model)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0] == f"model: {version}"
    assert "bands: RGB, in this order: B4, B3, B2" in lines
    mean, std = card["normalization"]["mean"], card["normalization"]["std"]
    assert f"  {'B4':<8} {mean[0]:>9.4f} {std[0]:>9.4f}" in lines  # the card's own statistics, per channel
    header = next(i for i, line in enumerate(lines) if line.startswith("metrics at the end of each phase"))
    titles, row = lines[header + 1].split(), lines[header + 2].split()
    assert row[0] == "stage2" and row[titles.index("F1")] == "0.500"  # the published history's valid F1
    assert "trained on regions: every region of the manifest not held out; held out: none" in lines
    assert any("best-F1 threshold is 0.620" in line for line in lines)
    as_json = run_card(str(Path(version) / "model.pt"), "--json")
    assert json.loads(as_json.stdout) == card


def test_a_card_on_s3_is_read_without_its_weights(published_model, bucket):
    upload_tree(Path(published_model).parent, f"{bucket}/exp")
    storage.filesystem(bucket)[0].rm(f"{bucket[5:]}/exp/best/versions", recursive=True)
    version = storage.latest_version(published_model)["uri"].rsplit("/", 1)[1]
    broken = run_card(f"{bucket}/exp/best")  # the pointer names a version that is gone
    assert broken.returncode == 2 and broken.stderr.startswith("error: ") and len(broken.stderr.splitlines()) == 1
    upload_tree(Path(published_model, "versions", version), f"{bucket}/exp/best/versions/{version}")
    storage.filesystem(bucket)[0].rm(f"{bucket[5:]}/exp/best/versions/{version}/model.pt")
    done = run_card(f"{bucket}/exp")
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[0] == f"model: {bucket}/exp/best/versions/{version}"


def test_a_uri_that_holds_no_model_is_one_clear_line(tmp_path):
    done = run_card(str(tmp_path))
    assert done.returncode == 2 and done.stdout == ""
    assert done.stderr == (f"error: {tmp_path}: no published model here (expected LATEST.json, model.pt with "
                           "model_card.json, or a best/ or champion/ folder)\n")
    (tmp_path / "model_card.json").write_text("{not json")
    bad = run_card(str(tmp_path))
    assert bad.returncode == 2 and "model_card.json: the model card is not valid JSON" in bad.stderr
