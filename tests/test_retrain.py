"""Scheduled retraining on the moto S3 endpoint and the local Ray: a first champion, no-ops, a new
region, a challenger kept out, a crash before the pointer swap, a rival promotion, rollback."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from swinls.model_card import Regions
import yaml

from swinls import storage
from swinls.published import load_published
from swinls.retraining import (DecisionLog, ModelRegistry, Recipe, RetrainError, RetrainOptions, labelled_regions,
                               retrain, rollback)
from swinls.shards import Manifest, ingest

ROOT = Path(__file__).resolve().parents[1]
TINY = ("model.size=nano", "model.decoder_channels=[32, 16, 16, 8, 8]", "model.drop_path=0.0", "data.batch_size=8",
        "stage1.epochs=2", "stage1.lr=0.002", "stage2.epochs=1", "stage2.lr=0.0001", "selftrain.rounds=0",
        "run.keep_checkpoints=1")
RECIPE = Recipe(overrides=TINY)
SABOTAGED = Recipe(overrides=TINY + ("stage1.epochs=1", "stage1.lr=1.0e-9", "stage2.lr=1.0e-9"))
FORCE = RetrainOptions(min_gain=-1.0, max_region_drop=1.0)  # promote whatever trains


def regions_tree(raw: Path, target: Path, names) -> str:
    """A folder of Landslide4Sense trees, one per region (hard links: the files are not copied)."""
    for name in names:
        shutil.copytree(raw / name, target / name, copy_function=os.link)
    return str(target)


@pytest.fixture(scope="module")
def world(ray_local, synthetic_raw, tmp_path_factory):
    """Shards of two regions on S3, a registry beside them; the third region is added by a test."""
    root = tmp_path_factory.mktemp("retrain")
    fs, _ = storage.filesystem("s3://retrain")
    fs.mkdir("retrain")
    ingest(regions_tree(synthetic_raw, root / "first", ["steep-forest", "terraced-farmland"]), "s3://retrain/shards")
    return {"raw": synthetic_raw, "root": root, "data": "s3://retrain/shards", "registry": "s3://retrain/registry",
            "lines": []}


def run(world, recipe=RECIPE, options=RetrainOptions(), **kwargs):
    return retrain(world["data"], world["registry"], recipe, options, log=world["lines"].append, **kwargs)


def checkpoints(registry: str) -> dict[str, str]:
    runs = storage.join(registry, "runs")
    return {k: v for k, v in storage.list_files(runs).items() if "/checkpoints/" in k} if storage.exists(runs) else {}


def test_the_first_run_promotes_a_champion_and_the_same_data_again_is_a_no_op(world):
    first = run(world)
    assert first.decision == "promoted" and first.line.startswith(f"decision: promoted {first.record['champion']['after']}")
    registry = ModelRegistry(world["registry"])
    champion = registry.champion()
    assert champion.version == first.record["champion"]["after"]
    manifest = Manifest.load(world["data"])
    assert champion.card.regions == Regions(trained=("steep-forest", "terraced-farmland"), held_out=())
    assert champion.manifest_sha256 == manifest.content_hash() == first.record["manifest_sha256"]
    table = first.record["scores"]["challenger"]
    assert set(table["regions"]) == {"steep-forest", "terraced-farmland"} and first.record["scores"]["champion"] is None
    counts = [table["regions"][r] for r in table["regions"]]  # overall from the summed pixel counts
    assert table["overall"]["tp"] == sum(c["tp"] for c in counts) and table["overall"]["fn"] == sum(c["fn"] for c in counts)
    model, card, _ = load_published(world["registry"])  # what jobs/predict.py reads
    assert card.trial == first.record["key"]

    trained = checkpoints(world["registry"])
    env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"}
    again = subprocess.run([sys.executable, str(ROOT / "jobs" / "retrain.py"), "--data", world["data"], "--registry",
                            world["registry"], *[a for o in TINY for a in ("--set", o)]],
                           capture_output=True, text=True, timeout=120, env=env)
    assert again.returncode == 0, again.stderr
    assert again.stdout.splitlines()[-1].startswith(f"decision: no-op (champion {champion.version} was trained on this")
    assert "Ray" not in again.stdout + again.stderr  # decided from the manifest and the card alone
    assert checkpoints(world["registry"]) == trained and registry.champion().version == champion.version


def test_a_new_region_trains_a_challenger_and_a_worse_one_is_kept_out(world):
    ingest(regions_tree(world["raw"], world["root"] / "second", ["volcanic-arc"]), world["data"])
    before = ModelRegistry(world["registry"]).champion()
    kept = run(world, SABOTAGED)
    assert kept.decision == "kept" and kept.line.startswith(f"decision: kept {before.version} (F1 ")
    assert ModelRegistry(world["registry"]).champion().version == before.version
    record, uri = DecisionLog(ModelRegistry(world["registry"])).find(kept.record["key"])
    assert record == kept.record and uri == kept.record_uri
    for model in ("champion", "challenger"):  # both scored on every region, the new one included
        assert set(record["scores"][model]["regions"]) == {"steep-forest", "terraced-farmland", "volcanic-arc"}
    assert record["scores"]["champion"]["model"] == before.uri
    assert record["regions"] == ["steep-forest", "terraced-farmland", "volcanic-arc"]
    gain = record["scores"]["challenger"]["overall"]["f1"] - record["scores"]["champion"]["overall"]["f1"]
    assert gain < 0.005 and f"{gain:+.4f}" in record["reason"]
    assert record["recipe"]["overrides"] == list(SABOTAGED.overrides) and record["code_version"]["package"]

    trained = checkpoints(world["registry"])
    repeated = run(world, SABOTAGED)  # the same key: the verdict again, nothing trained
    assert repeated.repeated and repeated.line == kept.line and checkpoints(world["registry"]) == trained


def test_a_crash_between_upload_and_pointer_swap_keeps_the_champion_and_the_rerun_finishes(world):
    registry = ModelRegistry(world["registry"])
    before, versions = registry.champion(), set(registry.versions())

    def crash():
        raise KeyboardInterrupt("the driver dies after the new version's upload")

    with pytest.raises(KeyboardInterrupt):
        run(world, options=FORCE, before_pointer=crash)
    assert registry.champion().version == before.version  # readable, and still the old one
    load_published(world["registry"])
    [staged] = set(registry.versions()) - versions  # uploaded, never pointed at
    trained = checkpoints(world["registry"])
    finished = run(world, options=FORCE)
    assert finished.decision == "promoted" and finished.repeated
    assert registry.champion().version == finished.record["champion"]["after"] == staged
    assert checkpoints(world["registry"]) == trained  # finished, not retrained
    assert registry.champion().card.trained_regions == ["steep-forest", "terraced-farmland", "volcanic-arc"]


def test_of_two_promotions_racing_for_the_pointer_exactly_one_wins(world, tmp_path):
    """Two first runs on an empty registry: B starts after A has evaluated and swaps first."""
    registry_uri = str(tmp_path / "registry")
    rival = {}

    def go(recipe, **kwargs):
        return retrain(world["data"], registry_uri, recipe, FORCE, log=world["lines"].append, **kwargs)

    def rival_promotes_first():
        rival["outcome"] = go(Recipe(overrides=TINY + ("stage1.epochs=1",)))

    a = go(RECIPE, before_pointer=rival_promotes_first)
    b = rival["outcome"]
    assert b.decision == "promoted" and a.decision == "kept"
    registry = ModelRegistry(registry_uri)
    assert registry.champion().version == b.record["champion"]["after"]
    assert len(registry.versions()) == 2  # A's upload stays, unreferenced
    assert "the champion changed while this run evaluated it" in a.record["reason"]
    assert DecisionLog(registry).find(a.record["key"])[0]["verdict"] == "kept"
    assert a.line.startswith("decision: kept (the challenger won")


def test_rollback_points_the_champion_at_an_earlier_version(world):
    registry = ModelRegistry(world["registry"])
    current = registry.champion().version
    target = next(v for v in registry.versions() if v != current)
    assert rollback(world["registry"], target) == f"rollback: champion is {target} (was {current})"
    assert registry.champion().version == target and load_published(world["registry"])[2].endswith(target)
    with pytest.raises(RetrainError, match=r"no version 'nope' \(versions: "):
        rollback(world["registry"], "nope")
    assert registry.champion().version == target


def test_bad_inputs_are_clear_errors_and_leave_the_champion_untouched(world, tmp_path):
    registry = ModelRegistry(world["registry"])
    pointer = storage.read_bytes(storage.join(registry.champion_uri, "LATEST.json"))
    manifest = Manifest.load(world["data"])
    lacking = tmp_path / "lacking"  # a dataset without B12: a recipe on all 14 bands cannot train on it
    data = manifest.to_dict()
    data["bands"] = [b for b in data["bands"] if b != "B12"]
    for region in data["regions"].values():
        region["train_moments"] = None  # they are over 14 bands
    storage.write_json_atomic(str(lacking / "manifest.json"), data)
    with pytest.raises(RetrainError, match=r"recipe: band set ALL needs B12, which .*lacking/manifest\.json does not hold"):
        retrain(str(lacking), world["registry"], Recipe(overrides=TINY + ("data.bands=ALL",)))
    unlabelled = tmp_path / "unlabelled"
    (unlabelled / "raw" / "island").mkdir(parents=True)
    shutil.copytree(world["raw"] / "steep-forest" / "TestData", unlabelled / "raw" / "island" / "TestData",
                    copy_function=os.link)
    ingest(str(unlabelled / "raw"), str(unlabelled / "shards"))
    with pytest.raises(RetrainError, match=r"unlabelled/shards/manifest\.json: no region has labelled training"):
        retrain(str(unlabelled / "shards"), world["registry"], RECIPE)

    broken = tmp_path / "broken"  # a registry whose champion's weights are damaged
    fs, _ = storage.filesystem(world["registry"])
    fs.get(world["registry"][5:] + "/champion", str(broken / "champion"), recursive=True)
    version = storage.latest_version(str(broken / "champion"))["version"]
    weights = broken / "champion" / "versions" / version / "model.pt"
    weights.write_bytes(weights.read_bytes()[:1000])
    with pytest.raises(RetrainError, match=r"broken/champion: the champion cannot be loaded .* --rollback VERSION"):
        retrain(world["data"], str(broken), RECIPE)
    assert storage.latest_version(str(broken / "champion"))["version"] == version
    assert storage.read_bytes(storage.join(registry.champion_uri, "LATEST.json")) == pointer
    assert json.loads(pointer)["version"] == registry.champion().version


def test_a_run_killed_mid_training_resumes_from_its_checkpoints(world, tmp_path):
    registry = str(tmp_path / "registry")
    args = [sys.executable, str(ROOT / "jobs" / "retrain.py"), "--data", world["data"], "--registry", registry, "--local",
            *[a for o in TINY + ("stage1.epochs=3",) for a in ("--set", o)]]
    env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"}
    job = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
    try:
        deadline = time.monotonic() + 300
        while not any(k.endswith("checkpoints/LATEST.json") for k in checkpoints(registry)):
            assert job.poll() is None and time.monotonic() < deadline, job.stdout.read()
            time.sleep(0.2)
    finally:
        job.kill()
        job.wait()
    [run_dir] = os.listdir(tmp_path / "registry" / "runs")
    saved = json.loads((tmp_path / "registry" / "runs" / run_dir / "checkpoints" / "LATEST.json").read_text())
    assert saved["phase"] == "stage1" and not saved["phase_done"]  # killed in the middle of stage 1
    done = subprocess.run(args, capture_output=True, text=True, timeout=300, env=env)
    assert done.returncode == 0, done.stderr
    assert "(resuming from its checkpoints)" in done.stdout and done.stdout.splitlines()[-1].startswith("decision: promoted")
    history = json.loads((tmp_path / "registry" / "runs" / run_dir / "checkpoints" / "LATEST.json").read_text())["history"]
    assert [h["epoch"] for h in history] == [1, 2, 3, 4]
    kept = history[:len(saved["history"])]
    assert kept == saved["history"]  # the epochs before the kill, not trained again
    assert {h["attempt"] for h in history[len(kept):]}.isdisjoint({h["attempt"] for h in kept})


def test_the_verdict_needs_the_overall_gain_and_no_region_falling_too_far():
    from swinls.metrics import Confusion
    from swinls.retraining import Scores, judge

    def scores(**f1_like):  # region -> (tp, fp, fn): F1 = 2tp / (2tp + fp + fn)
        return Scores("m", {region: Confusion(tp, fp, fn, 1000) for region, (tp, fp, fn) in f1_like.items()})

    champion = scores(a=(50, 50, 50), b=(50, 50, 50))  # F1 0.5 in both
    assert judge(None, champion).promote
    better = scores(a=(60, 40, 40), b=(50, 50, 50))  # overall +0.05, b unchanged
    assert judge(champion, better).promote
    slightly = scores(a=(51, 50, 49), b=(50, 50, 50))  # +0.005 overall at most: under the gain
    verdict = judge(champion, slightly, min_gain=0.01)
    assert not verdict.promote and "under the 0.01 required" in verdict.reason
    shifted = scores(a=(80, 20, 20), b=(44, 56, 56))  # overall up, b down 0.06
    verdict = judge(champion, shifted)
    assert not verdict.promote and "in b -0.0600" in verdict.reason
    assert judge(champion, shifted, max_region_drop=0.1).promote


def test_a_search_space_recipe_promotes_its_best_trial_trained_on_every_labelled_region(world, tmp_path):
    space = tmp_path / "nightly.yaml"
    space.write_text("""\
metric: valid_f1
mode: max
budget: {samples: 2, max_concurrent: 1}
scheduler: {type: none}
resources: {num_workers: 1, cpus_per_worker: 1, driver_cpus: 1}
base:
  data: {batch_size: 8, train_regions: [steep-forest], holdout_regions: [volcanic-arc]}
  model: {size: nano, decoder_channels: [32, 16, 16, 8, 8], drop_path: 0.0}
  stage1: {epochs: 1}
  stage2: {epochs: 1, lr: 0.00001}
  selftrain: {rounds: 0}
parameters:
  stage1.lr: {choices: [0.002, 0.001]}
""")
    registry_uri = str(tmp_path / "registry")
    outcome = retrain(world["data"], registry_uri, Recipe(space=str(space), samples=1), log=world["lines"].append)
    assert outcome.decision == "promoted"
    key = outcome.record["key"]
    assert outcome.record["candidate"] == storage.join(registry_uri, "searches", key, "best")
    champion = ModelRegistry(registry_uri).champion()
    # the space's own regions give way to every labelled region, none held out
    labelled = labelled_regions(Manifest.load(world["data"]))
    assert champion.card.regions == Regions(trained=tuple(labelled), held_out=()) and len(labelled) >= 2
    assert len(storage.list_files(storage.join(registry_uri, "searches", key, "trials"))) > 0
    ran = yaml.safe_load(storage.read_bytes(storage.join(registry_uri, "searches", key, "space.yaml")))
    assert ran["budget"]["samples"] == 1
    # the search picked its best on half the validation patches; the verdict was judged on the other half
    assert ran["base"]["data"]["verdict_fraction"] == 0.5 and outcome.record["verdict_fraction"] == 0.5
    assert any("set aside by patch id for the verdict" in line for line in world["lines"])
