"""A Ray cluster of several nodes on one machine, a job run against it, and a worker node taken
away mid-trial as a spot reclaim would do it.

Ray's own `ray.cluster_utils.Cluster` starts a head and worker nodes, each a raylet with its own
resources (the head carries `swinls_driver`, as cluster.yaml's head does, so trials' drivers stay
there). The job runs as a user would run it on the head (`python jobs/<job>.py`, RAY_ADDRESS set).
Once `--kill-when` holds, the node where an unfinished trial trained its last epoch (recorded in its
checkpoint's history) is removed without warning and a fresh node joins (what an autoscaler does after a reclaim). A process can be connected to one Ray
cluster only, so tests/test_multinode.py runs this in its own process and reads its JSON report.

    python tests/cluster_world.py --report out.json --watch s3://b/exp/e --kill-when one-finished \\
        -- tune --space ... --storage s3://b/exp --name e
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "platform"))

NODE_CPUS = 2
JOB_TIMEOUT_S = 1500


def trial_pointers(exp_uri: str) -> dict[str, dict]:
    """trial folder → its run's checkpoint pointer (the trials that have checkpointed)."""
    from swinls import storage

    trials = storage.join(exp_uri, "trials")
    if not storage.exists(trials):
        return {}
    return {rel.split("/")[0]: storage.read_json(storage.join(trials, rel))
            for rel in storage.list_files(trials) if rel.endswith("checkpoints/LATEST.json")}


FINAL_PHASE = "stage2"  # the jobs run here train without self-training


def finished(pointer: dict) -> bool:
    return pointer["phase"] == FINAL_PHASE and pointer["phase_done"]


def ready_to_kill(pointers: dict[str, dict], when: str) -> bool:
    done = [t for t, p in pointers.items() if finished(p)]
    running = [t for t, p in pointers.items() if not finished(p)]
    if when == "one-finished":  # a finished trial that must not run again, and one mid-run
        return bool(done) and bool(running)
    return bool(running)  # "mid-run": a trial with a checkpoint, not finished


class Reclaimer:
    """Removes an unfinished trial's node once `when` holds, then a fresh node joins.
    Called from the main thread: Ray starts and stops nodes with signal handlers, which Python
    allows only there."""

    def __init__(self, cluster, exp_uri: str, when: str) -> None:
        self.cluster, self.exp_uri, self.when = cluster, exp_uri, when
        self.report: dict = {}
        self.done = when == "never"

    def poll(self) -> None:
        if self.done:
            return
        try:
            pointers = trial_pointers(self.exp_uri)
            if not ready_to_kill(pointers, self.when):
                return
            # the node where an unfinished trial trained its last epoch (its history says which)
            busy = {p["history"][-1].get("node") for p in pointers.values() if not finished(p)}
            victims = [n for n in self.cluster.worker_nodes if n.node_id in busy]
        except Exception as exc:  # noqa: BLE001 - storage mid-write, a state API hiccup: look again
            self.report.setdefault("watch_errors", []).append(repr(exc)[:200])
            return
        if victims:
            self.done = True  # once, whatever happens next
            self.report.update(before=pointers, removed_node=victims[0].node_id)
            self.cluster.remove_node(victims[0], allow_graceful=False)
            self.report["removed_at"] = time.time()
            self.report["added_node"] = self.cluster.add_node(num_cpus=NODE_CPUS).node_id


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--report", required=True)
    parser.add_argument("--watch", help="the experiment URI whose trials' checkpoints decide when to kill")
    parser.add_argument("--kill-when", choices=("one-finished", "mid-run", "never"), default="never")
    parser.add_argument("--workers", type=int, default=2, help="worker nodes besides the head")
    parser.add_argument("job", nargs=argparse.REMAINDER)
    args = parser.parse_args(argv)
    job = [a for a in args.job if a != "--"]

    from ray.cluster_utils import Cluster

    # ports of its own: the machine may run another Ray (a test session's, a user's) on the defaults
    ports = {name: free_port() for name in ("gcs_server_port", "dashboard_port", "ray_client_server_port", "metrics_export_port",
                                            "dashboard_agent_listen_port", "runtime_env_agent_port")}
    cluster = Cluster(initialize_head=True, connect=True,
                      head_node_args={"num_cpus": NODE_CPUS, "resources": {"swinls_driver": 100}, **ports})
    for _ in range(args.workers):
        cluster.add_node(num_cpus=NODE_CPUS)
    cluster.wait_for_nodes()
    reclaimer = Reclaimer(cluster, args.watch, args.kill_when)
    env = dict(os.environ, RAY_ADDRESS=cluster.address)
    started = time.time()
    logs = Path(args.report).with_suffix("")  # the job's output as it comes, to follow a slow run
    with open(f"{logs}.stdout", "w") as out, open(f"{logs}.stderr", "w") as err:
        job_process = subprocess.Popen([sys.executable, str(ROOT / "jobs" / f"{job[0]}.py"), *job[1:]], env=env, cwd=ROOT,
                                       stdout=out, stderr=err, text=True)
        while job_process.poll() is None and time.time() - started < JOB_TIMEOUT_S:
            reclaimer.poll()
            time.sleep(0.5)
        if job_process.poll() is None:
            job_process.kill()
    report = {"nodes": 1 + args.workers, "exit": job_process.wait(), "stdout": Path(f"{logs}.stdout").read_text(),
              "stderr": Path(f"{logs}.stderr").read_text(), "seconds": time.time() - started, **reclaimer.report}
    if args.watch:
        report["after"] = trial_pointers(args.watch)
    Path(args.report).write_text(json.dumps(report))
    import ray

    ray.shutdown()  # the driver first: Ray refuses to remove the node its driver is connected to
    cluster.shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
