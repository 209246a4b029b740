"""The champion pointer and the decision records under operators and faults: a rollback that stays,
intents that are settled truthfully, one run per key, pointers that cannot leave their folder,
conditional writes that survive lost replies and 409s, and one-line errors. Training runs in this
process on a small world (tests/retrain_world.py); S3 is the moto server, faults come from a real
proxy in front of it."""

from __future__ import annotations

import json
import re
import shutil
import threading
import time
from pathlib import Path

import pytest

from swinls import storage
from swinls.checkpoints import CheckpointError, RunStore
from swinls.published import load_published
from swinls.retraining import ModelRegistry, RetrainError, retrain, rollback
from tests.flaky_proxy import DROP, Answer, FlakyProxy, conditional_put, first_matching
from tests.helpers import upload_tree
from tests.jobs import load_job
from tests.retrain_world import FORCE_LOCAL, recipe, small_datasets


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """A registry whose champion v_b (trained on B) replaced v_a (trained on A)."""
    root = tmp_path_factory.mktemp("retrain-safety")
    data = small_datasets(root)
    registry = str(root / "registry")
    first = retrain(data["A"], registry, recipe(0), FORCE_LOCAL, log=lambda line: None)
    second = retrain(data["B"], registry, recipe(0), FORCE_LOCAL, log=lambda line: None)
    assert first.decision == second.decision == "promoted"
    return {"data": data, "registry": registry, "v_a": first.record["champion"]["after"],
            "v_b": second.record["champion"]["after"], "key_b": second.record["key"]}


def copy_registry(world, target: Path) -> str:
    shutil.copytree(world["registry"], target)
    return str(target)


def records(registry: str) -> list[dict]:
    root = Path(registry) / "decisions"
    return [json.loads(p.read_text()) for p in sorted(root.glob("*.json"))]


def champion(registry: str) -> str:
    return ModelRegistry(registry).champion().version


def crash():
    raise KeyboardInterrupt("the driver dies between the recorded verdict and the pointer swap")


def quiet(line):
    pass


def test_after_an_operator_rolls_back_a_rerun_with_unchanged_inputs_leaves_the_champion_there(world, tmp_path):
    registry = copy_registry(world, tmp_path / "registry")
    assert champion(registry) == world["v_b"]
    assert rollback(registry, world["v_a"]) == f"rollback: champion is {world['v_a']} (was {world['v_b']})"
    trained = sorted(p.name for p in (tmp_path / "registry" / "runs").iterdir())
    again = retrain(world["data"]["B"], registry, recipe(0), FORCE_LOCAL)  # the run that promoted v_b
    assert champion(registry) == world["v_a"], "a rerun moved the pointer back over the operator's rollback"
    assert again.decision == "no-op" and again.repeated
    assert f"run {world['key_b']} promoted {world['v_b']} before; the champion is now {world['v_a']}, rolled back by " \
           "an operator" in again.line
    assert sorted(p.name for p in (tmp_path / "registry" / "runs").iterdir()) == trained
    kinds = [r["verdict"] for r in records(registry)]
    assert kinds.count("rolled-back") == 1 and kinds.count("promoted") == 2


def test_an_intended_promotion_the_pointer_moved_past_is_recorded_as_kept_not_promoted(world, tmp_path):
    registry = copy_registry(world, tmp_path / "registry")
    with pytest.raises(KeyboardInterrupt):
        retrain(world["data"]["A"], registry, recipe(1), FORCE_LOCAL, log=quiet, before_pointer=crash)
    assert champion(registry) == world["v_b"]
    [intent] = [r for r in records(registry) if r.get("candidate") and "run.seed=1" in r["recipe"]["overrides"]]
    staged = (intent["champion"]["after"])
    assert staged not in (world["v_a"], world["v_b"])
    rollback(registry, world["v_a"])  # the pointer moves before the swap ever happens
    again = retrain(world["data"]["A"], registry, recipe(1), FORCE_LOCAL)
    assert champion(registry) == world["v_a"]
    [record] = [r for r in records(registry) if r.get("key") == intent["key"]]
    assert record["verdict"] == "kept", f"the record says {record['verdict']} for a swap that never happened"
    assert record["champion"]["after"] == world["v_b"] and "was not promoted" in record["reason"]
    assert again.decision in ("no-op", "kept") and staged not in again.line


def test_a_promotion_cut_off_before_its_swap_is_finished_by_its_rerun_when_the_pointer_stayed(world, tmp_path):
    registry = copy_registry(world, tmp_path / "registry")
    with pytest.raises(KeyboardInterrupt):
        retrain(world["data"]["A"], registry, recipe(2), FORCE_LOCAL, log=quiet, before_pointer=crash)
    [intent] = [json.loads(p.read_text()) for p in (tmp_path / "registry" / "decisions").glob("*.pending.json")]
    assert intent["verdict"] == "promoting" and champion(registry) == world["v_b"]
    finished = retrain(world["data"]["A"], registry, recipe(2), FORCE_LOCAL)
    assert finished.decision == "promoted" and finished.repeated
    assert champion(registry) == finished.record["champion"]["after"] == intent["champion"]["after"]
    assert not list((tmp_path / "registry" / "decisions").glob("*.pending.json"))
    final = Path(finished.record_uri)  # a run cut off after writing the final record, before removing the intent:
    leftover = final.with_name(final.name.replace(".json", ".pending.json"))
    leftover.write_text(json.dumps(intent))
    killed_writer = final.with_name(f".tmp-x1y2z3{leftover.name}")  # what a writer killed mid-write leaves
    killed_writer.write_text('{"key": "')
    assert retrain(world["data"]["A"], registry, recipe(2), FORCE_LOCAL).decision == "no-op"  # which settles too
    assert not leftover.exists() and json.loads(final.read_text())["verdict"] == "promoted"


@pytest.mark.parametrize("where", ["local", "s3"])
def test_rollback_repairs_a_champion_whose_pointer_is_unreadable(world, tmp_path, where, request):
    registry = copy_registry(world, tmp_path / "registry")
    if where == "s3":
        bucket = request.getfixturevalue("bucket")
        upload_tree(tmp_path / "registry", f"{bucket}/registry")
        registry = f"{bucket}/registry"
    storage.write_bytes_atomic(storage.join(registry, "champion", "LATEST.json"), b'{"version": "v_b", "pre')
    with pytest.raises(RetrainError, match="the champion cannot be loaded .* --rollback VERSION"):
        retrain(world["data"]["B"], registry, recipe(0), FORCE_LOCAL)
    line = rollback(registry, world["v_a"])
    assert line == f"rollback: champion is {world['v_a']} (was an unreadable or missing pointer)"
    model, card, version_uri = load_published(registry)
    assert version_uri.endswith(world["v_a"])


def test_pointers_that_leave_their_folder_are_refused(world, tmp_path):
    registry = copy_registry(world, tmp_path / "registry")
    elsewhere = tmp_path / "elsewhere" / "versions" / "evil"
    shutil.copytree(tmp_path / "registry" / "champion" / "versions" / world["v_a"], elsewhere)
    pointer_path = tmp_path / "registry" / "champion" / "LATEST.json"
    pointer = json.loads(pointer_path.read_text())
    pointer.update(version="evil", prefix="../../elsewhere/versions/evil")
    pointer_path.write_text(json.dumps(pointer))
    with pytest.raises(storage.StorageError, match=r"LATEST\.json: names '\.\./\.\./elsewhere/versions/evil', not a "
                                                   r"version inside its own folder"):
        load_published(registry)
    with pytest.raises(RetrainError, match="the champion cannot be loaded"):
        retrain(world["data"]["A"], registry, recipe(0), FORCE_LOCAL)

    [run] = [p for p in (tmp_path / "registry" / "runs").iterdir() if p.name == world["key_b"]]
    latest = run / "checkpoints" / "LATEST.json"
    saved = json.loads(latest.read_text())
    outside = tmp_path / "elsewhere" / "foreign.pt"
    shutil.copy(run / "checkpoints" / saved["checkpoint"], outside)
    latest.write_text(json.dumps(dict(saved, checkpoint="../../../../elsewhere/foreign.pt", sha256=None)))
    with pytest.raises(CheckpointError, match=r"names '\.\./\.\./\.\./\.\./elsewhere/foreign\.pt', not a checkpoint "
                                              r"file of this run"):
        RunStore(str(run)).load()


def test_two_runs_with_one_key_cannot_train_at_once_and_a_second_writer_of_a_run_is_stopped(world, tmp_path):
    registry = str(tmp_path / "registry")
    outcome = {}

    def first():
        outcome["first"] = retrain(world["data"]["B"], registry, recipe(5), FORCE_LOCAL)

    thread = threading.Thread(target=first)
    thread.start()
    deadline = time.monotonic() + 120
    while not list((tmp_path / "registry").glob("runs/*/config.yaml")):
        assert thread.is_alive() and time.monotonic() < deadline, "the first run never started training"
        time.sleep(0.05)
    try:
        with pytest.raises(RetrainError, match=r"run [0-9a-f]{16} is already under way .*jobs/retrain\.py run"):
            retrain(world["data"]["B"], registry, recipe(5), FORCE_LOCAL)
    finally:
        thread.join()
    assert outcome["first"].decision == "promoted"
    assert len(records(registry)) == 1

    run = str(tmp_path / "one-run")
    state = {"model": {}, "history": []}
    first_writer, second_writer = RunStore(run), RunStore(run)
    first_writer.save(state, phase="stage1", epoch=1, phase_done=False, history=[])
    second_writer.save(state, phase="stage1", epoch=2, phase_done=False, history=[])
    with pytest.raises(CheckpointError, match="another process saved a checkpoint of this run"):
        first_writer.save(state, phase="stage1", epoch=3, phase_done=False, history=[])
    assert RunStore(run).latest()["epoch"] == 2


def s3_registry(world, tmp_path, bucket) -> str:
    upload_tree(Path(copy_registry(world, tmp_path / "registry")), f"{bucket}/registry")
    return f"{bucket}/registry"


def test_a_pointer_swap_whose_reply_is_lost_or_that_meets_409_still_lands_once(world, tmp_path, bucket, s3_endpoint,
                                                                              monkeypatch):
    registry = s3_registry(world, tmp_path, bucket)
    pointer = lambda r: conditional_put(r) and r.path.endswith("/champion/LATEST.json")  # noqa: E731
    with FlakyProxy(s3_endpoint, rule=first_matching(pointer, DROP)) as proxy:
        monkeypatch.setenv("AWS_ENDPOINT_URL", proxy.endpoint)
        assert rollback(registry, world["v_a"]).startswith(f"rollback: champion is {world['v_a']}")
    assert proxy.dropped == 1 and champion(registry) == world["v_a"]
    conflict = Answer(409, "ConditionalRequestConflict", "A conflicting conditional operation is in progress")
    with FlakyProxy(s3_endpoint, rule=first_matching(pointer, conflict, times=2)) as proxy:
        monkeypatch.setenv("AWS_ENDPOINT_URL", proxy.endpoint)
        rollback(registry, world["v_b"])
    assert proxy.failures == 2 and champion(registry) == world["v_b"]
    assert [r["verdict"] for r in records_s3(registry)].count("rolled-back") == 2


def records_s3(registry: str) -> list[dict]:
    root = storage.join(registry, "decisions")
    return [storage.read_json(storage.join(root, name)) for name in storage.list_files(root)]


def test_a_promotion_whose_swap_reply_is_lost_is_recorded_as_promoted(world, tmp_path, bucket, s3_endpoint, monkeypatch):
    registry = s3_registry(world, tmp_path, bucket)
    pointer = lambda r: conditional_put(r) and r.path.endswith("/champion/LATEST.json")  # noqa: E731
    with FlakyProxy(s3_endpoint, rule=first_matching(pointer, DROP)) as proxy:
        monkeypatch.setenv("AWS_ENDPOINT_URL", proxy.endpoint)
        outcome = retrain(world["data"]["A"], registry, recipe(3), FORCE_LOCAL)
    assert proxy.dropped == 1
    assert outcome.decision == "promoted" and outcome.record["verdict"] == "promoted"
    assert champion(registry) == outcome.record["champion"]["after"]


def test_the_retraining_job_turns_storage_and_input_failures_into_one_line(world, tmp_path, capsys):
    job = load_job("retrain")
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "manifest.json").write_text("{")
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    cases = [(["--data", str(bad), "--registry", str(tmp_path / "r")], r"bad/manifest\.json: not valid JSON"),
             (["--data", world["data"]["A"], "--registry", "s3:///registry"], r"s3:///registry: no bucket name"),
             (["--data", world["data"]["A"], "--registry", f"{blocker}/registry"], r"Not a directory"),
             (["--registry", world["registry"], "--rollback", "nope"], r"no version 'nope'")]
    for args, message in cases:
        assert job.main([*args, "--local"] if "--rollback" not in args else args) == 2
        err = capsys.readouterr().err
        assert err.startswith("error: ") and err.count("\n") == 1, err
        assert re.search(message, err), err
