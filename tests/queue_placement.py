"""Where queue_here() puts its queue actors when the caller is a trial's driver on the head of a
three-node cluster (run in its own process: a process joins one Ray cluster). Prints, as JSON, for
each queue whether it landed on the caller's node. A queue on another node dies with that node
and takes the trial with it (a spot reclaim of a node the trial does not even use)."""

from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "platform")]

import ray  # noqa: E402
import ray.util.state  # noqa: E402

from tests.cluster_world import World, ray_address_kept  # noqa: E402

QUEUES = 8


@ray.remote(num_cpus=1, resources={"swinls_driver": 1})
class Driver:
    def queues_on_this_node(self) -> list[bool]:
        from swinls.training.forwarding import queue_here

        here = ray.get_runtime_context().get_node_id()
        placed = []
        for _ in range(QUEUES):
            queue = queue_here()
            queue.put(1)  # the actor is up: its node is known
            placed.append(ray.util.state.get_actor(queue.actor._actor_id.hex()).node_id == here)
            queue.shutdown()
        return placed


def main() -> None:
    with tempfile.TemporaryDirectory() as home:
        world = World(workers=2, autoscale=0, home=Path(home))  # drivers on the head, as cluster.yaml has it
        try:
            print(json.dumps(ray.get(Driver.remote().queues_on_this_node.remote())))
        finally:
            world.shutdown()


if __name__ == "__main__":
    with ray_address_kept():
        main()
