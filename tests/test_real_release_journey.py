"""The real Landslide4Sense as users have it, through the jobs' command lines: the 2022 release
(ValidData and TestData without masks) → ingest → dry run (validation carved from training) →
train → tune → ablate → predict the test split → the label archive arrives → re-ingest → the
validation is ValidData. No trial is ranked on an undefined metric anywhere."""

import csv
import json
import math
import re

import pytest

from swinls import storage
from swinls.published import read_card
from tests.helpers import move_labels_apart, write_tree
from tests.jobs import run_in_process

SHORT = ("--set", "stage1.epochs=2", "--set", "stage1.warmup_epochs=0", "--set", "stage2.epochs=1",
         "--set", "selftrain.rounds=0")


def ok(job: str, *args: str) -> str:
    code, out, err = run_in_process(job, *args)
    assert code == 0, f"jobs/{job}.py {' '.join(args)}\n{out[-3000:]}\n{err[-3000:]}"
    return out


def defined(value) -> bool:
    return value not in (None, "") and not math.isnan(float(value))


@pytest.mark.timeout(900)
def test_from_the_2022_release_to_a_submission_then_the_labels(ray_local, tmp_path):
    raw, labels, shards, runs = tmp_path / "Landslide4Sense", tmp_path / "labels", str(tmp_path / "shards"), str(tmp_path / "runs")
    write_tree(raw, counts=(30, 4, 5), size=128, seed=11)  # the model takes 128×128 patches, as the release has
    move_labels_apart(raw, labels, seed=11)

    out = ok("ingest", str(raw), shards, "--region", "landslide4sense")
    assert "landslide4sense: ingested" in out

    out = ok("train", "--recipe", "laptop", "--data", shards, "--storage", runs, "--dry-run")
    assert "validation: 10% of TrainData carved out of landslide4sense" in out
    assert re.search(r"landslide4sense +valid\* +\d", out) and "every check passed" in out

    out = ok("train", "--recipe", "laptop", "--data", shards, "--storage", runs, "--name", "first", "--local", *SHORT)
    assert "validation: 10% of TrainData carved out of landslide4sense" in out
    assert "final checkpoint:" in out and "undef" not in out  # every epoch's validation F1 is defined

    out = ok("tune", "--data", shards, "--storage", runs, "--name", "search", "--samples", "2", "--max-concurrent", "2",
             "--set", "data.holdout_regions=[]", *SHORT)
    table = out.split("parameters\n", 1)[1].split("\n\n", 1)[0].splitlines()
    assert len(table) == 2 and "undef" not in out and "best model:" in out
    card, _ = read_card(storage.join(runs, "search", "best"))
    assert card.validation.source == "carved" and list(card.validation.carved_regions) == ["landslide4sense"]
    assert all(defined(phase["valid_f1"]) for phase in card.metrics.per_phase.values())

    out = ok("ablate", "balance", "--data", shards, "--storage", runs, "--name", "abl", "--rows", "lovasz",
             "--models", "swinls", "--seeds", "1", "--smoke-test")
    assert "held out: no region" in out
    with open(tmp_path / "runs" / "abl" / "trials.csv") as handle:
        trials = list(csv.DictReader(handle))
    assert len(trials) == 1 and trials[0]["status"] == "complete" and defined(trials[0]["valid_f1"])

    best = storage.join(runs, "search", "best")
    ok("predict", best, str(raw / "TestData"), str(tmp_path / "submission"))
    assert sorted(p.name for p in (tmp_path / "submission").glob("mask_*.h5")) == [f"mask_{i}.h5" for i in range(1, 6)]

    out = ok("ingest", str(raw), shards, "--region", "landslide4sense", "--labels", str(labels))
    assert "landslide4sense: ingested" in out
    out = ok("train", "--recipe", "laptop", "--data", shards, "--storage", runs, "--dry-run")
    assert "validation: ValidData of landslide4sense" in out and "valid*" not in out
    manifest = json.loads((tmp_path / "shards" / "manifest.json").read_text())
    assert manifest["regions"]["landslide4sense"]["labels"] == str(labels)
