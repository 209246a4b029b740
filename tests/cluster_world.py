"""A Ray cluster of several nodes on one machine, a job run against it, and what a cloud does to
such a cluster: a worker node taken away mid-trial (a spot reclaim), the head lost and started
again (the job then resubmitted with --resume), or nodes added by an autoscaler.

Ray's own `ray.cluster_utils.Cluster` starts a head and worker nodes, each a raylet with its own
resources (the head carries `swinls_driver`, as cluster.yaml's head does, so trials' drivers stay
there). With `--autoscale N` the head starts alone with an autoscaler config (Ray's fake multi-node
provider: a node it launches is a raylet on this machine) whose worker type allows N nodes; the job
finds that config as it would find cluster.yaml's bootstrap file on a real head. The job runs as a
user would run it on the head (`python jobs/<job>.py`, RAY_ADDRESS set). Once `--kill-when` holds,
looking at the runs' checkpoints under `--watch`, `--lose node` removes without warning the node
where an unfinished run trained its last epoch (its checkpoint's history says which) — its Ray
daemons and every process they started, as a reclaimed machine loses them — and a fresh node
joins, as an autoscaler would add one; `--lose head` kills the job and every node, starts a
new cluster whose head has an empty disk, and submits the job again with --resume; `--lose
node,head` does both, the head once the run the node loss interrupted has gone on elsewhere.

A process can be connected to one Ray cluster only, so tests/test_multinode.py runs this in its own
process and reads its JSON report.

    python tests/cluster_world.py --report out.json --watch s3://b/exp/e --kill-when one-finished \\
        -- tune --space ... --storage s3://b/exp --name e
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "platform"))

from swinls.ports import free_port  # noqa: E402

NODE_CPUS = 2
JOB_TIMEOUT_S = 900  # well inside the test's timeout, so a hung job still leaves a report saying where
POINTER = "checkpoints/LATEST.json"


def run_pointers(watch_uri: str) -> dict[str, dict]:
    """Each run under `watch_uri` (a search's or ablation's trials, a retraining's runs) → its
    checkpoint pointer, keyed by the run's folder relative to `watch_uri`."""
    from swinls import storage

    if not storage.exists(watch_uri):
        return {}
    return {rel[:-len(POINTER)].rstrip("/"): storage.read_json(storage.join(watch_uri, rel))
            for rel in storage.list_files(watch_uri) if rel.endswith(POINTER)}


def finished(pointer: dict) -> bool:
    """The run's last phase done (whatever its recipe's phases are)."""
    last = pointer["history"][-1] if pointer.get("history") else {}
    return bool(pointer["phase_done"] and last.get("run_complete"))


MIN_EPOCHS_LEFT = 3  # a run may end an epoch between the look at its checkpoint and the loss, which must land before it ends


def epochs_left(pointer: dict) -> int:
    last = pointer["history"][-1] if pointer.get("history") else {}
    return int(last.get("epochs_total", 0)) - int(last.get("epoch", 0))


def ready_to_kill(pointers: dict[str, dict], when: str) -> bool:
    done = [t for t, p in pointers.items() if finished(p)]
    running = [t for t, p in pointers.items() if not finished(p) and epochs_left(p) >= MIN_EPOCHS_LEFT]
    if when == "one-finished":  # a finished run that must not run again, and one mid-run
        return bool(done) and bool(running)
    return bool(running)  # "mid-run": a run with a checkpoint, not finished


def resumed_mid_run(pointers: dict[str, dict], before: dict[str, dict]) -> bool:
    """A run the previous loss interrupted has gone on in a new attempt, with epochs still to go."""
    def attempt(pointer: dict) -> str | None:
        return pointer["history"][-1].get("attempt") if pointer.get("history") else None

    return any(run in before and not finished(before[run]) and attempt(p) != attempt(before[run])
               and not finished(p) and epochs_left(p) >= MIN_EPOCHS_LEFT for run, p in pointers.items())


def cluster_env() -> dict:
    """This process's environment as a cluster's would be: without what this session's local Ray
    set for local fits (a cluster's Ray Train keeps its preemption watcher)."""
    from swinls.ray_start import PREEMPTION_WATCHER_ENV

    return {k: v for k, v in os.environ.items() if k != PREEMPTION_WATCHER_ENV}


@contextlib.contextmanager
def ray_address_kept():
    """Ray's "auto" address (/tmp/ray/ray_current_cluster, the path yielded) as it was before the
    block. A Cluster writes its own there; left behind, dead after shutdown, Ray Train's placement-
    group cleaner in another session on this machine asks it, times out, and leaks a stopped
    trial's CPUs."""
    import ray

    path = Path(ray._private.utils.get_ray_address_file(None))
    before = path.read_text() if path.exists() else None
    try:
        yield path
    finally:
        if before is None:
            path.unlink(missing_ok=True)
        else:
            path.write_text(before)


def autoscaler_config(gcs_address: str, max_nodes: int, head_cpus: int) -> dict:
    """Ray's fake multi-node provider: the autoscaler's nodes are raylets on this machine."""
    return {
        "cluster_name": "swinls-world", "max_workers": max_nodes, "upscaling_speed": 1.0, "idle_timeout_minutes": 5,
        "provider": {"type": "fake_multinode", "gcs_address": gcs_address, "use_node_id_as_ip": True,
                     "disable_node_updaters": True, "disable_launch_config_check": True},
        "head_node_type": "ray.head.default",  # the name the fake provider gives its head
        "available_node_types": {
            "ray.head.default": {"resources": {"CPU": head_cpus, "swinls_driver": 100}, "node_config": {}, "max_workers": 0},
            "cpu-worker": {"resources": {"CPU": NODE_CPUS}, "node_config": {}, "min_workers": 0, "max_workers": max_nodes}},
        "auth": {"ssh_user": "ray"}, "docker": {}, "file_mounts": {}, "cluster_synced_files": [],
        "file_mounts_sync_continuously": False, "rsync_exclude": [], "rsync_filter": [], "initialization_commands": [],
        "setup_commands": [], "head_setup_commands": [], "worker_setup_commands": [], "head_start_ray_commands": [],
        "worker_start_ray_commands": []}


class World:
    """One incarnation of the cluster: a head, then worker nodes (or an autoscaler that adds them)."""

    def __init__(self, workers: int, autoscale: int, home: Path, head_cpus: int = NODE_CPUS) -> None:
        import ray
        from ray.cluster_utils import Cluster

        # ports of its own: the machine may run another Ray (a test session's, a user's) on the defaults
        ports = {name: free_port() for name in ("gcs_server_port", "dashboard_port", "ray_client_server_port",
                                                "metrics_export_port", "dashboard_agent_listen_port", "runtime_env_agent_port")}
        self.gcs = f"{ray._private.services.get_node_ip_address()}:{ports['gcs_server_port']}"
        # a lost node is declared dead after 3 failed health checks 1 s apart (Ray's default: 5 at
        # 3 s): the loss is what is tested, not how long the GCS takes to notice a killed raylet
        health = {"health_check_period_ms": 1000, "health_check_failure_threshold": 3}
        head = {"num_cpus": head_cpus, "resources": {"swinls_driver": 100}, "_system_config": health, **ports}
        self.config_path = None
        if autoscale:
            from ray.autoscaler._private.fake_multi_node.node_provider import FAKE_HEAD_NODE_ID

            os.environ.update(RAY_FAKE_CLUSTER="1", AUTOSCALER_UPDATE_INTERVAL_S="1")  # read by the head's monitor
            # the provider knows its head by this id; load reports of another would be dropped
            os.environ["RAY_OVERRIDE_NODE_ID_FOR_TESTING"] = FAKE_HEAD_NODE_ID
            self.config_path = home / "ray_bootstrap_config.yaml"  # what `ray up` leaves on a real head
            self.config_path.write_text(json.dumps(autoscaler_config(self.gcs, autoscale, head_cpus)))
            head["autoscaling_config"] = str(self.config_path)
        try:
            self.cluster = Cluster(initialize_head=True, connect=True, head_node_args=head)
        finally:
            os.environ.pop("RAY_OVERRIDE_NODE_ID_FOR_TESTING", None)
        for _ in range(workers):
            self.cluster.add_node(num_cpus=NODE_CPUS)
        self.cluster.wait_for_nodes()
        self.started = time.time()
        self.worker_nodes_seen: dict[str, float] = {}  # node id → seconds after the start when first seen

    def watch_nodes(self) -> None:
        import ray

        head = self.cluster.head_node.node_id
        for node in ray.nodes():
            if node["Alive"] and node["NodeID"] != head:
                self.worker_nodes_seen.setdefault(node["NodeID"], round(time.time() - self.started, 1))

    def shutdown(self) -> None:
        import psutil
        import ray

        ray.shutdown()  # the driver first: Ray refuses to remove the node its driver is connected to
        self.cluster.shutdown()
        # the autoscaler's nodes are not the Cluster's: stop whatever still serves this cluster's GCS
        left = [p for p in psutil.process_iter(["cmdline"]) if f"--gcs-address={self.gcs}" in " ".join(p.info["cmdline"] or [])]
        for process in left:
            process.terminate()
        _, alive = psutil.wait_procs(left, timeout=5)
        for process in alive:
            process.kill()


class Reclaimer:
    """Decides when to lose the next of `losses` (node, head): the first once `when` holds, each
    later one once a run the previous loss interrupted has gone on in a new attempt. Removes a
    worker node itself. Called from the main thread: Ray starts and stops nodes with signal
    handlers, which Python allows only there."""

    def __init__(self, watch_uri: str | None, when: str, losses: list[str]) -> None:
        self.watch_uri, self.when = watch_uri, when
        self.losses = [] if when == "never" else list(losses)
        self.report: dict = {}
        self.previous: dict[str, dict] | None = None  # the runs as the last loss found them

    @property
    def next(self) -> str | None:
        return self.losses[0] if self.losses else None

    def due(self) -> dict[str, dict] | None:
        if not self.losses:
            return None
        try:
            pointers = run_pointers(self.watch_uri)
        except Exception as exc:  # noqa: BLE001 - storage mid-write: look again
            self.report.setdefault("watch_errors", []).append(repr(exc)[:200])
            return None
        ready = ready_to_kill(pointers, self.when) if self.previous is None else resumed_mid_run(pointers, self.previous)
        return pointers if ready else None

    def lost(self, pointers: dict[str, dict], **facts) -> None:
        """Once per loss, whatever happens next: the runs as it found them, and what it did."""
        what = self.losses.pop(0)
        self.report.setdefault("before", pointers)  # the first loss's, as single-loss checks read it
        self.report[f"before_{what}"] = pointers
        self.report.update(facts)
        self.previous = pointers

    def remove_busy_node(self, world: World, pointers: dict[str, dict]) -> None:
        # the node where an unfinished run trained its last epoch (its history says which), that
        # of the run with the most epochs still to go first: the loss must land before it ends
        busy = [p["history"][-1].get("node") for p in sorted(pointers.values(), key=epochs_left, reverse=True)
                if not finished(p) and epochs_left(p) >= MIN_EPOCHS_LEFT]
        workers = {n.node_id: n for n in world.cluster.worker_nodes}
        victims = [workers[node] for node in busy if node in workers]
        if victims:
            self.lost(pointers, removed_node=victims[0].node_id)
            machine = node_processes(victims[0])
            world.cluster.remove_node(victims[0], allow_graceful=False)
            # remove_node kills the node's Ray daemons; its workers, the raylet's children, would go
            # on training for seconds until they miss the raylet. A reclaimed machine takes them too.
            self.report["killed_with_node"] = kill_all(machine)
            self.report["removed_at"] = time.time()
            self.report["added_node"] = world.cluster.add_node(num_cpus=NODE_CPUS).node_id


def node_processes(node) -> list:
    """Every process of a node started by `Cluster`: its Ray daemons and all they started (the
    raylet's workers among them), as psutil processes."""
    import psutil

    found = []
    for _, process in node.live_processes():
        with contextlib.suppress(psutil.NoSuchProcess):
            daemon = psutil.Process(process.pid)
            found += [daemon, *daemon.children(recursive=True)]
    return found


def kill_all(processes: list) -> int:
    """SIGKILL those still alive; how many were."""
    import psutil

    killed = 0
    for process in processes:
        with contextlib.suppress(psutil.NoSuchProcess):
            if process.is_running():
                process.kill()
                killed += 1
    return killed


def stacks(pid: int) -> str:
    """Where a job that outlived its time is stuck: py-spy (installed with ray[default]) on its driver."""
    spy = Path(sys.executable).with_name("py-spy")
    done = subprocess.run([str(spy), "dump", "--pid", str(pid)], capture_output=True, text=True, timeout=60)
    return done.stdout + done.stderr


def start_job(job: list[str], world: World, home: Path, logs: Path, attempt: int) -> subprocess.Popen:
    env = dict(os.environ, RAY_ADDRESS=world.cluster.address, SWINLS_STUDY_CACHE=str(home / "studies"))
    if world.config_path:
        env["SWINLS_CLUSTER_CONFIG"] = str(world.config_path)
    suffix = "" if attempt == 0 else f".{attempt}"
    with open(f"{logs}{suffix}.stdout", "w") as out, open(f"{logs}{suffix}.stderr", "w") as err:
        return subprocess.Popen([sys.executable, str(ROOT / "jobs" / f"{job[0]}.py"), *job[1:]], env=env, cwd=ROOT,
                                stdout=out, stderr=err, text=True, start_new_session=True)


def losses(text: str) -> list[str]:
    items = text.split(",")
    if items not in (["node"], ["head"], ["node", "head"]):
        raise argparse.ArgumentTypeError(f"{text!r}: node, head or node,head")
    return items


def main(argv=None) -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--report", required=True)
    parser.add_argument("--watch", help="the URI whose runs' checkpoints decide when to lose something")
    parser.add_argument("--kill-when", choices=("one-finished", "mid-run", "never"), default="never")
    parser.add_argument("--lose", type=losses, default=["node"],
                        help="what to lose, in order: node, head, or both (node,head: a node, then the head)")
    parser.add_argument("--workers", type=int, default=2, help="worker nodes started with the head")
    parser.add_argument("--autoscale", type=int, default=0, metavar="N",
                        help="an autoscaler that may add N worker nodes (start with --workers 0)")
    parser.add_argument("--head-cpus", type=int, default=NODE_CPUS)
    parser.add_argument("job", nargs=argparse.REMAINDER)
    args = parser.parse_args(argv)
    job = [a for a in args.job if a != "--"]

    logs = Path(args.report).with_suffix("")  # the job's output as it comes, to follow a slow run
    home = Path(f"{logs}.head")  # the head's disk
    home.mkdir(parents=True, exist_ok=True)
    world = World(args.workers, args.autoscale, home, args.head_cpus)
    reclaimer = Reclaimer(args.watch, args.kill_when, args.lose)
    started = time.time()
    attempts = [start_job(job, world, home, logs, 0)]
    while attempts[-1].poll() is None and time.time() - started < JOB_TIMEOUT_S:
        world.watch_nodes()
        pointers = reclaimer.due()
        if pointers is not None and reclaimer.next == "node":
            reclaimer.remove_busy_node(world, pointers)
        elif pointers is not None:  # the head: its driver dies with it; an operator restarts and resubmits
            os.killpg(attempts[-1].pid, signal.SIGKILL)
            attempts[-1].wait()
            reclaimer.lost(pointers, head_lost_at=time.time() - started)
            world.shutdown()
            shutil.rmtree(home)  # a new head's disk holds nothing of the old one's
            home.mkdir()
            world = World(args.workers, args.autoscale, home, args.head_cpus)
            attempts.append(start_job([*job, "--resume"], world, home, logs, len(attempts)))
        time.sleep(0.2)  # epochs of about a second: the window to lose a node in is a few of them
    if attempts[-1].poll() is None:
        reclaimer.report["hung"] = stacks(attempts[-1].pid)
        os.killpg(attempts[-1].pid, signal.SIGKILL)
    suffixes = [""] + [f".{i}" for i in range(1, len(attempts))]
    report = {"nodes": 1 + args.workers, "head": world.cluster.head_node.node_id, "exit": attempts[-1].wait(), "exits": [a.wait() for a in attempts],
              "stdout": Path(f"{logs}{suffixes[-1]}.stdout").read_text(), "stderr": Path(f"{logs}{suffixes[-1]}.stderr").read_text(),
              "first_stdout": Path(f"{logs}.stdout").read_text(), "seconds": time.time() - started,
              "worker_nodes_seen": world.worker_nodes_seen, **reclaimer.report}
    if args.watch:
        report["after"] = run_pointers(args.watch)
    Path(args.report).write_text(json.dumps(report))
    world.shutdown()
    return 0


if __name__ == "__main__":
    with ray_address_kept():
        sys.exit(main())
