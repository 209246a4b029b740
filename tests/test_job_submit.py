"""The main job as users run it: a real head (`ray start --head`, token auth), `ray job submit
--working-dir . -- python jobs/tune.py`, the S3 endpoint arriving through the runtime
environment; the driver stopped mid-search and resumed without repeating finished trials."""

from __future__ import annotations

import json
import os
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from swinls import storage
from swinls.ray_start import LOCAL_TRAIN_POLL_S, TRAIN_POLL_ENV
from swinls.published import load_best
from swinls.ports import free_port
from swinls.shards import ingest
from tests.cluster_world import cluster_env
from tests.helpers import upload_tree

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
NAME = "e2e"

SPACE = """\
metric: valid_f1
mode: max
scope: last-2-avg
budget: {samples: 2, max_concurrent: 1}
scheduler: {type: none}
resources: {num_workers: 1, cpus_per_worker: 1, driver_cpus: 1}
base:
  data: {batch_size: 8, train_regions: [steep-forest]}
  model: {size: nano, decoder_channels: [32, 16, 16, 8, 8], drop_path: 0.0}
  stage1: {epochs: 2, lr: 0.002}
  stage2: {epochs: 1, lr: 0.00001}
  selftrain: {rounds: 0}
  run: {keep_checkpoints: 1}
parameters:
  data.bands: {choices: [RGB, NGB, RGB+NIR]}
  stage1.loss.lovasz: {low: 0.0, high: 0.5}
"""


@pytest.fixture(scope="module")
def head(s3_endpoint, tmp_path_factory):
    """A Ray head of its own, with token authentication like any 2.60 cluster.

    The fake AWS keys sit in the head's environment (where an instance profile would be on a
    cluster); only the endpoint is handed to the job, through its runtime environment."""
    home = tmp_path_factory.mktemp("head")
    token = home / "auth_token"
    token.write_text(secrets.token_hex(32))
    env = {k: v for k, v in cluster_env().items() if k not in ("RAY_ADDRESS", "AWS_ENDPOINT_URL")}
    env.update(RAY_AUTH_MODE="token", RAY_AUTH_TOKEN_PATH=str(token), RAY_USAGE_STATS_ENABLED="0",
               PATH=f"{BIN}{os.pathsep}{env.get('PATH', '')}", SWINLS_STUDY_CACHE=str(home / "studies"))
    env[TRAIN_POLL_ENV] = LOCAL_TRAIN_POLL_S  # as init_local_ray sets it: these epochs are shorter than 2 s
    dashboard = free_port()
    ports = {"--port": free_port(), "--dashboard-port": dashboard, "--dashboard-agent-listen-port": free_port(),
             "--dashboard-agent-grpc-port": free_port(), "--metrics-export-port": free_port(),
             "--runtime-env-agent-port": free_port(), "--ray-client-server-port": free_port()}
    temp_dir = tempfile.mkdtemp(prefix="rayhead-", dir="/tmp")  # short: Ray's socket paths live under it
    start = [str(BIN / "ray"), "start", "--head", "--block", "--num-cpus=4", "--dashboard-host=127.0.0.1",
             "--disable-usage-stats", f"--temp-dir={temp_dir}", *[f"{flag}={port}" for flag, port in ports.items()]]
    log = open(home / "head.log", "w")
    process = subprocess.Popen(start, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    env["RAY_ADDRESS"] = f"http://127.0.0.1:{dashboard}"
    try:
        wait_until(lambda: process.poll() is None and jobs_api(env) is not None, 120,
                   f"the head to start (see {home / 'head.log'})")
        yield env
    finally:
        stop_tree(process)
        log.close()
        shutil.rmtree(temp_dir, ignore_errors=True)


def stop_tree(process: subprocess.Popen) -> None:
    """Stop this head only: `ray stop` would also stop the test session's own local Ray."""
    import psutil

    try:
        tree = [psutil.Process(process.pid), *psutil.Process(process.pid).children(recursive=True)]
    except psutil.NoSuchProcess:
        return
    for proc in reversed(tree):
        try:
            proc.terminate()
        except psutil.NoSuchProcess:
            pass
    _, alive = psutil.wait_procs(tree, timeout=5)  # what outlives SIGTERM that long is killed
    for proc in alive:
        try:
            proc.kill()
        except psutil.NoSuchProcess:
            pass


def ray_cli(env, *args, timeout=120, cwd=ROOT) -> subprocess.CompletedProcess:
    return subprocess.run([str(BIN / "ray"), *args], env=env, capture_output=True, text=True, timeout=timeout, cwd=cwd)


_clients: dict[str, object] = {}


def jobs_api(env):
    """The head's job API from this process (None until it answers), for what the tests poll: a
    `ray job status` a second is a process importing Ray each time, about 1.6 CPU-seconds, and was
    40 % of these tests' CPU. Jobs are submitted and stopped with the CLI, as users do."""
    from ray.job_submission import JobSubmissionClient

    address = env["RAY_ADDRESS"]
    if address not in _clients:
        token = Path(env["RAY_AUTH_TOKEN_PATH"]).read_text().strip()
        try:
            _clients[address] = JobSubmissionClient(address, headers={"Authorization": f"Bearer {token}"})
        except ConnectionError:
            return None
    return _clients[address]


def job_logs(env, job_id) -> str:
    return jobs_api(env).get_job_logs(job_id)


def submit(env, s3_endpoint, *tune_args) -> str:
    return submit_job(env, s3_endpoint, "jobs/tune.py", "--space", "s3://e2e/space.yaml", "--data", "s3://e2e/shards",
                      "--storage", "s3://e2e/experiments", "--name", NAME, *tune_args)


def submit_job(env, s3_endpoint, script, *args, cwd=ROOT) -> str:
    runtime_env = json.dumps({"env_vars": {"AWS_ENDPOINT_URL": s3_endpoint}})
    done = ray_cli(env, "job", "submit", "--no-wait", "--working-dir", ".", "--runtime-env-json", runtime_env, "--",
                   "python", script, *args, cwd=cwd)
    assert done.returncode == 0, done.stderr + done.stdout
    return next(line.split("'")[1] for line in done.stdout.splitlines() + done.stderr.splitlines()
                if "submitted successfully" in line)


def status(env, job_id) -> str:
    return jobs_api(env).get_job_status(job_id).value  # PENDING, RUNNING, STOPPED, SUCCEEDED, FAILED


def wait_until(predicate, timeout, what, describe=lambda: ""):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(1)
    raise AssertionError(f"timed out waiting for {what} {describe()}")


def finished_trials(exp_uri: str) -> dict[str, bytes]:
    """trial → its run's checkpoint pointer, for the trials whose whole run is done."""
    trials = storage.join(exp_uri, "trials")
    out = {}
    if not storage.exists(trials):
        return out
    for rel in storage.list_files(trials):
        if rel.endswith("checkpoints/LATEST.json"):
            blob = storage.read_bytes(storage.join(trials, rel))
            pointer = json.loads(blob)
            if pointer["phase"] == "stage2" and pointer["phase_done"]:
                out[rel.split("/")[0]] = blob
    return out


def test_submitted_search_stopped_and_resumed_publishes_the_best_to_s3(head, s3_endpoint, synthetic_raw):
    storage.filesystem("s3://e2e")[0].mkdir("e2e")
    ingest(str(synthetic_raw), "s3://e2e/shards")
    storage.write_bytes_atomic("s3://e2e/space.yaml", SPACE.encode())
    exp_uri = f"s3://e2e/experiments/{NAME}"

    first = submit(head, s3_endpoint)
    wait_until(lambda: finished_trials(exp_uri) or status(head, first) not in ("RUNNING", "PENDING"), 600,
               "a first finished trial")
    assert status(head, first) == "RUNNING", job_logs(head, first)[-3000:]
    stop = ray_cli(head, "job", "stop", first)
    assert stop.returncode == 0, stop.stderr
    wait_until(lambda: status(head, first) == "STOPPED", 120, "the driver to stop",
               lambda: status(head, first) + job_logs(head, first)[-2000:])
    before = finished_trials(exp_uri)
    assert len(before) == 1

    second = submit(head, s3_endpoint, "--resume")
    wait_until(lambda: status(head, second) not in ("RUNNING", "PENDING"), 900, "the resumed search")
    logs = job_logs(head, second)
    assert status(head, second) == "SUCCEEDED", logs[-3000:]

    after = finished_trials(exp_uri)
    assert len(after) == 2  # the budget, not two more
    for trial, pointer in before.items():
        assert after[trial] == pointer, f"{trial} was trained again after --resume"
    assert "best model: s3://e2e/experiments/e2e/best/versions/" in logs
    # each trial's epochs as they end, not only the table at the end (the budget's 2 + 1 epochs)
    epochs = [line.split()[1:3] for line in logs.splitlines() if len(line.split()) > 3 and line.split()[1] in ("stage1", "stage2")]
    assert epochs.count(["stage1", "2"]) >= 1 and epochs.count(["stage2", "1"]) >= 1, logs[-3000:]
    table = [line for line in logs.splitlines() if line.strip()[:1].isdigit() and "complete" in line]
    assert len(table) == 2
    _, card = load_best(f"{exp_uri}/best")
    assert card.trial in after and card.objective["metric"] == "valid_f1"
    scores = [sum(h["valid_f1"] for h in history[-2:]) / 2 for history in (json.loads(p)["history"] for p in after.values())]
    assert card.objective["value"] == pytest.approx(max(scores))  # resumed trials too: their saved epochs count


def test_a_submitted_prediction_applies_the_searchs_best_model_on_the_cluster(head, s3_endpoint, prediction_inputs):
    """Runs after the search above: its best model, applied to scenes in the bucket by Ray Data."""
    upload_tree(prediction_inputs.scenes, "s3://e2e/scenes")
    job = submit_job(head, s3_endpoint, "jobs/predict.py", f"s3://e2e/experiments/{NAME}/best", "s3://e2e/scenes",
                     "s3://e2e/predictions", "--probability")
    wait_until(lambda: status(head, job) not in ("RUNNING", "PENDING"), 600, "the prediction job")
    logs = job_logs(head, job)
    assert status(head, job) == "SUCCEEDED", logs[-3000:]
    summary = json.loads(storage.read_bytes("s3://e2e/predictions/prediction.json"))
    assert summary["ray"] is True and summary["model"].startswith(f"s3://e2e/experiments/{NAME}/best/versions/")
    assert summary["count"] == 56  # windows of the 512² scene (36) and the 300×417 crop (20)
    assert "metrics over 2 scenes" in logs and "wrote s3://e2e/predictions" in logs
    assert set(storage.list_files("s3://e2e/predictions")) == {
        "crop_prediction.tif", "crop_probability.tif", "scene_0_prediction.tif", "scene_0_probability.tif",
        "crop_quicklook.png", "scene_0_quicklook.png", "crop_item.json", "scene_0_item.json", "collection.json",
        "metrics.json", "prediction.json"}


RETRAIN_SETTINGS = ["model.size=nano", "model.decoder_channels=[32, 16, 16, 8, 8]", "model.drop_path=0.0",
                    "data.batch_size=8", "stage1.epochs=1", "stage1.lr=0.002", "stage2.epochs=1", "selftrain.rounds=0"]


def test_scheduled_retraining_submitted_to_the_cluster_promotes_then_judges_a_new_region(head, s3_endpoint,
                                                                                          synthetic_raw, tmp_path):
    """The nightly job as cron would submit it: a first champion, then a night after a new region
    was ingested. (A night with nothing new is a no-op; tests/test_retrain.py runs that one.)"""
    storage.filesystem("s3://nightly")[0].mkdir("nightly")
    for name in ("steep-forest", "terraced-farmland"):
        shutil.copytree(synthetic_raw / name, tmp_path / "first" / name, copy_function=os.link)
    ingest(str(tmp_path / "first"), "s3://nightly/shards")
    args = ["--data", "s3://nightly/shards", "--registry", "s3://nightly/registry",
            *[a for setting in RETRAIN_SETTINGS for a in ("--set", setting)]]

    def night() -> list[str]:
        job = submit_job(head, s3_endpoint, "jobs/retrain.py", *args)
        wait_until(lambda: status(head, job) not in ("RUNNING", "PENDING"), 600, "the retraining job")
        logs = job_logs(head, job)
        assert status(head, job) == "SUCCEEDED", logs[-3000:]
        return [line for line in logs.splitlines() if line.strip()]

    first = night()
    assert [line.split()[:2] for line in first if line.split()[:1] in (["stage1"], ["stage2"])] == [
        ["stage1", "1"], ["stage2", "1"]]  # the challenger's epochs, live from the workers
    champion = storage.latest_version("s3://nightly/registry/champion")["version"]
    assert first[-1].startswith(f"decision: promoted {champion} (first champion")

    shutil.copytree(synthetic_raw / "volcanic-arc", tmp_path / "second" / "volcanic-arc", copy_function=os.link)
    ingest(str(tmp_path / "second"), "s3://nightly/shards")
    third = night()
    verdict = third[-1].split()[1]
    assert verdict in ("promoted", "kept")
    record_uri = next(line.split(": ", 1)[1] for line in third if line.startswith("record: "))
    record = json.loads(storage.read_bytes(record_uri))
    assert record["verdict"] == verdict and record["champion"]["before"] == champion
    for model in ("champion", "challenger"):
        assert set(record["scores"][model]["regions"]) == {"steep-forest", "terraced-farmland", "volcanic-arc"}
    now = storage.latest_version("s3://nightly/registry/champion")["version"]
    assert (now == record["champion"]["after"]) if verdict == "promoted" else (now == champion)
    assert any(line.startswith("volcanic-arc ") for line in third)  # the score table, per region


def test_the_submitted_copy_of_the_package_is_what_every_worker_runs(head, s3_endpoint, synthetic_raw, tmp_path):
    """The cluster launcher installs the project on every node; a job submitted from a changed
    working directory must run the change, on the driver and in the Train workers, and the
    checkpoint must say which code trained it (no .git travels with the job)."""
    from swinls.published import source_hash

    copy = tmp_path / "project"
    shutil.copytree(ROOT, copy, ignore=shutil.ignore_patterns(".venv", ".git", "runs", ".cache", "__pycache__", "*.egg-info"))
    with open(copy / "platform" / "swinls" / "losses.py", "a") as edited:
        edited.write("\n# an edit submitted with the job\n")
    submitted, installed = source_hash(copy / "platform" / "swinls"), source_hash(ROOT / "platform" / "swinls")
    assert submitted != installed
    storage.filesystem("s3://code")[0].mkdir("code")
    if not storage.exists("s3://code/shards/manifest.json"):
        ingest(str(synthetic_raw), "s3://code/shards")
    # the smoke test's recipe, one epoch a stage: which code ran is known after the first
    job = submit_job(head, s3_endpoint, "jobs/train.py", "--smoke-test", "--data", "s3://code/shards",
                     "--storage", "s3://code/runs", "--name", "submitted", "--set", "stage1.epochs=1",
                     "--set", "selftrain.rounds=0", "--set", "data.train_regions=[steep-forest]", cwd=copy)
    wait_until(lambda: status(head, job) not in ("RUNNING", "PENDING"), 600, "the training job")
    logs = job_logs(head, job)
    assert status(head, job) == "SUCCEEDED", logs[-3000:]
    from swinls.checkpoints import RunStore

    state = RunStore("s3://code/runs/submitted").load()
    assert state["code_version"]["source"] == submitted  # the worker imported the submitted copy
    assert state["code_version"]["git"] is None
