"""Ray start-up for the jobs: connect to the cluster a job was submitted to, or start a local
instance sized so that Ray Data has CPUs the training workers do not hold (on 2 cores, training
that takes every logical CPU starves the pipeline and hangs)."""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path

from swinls.ports import free_port
from swinls.preflight import DeviceError


def local_cpus(training_workers: int, cpus_per_worker: float = 1.0) -> int:
    """Logical CPUs for a local Ray: the machine's, but always room for Ray Data beside training
    (on a 2-core machine, 2 training workers holding both CPUs would starve the pipeline)."""
    return max(os.cpu_count() or 1, int(training_workers * cpus_per_worker)) + 2


TRAIN_POLL_ENV = "RAY_TRAIN_HEALTH_CHECK_INTERVAL_S"
LOCAL_TRAIN_POLL_S = "0.5"
PREEMPTION_WATCHER_ENV = "RAY_TRAIN_ENABLE_PREEMPTION_WATCHER"


def init_local_ray(training_workers: int = 1, num_cpus: int | None = None, **kwargs):
    """Connect to the cluster a job was submitted to (RAY_ADDRESS), or start a local Ray with
    room for Ray Data beside the training workers."""
    import ray

    if ray.is_initialized():
        return
    log_to_driver = kwargs.pop("log_to_driver", True)
    if os.environ.get("RAY_ADDRESS") or kwargs.get("address"):
        ray.init(log_to_driver=log_to_driver, runtime_env=submitted_code_env(kwargs.pop("runtime_env", None)), **kwargs)
        return
    kwargs.pop("address", None)
    # Ray Train's controller polls its workers every 2 s by default; a worker holds one report
    # until a poll takes it (a queue of one), so epochs shorter than the poll wait for it, and so
    # does a fit's end: seconds per fit where local epochs take seconds (benchmarks/fit_startup.py).
    # A value the user exported wins; a cluster keeps Ray's default.
    os.environ.setdefault(TRAIN_POLL_ENV, LOCAL_TRAIN_POLL_S)
    # Ray Train starts a preemption watcher actor per worker group (a process, ~2 CPU-s to start)
    # to notice nodes being drained; nothing drains the one node of a local instance.
    os.environ.setdefault(PREEMPTION_WATCHER_ENV, "0")
    # Ray 2.60 turns token authentication on for a new local instance and warns, every start,
    # that it did; it stays on, and the README says so once
    logging.getLogger("ray._private.authentication.authentication_token_setup").setLevel(logging.ERROR)
    cpus = num_cpus or local_cpus(training_workers)
    # Ray expects at most min(cores, logical CPUs) workers to start at once and warns at four times
    # that many processes; one trial's Train and Data actors alone are about 15. The logical CPUs
    # are more than the cores on purpose (room for Ray Data), so the expectation follows them.
    system_config = {"worker_maximum_startup_concurrency": cpus, **kwargs.pop("_system_config", {})}
    # address="local": a fresh instance, never whatever `ray start` last left on this machine.
    ray.init(address="local", num_cpus=cpus, log_to_driver=log_to_driver, _system_config=system_config,
             **with_own_state_api(kwargs))


API_SERVER_ENV = "RAY_API_SERVER_ADDRESS"
DASHBOARD_PORT = 8265  # Ray's default, where users look first


def with_own_state_api(init_kwargs: dict) -> dict:
    """ray.init's arguments for a local instance whose workers reach its own state API.

    The dashboard serves the state API, which Ray Train's placement-group cleaner asks whether a
    run's controller is gone; a trial stopped by the scheduler is freed only that way (its
    placement group otherwise lives as long as the driver: the whole search). The cleaner finds
    the API like a shell: RAY_ADDRESS, else the cluster this machine last recorded. A local
    instance records none, so where another Ray ran or runs, the cleaner asked that one: it
    crashed on a stale address and leaked the CPUs, or took a live run's controller for dead.
    The dashboard gets a port chosen here (Ray's usual 8265 where free), and the job's workers
    its address."""
    kwargs = dict(init_kwargs)
    port = kwargs.setdefault("dashboard_port", free_port(preferred=DASHBOARD_PORT))
    host = kwargs.get("dashboard_host") or "127.0.0.1"
    runtime_env = dict(kwargs.get("runtime_env") or {})
    runtime_env["env_vars"] = {API_SERVER_ENV: f"http://{host}:{port}", **(runtime_env.get("env_vars") or {})}
    kwargs["runtime_env"] = runtime_env
    return kwargs


def package_dir() -> Path:
    return Path(__file__).resolve().parent


def submitted_code_env(runtime_env: dict | None = None) -> dict:
    """The job's runtime environment with this package as a py_module: every node's workers
    import the code the driver imported (under `ray job submit --working-dir .` the submitted
    copy), not whatever an image or the cluster launcher installed there. A job that ships its own
    py_modules keeps them (Ray refuses to merge the same field twice)."""
    runtime_env = dict(runtime_env or {})
    job = json.loads(os.environ.get("RAY_JOB_CONFIG_JSON_ENV_VAR") or "{}")
    if "py_modules" not in runtime_env and "py_modules" not in (job.get("runtime_env") or {}):
        runtime_env["py_modules"] = [str(package_dir())]
    return runtime_env


def check_gpus(needed: float, what: str) -> None:
    """Fail in one line when `needed` GPUs per run cannot be had, rather than leave the run queued
    forever: Ray waits for a request it cannot place instead of refusing it. An autoscaling
    cluster counts the GPUs it can scale to (search/capacity.py), not only those it has now."""
    import ray

    from swinls.search.capacity import cluster_config_path, max_resources

    if needed <= 0:
        return
    have = ray.cluster_resources().get("GPU", 0)
    path = cluster_config_path()
    if path:
        have = max(have, max_resources(path.read_text(), str(path)).get("GPU", 0))
    if have < needed:
        where = "the cluster" if os.environ.get("RAY_ADDRESS") else "this machine"
        raise DeviceError(f"{what} asks for {needed:g} GPU(s) but {where} has {have:g}"
                          + ("; to run on CPUs, drop --use-gpu or --set run.use_gpu=false" if not have else ""))


def check_worker_fits(cpus: float, gpus: float, what: str) -> None:
    """Fail in one line when no node, now or of any type the autoscaler can start, holds one
    worker's CPUs and GPUs: Ray would keep the request pending forever, silently."""
    import ray

    from swinls.search.capacity import cluster_config_path, node_type_resources

    nodes = [node["Resources"] for node in ray.nodes() if node.get("Alive")]
    path = cluster_config_path()
    if path:
        nodes += node_type_resources(path.read_text(), str(path))
    if any(node.get("CPU", 0) >= cpus and node.get("GPU", 0) >= gpus for node in nodes):
        return
    largest = max(nodes, key=lambda node: (node.get("GPU", 0), node.get("CPU", 0)), default={})
    asked = f"{cpus:g} CPU(s)" + (f" and {gpus:g} GPU(s)" if gpus else "")
    kinds = "no node of the cluster, nor any node type its autoscaler starts," if path else "no node of the cluster"
    raise DeviceError(f"{what} asks for {asked} per Ray Train worker, on one node; {kinds} has that (the largest: "
                      f"{largest.get('CPU', 0):g} CPU(s), {largest.get('GPU', 0):g} GPU(s)): lower run.cpus_per_worker "
                      "or add a larger node type")


def check_placeable(run, what: str) -> None:
    """Both checks for a training run's settings (`run.*`): the GPUs it needs in all, and one
    worker's CPUs and GPUs on some node."""
    gpus = run.gpus_per_worker if run.use_gpu else 0
    check_gpus(run.num_workers * gpus, what)
    check_worker_fits(run.cpus_per_worker, gpus, what)
