"""Several jobs/retrain.py processes on one registry, killed with SIGKILL at random moments, round
after round: the registry stays consistent (see tests/chaos_retrain.py for what is checked)."""

from __future__ import annotations

import json

import pytest

from swinls import storage
from tests import chaos_retrain
from tests.retrain_world import small_datasets


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    return small_datasets(tmp_path_factory.mktemp("chaos"))


@pytest.mark.parametrize("where,rounds", [("local", 4), ("s3", 3)])
def test_killed_retraining_runs_never_leave_the_registry_inconsistent(data, where, rounds, tmp_path, request):
    outside = list(data.values())
    registry = str(tmp_path / "registry")
    if where == "s3":
        bucket = request.getfixturevalue("bucket")
        storage.write_bytes_atomic(f"{bucket}/outside/keep.txt", b"not the registry's")
        registry, outside = f"{bucket}/registry", outside + [bucket]
    (tmp_path / "logs").mkdir()
    report = chaos_retrain.run(registry, data, outside, tmp_path / "logs", rounds, seed={"local": 1, "s3": 2}[where],
                               min_kills=1)
    print(json.dumps(report, indent=1))
    assert report["violations"] == []
    outcomes = report["outcomes"]
    assert report["kills"] >= 1, "no process was killed: the test showed nothing"
    assert report["pointer_writes"] >= 2, "the champion pointer hardly moved: the test showed little"
    assert not [k for k in outcomes if k.startswith("failed")], outcomes
