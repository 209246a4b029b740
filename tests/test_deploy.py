"""deploy/: the cron wrapper run as cron runs it (an empty environment: `env -i`), one night at a
time; the Kubernetes manifests checked against the jobs they start and against each other."""

from __future__ import annotations

import fcntl
import subprocess
from pathlib import Path

import ray
import yaml

from tests.jobs import job_flags

ROOT = Path(__file__).resolve().parents[1]
WRAPPER = ROOT / "deploy" / "cron" / "swinls-retrain"
KUBERNETES = ROOT / "deploy" / "kubernetes"

NIGHT = ("--local --set model.size=nano --set model.decoder_channels=[32,16,16,8,8] --set model.drop_path=0.0 "
         "--set data.batch_size=8 --set stage1.epochs=1 --set stage1.lr=0.002 --set stage2.epochs=1 "
         "--set selftrain.rounds=0")


def as_cron(settings: Path) -> subprocess.CompletedProcess:
    """The wrapper started with nothing inherited: no PATH, HOME, virtualenv or AWS variables."""
    return subprocess.run(["env", "-i", "/bin/sh", "-c", f"'{WRAPPER}' '{settings}'"], capture_output=True, text=True,
                          timeout=900)


def settings_file(tmp_path: Path, **values: str) -> Path:
    path = tmp_path / "retrain.env"
    path.write_text("".join(f'{key}="{value}"\n' for key, value in values.items()))
    return path


def test_a_night_from_cron_trains_and_promotes_in_an_empty_environment(synthetic_shards, tmp_path):
    logs = tmp_path / "logs"
    settings = settings_file(tmp_path, SWINLS_DATA=synthetic_shards, SWINLS_REGISTRY=str(tmp_path / "registry"),
                             SWINLS_RETRAIN_ARGS=NIGHT, SWINLS_LOG_DIR=str(logs))
    done = as_cron(settings)
    assert done.returncode == 0, done.stderr + done.stdout
    summary = (logs / "retrain.log").read_text().splitlines()
    assert summary[0].split(" ", 1)[1].startswith("started: ") and "jobs/retrain.py" in summary[0]
    assert " exit 0: decision: promoted " in summary[1]
    run_log = next(logs.glob("retrain-*.log")).read_text()
    assert "decision: promoted" in run_log and (tmp_path / "registry" / "champion").is_dir()


def test_a_night_that_finds_the_last_one_still_running_does_nothing(tmp_path):
    logs = tmp_path / "logs"
    logs.mkdir()
    settings = settings_file(tmp_path, SWINLS_DATA="s3://never-read/shards", SWINLS_REGISTRY="s3://never-read/registry",
                             SWINLS_LOG_DIR=str(logs))
    with open(logs / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)  # the night before, still training
        done = as_cron(settings)
    assert done.returncode == 0
    assert "skipped: another retraining run holds" in (logs / "retrain.log").read_text()
    assert not list(logs.glob("retrain-*.log"))


def test_settings_without_the_registry_are_refused_by_name(tmp_path):
    done = as_cron(settings_file(tmp_path, SWINLS_DATA="s3://b/shards"))
    assert done.returncode == 2
    assert f"{tmp_path / 'retrain.env'} does not set SWINLS_REGISTRY" in done.stderr


def documents(path: Path) -> list[dict]:
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc]


def test_the_rayjob_starts_retraining_with_flags_it_has_on_the_pinned_ray():
    rayjob = documents(KUBERNETES / "rayjob-retrain.yaml")[0]
    assert rayjob["kind"] == "RayJob" and rayjob["spec"]["shutdownAfterJobFinishes"] is True
    words = rayjob["spec"]["entrypoint"].split()
    assert words[:2] == ["python", "jobs/retrain.py"]
    flags = job_flags("retrain")
    assert [w for w in words if w.startswith("--") and w not in flags] == []
    assert rayjob["spec"]["rayClusterSpec"]["rayVersion"] == ray.__version__
    assert f"rayproject/ray:{ray.__version__}-" in (ROOT / "deploy" / "Dockerfile").read_text()


def test_the_cronjob_never_overlaps_and_creates_that_rayjob_under_a_dated_name():
    docs = {doc["kind"]: doc for doc in documents(KUBERNETES / "cronjob-retrain.yaml")}
    cron = docs["CronJob"]["spec"]
    assert cron["concurrencyPolicy"] == "Forbid"
    held = docs["ConfigMap"]["data"]["rayjob.yaml"]
    assert yaml.safe_load(held) == documents(KUBERNETES / "rayjob-retrain.yaml")[0]  # one RayJob, not two drifting
    script = cron["jobTemplate"]["spec"]["template"]["spec"]["containers"][0]["args"][0]
    rename = next(line.strip() for line in script.splitlines() if line.strip().startswith("sed "))
    renamed = subprocess.run(["bash", "-c", rename.split(" | ")[0].replace("/rayjob/rayjob.yaml", "/dev/stdin")],
                             input=held, capture_output=True, text=True, env={"name": "swinls-retrain-20261204-0230"})
    assert renamed.returncode == 0, renamed.stderr
    created = yaml.safe_load(renamed.stdout)
    assert created["metadata"]["name"] == "swinls-retrain-20261204-0230"
    created["metadata"]["name"] = "swinls-retrain"
    assert created == yaml.safe_load(held)  # the name, and nothing else
    role = docs["Role"]["rules"][0]
    assert role["resources"] == ["rayjobs"] and {"create", "get"} <= set(role["verbs"])
