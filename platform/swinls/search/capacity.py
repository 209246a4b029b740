"""How many trials a search runs at once: what fits the cluster it can scale to, not only what
it has now. An autoscaling cluster starts with a head and no GPU; sized by that, a search would
run one trial at a time and the autoscaler, seeing no pending trials, would never add a node.

The largest cluster comes from the autoscaler's config — the cluster launcher's bootstrap file
on the head (`~/ray_bootstrap_config.yaml`, what `ray up cluster.yaml` leaves there), or a file
named by SWINLS_CLUSTER_CONFIG — as each node type's resources times its max_workers, the head
once, within the global max_workers. Without one, the resources the cluster has now.
"""

from __future__ import annotations

import os
from pathlib import Path

import yaml

BOOTSTRAP = Path.home() / "ray_bootstrap_config.yaml"


def cluster_config_path() -> Path | None:
    named = os.environ.get("SWINLS_CLUSTER_CONFIG")
    if named:
        if not Path(named).exists():
            raise FileNotFoundError(f"SWINLS_CLUSTER_CONFIG names {named}, which does not exist")
        return Path(named)
    return BOOTSTRAP if BOOTSTRAP.exists() else None


def max_resources(config_text: str, source: str = "cluster config") -> dict[str, float]:
    """Total resources of the largest cluster an autoscaler config allows."""
    config = yaml.safe_load(config_text) or {}
    types = config.get("available_node_types") or {}
    head = config.get("head_node_type")
    if not types or head not in types:
        raise ValueError(f"{source}: no available_node_types with the head_node_type {head!r}")
    total = dict((types[head].get("resources") or {}))
    budget = int(config.get("max_workers", 10**6))
    # the largest nodes first: the global cap binds on the ones a search wants most (GPUs)
    workers = sorted(((name, spec) for name, spec in types.items() if name != head),
                     key=lambda item: -float((item[1].get("resources") or {}).get("GPU", 0)))
    for _, spec in workers:
        count = min(int(spec.get("max_workers", 0)), budget)
        budget -= count
        for key, value in (spec.get("resources") or {}).items():
            total[key] = total.get(key, 0) + count * float(value)
    return total


def node_type_resources(config_text: str, source: str = "cluster config") -> list[dict[str, float]]:
    """Each node type's resources (the nodes an autoscaler can start, the head included)."""
    config = yaml.safe_load(config_text) or {}
    return [{k: float(v) for k, v in (spec.get("resources") or {}).items()}
            for spec in (config.get("available_node_types") or {}).values()]


def worker_node_slots(config_text: str, source: str = "cluster config") -> int:
    """How many worker nodes the autoscaler may start (0: the head is the whole cluster)."""
    config = yaml.safe_load(config_text) or {}
    types = config.get("available_node_types") or {}
    head = config.get("head_node_type")
    slots = sum(int(spec.get("max_workers", 0)) for name, spec in types.items() if name != head)
    return min(slots, int(config.get("max_workers", slots)))


def trials_that_fit(resources: dict[str, float], *, num_workers: int, cpus_per_worker: float, driver_cpus: float,
                    use_gpu: bool, gpus_per_worker: float) -> int:
    """Trials at once in these resources, keeping a CPU for Ray Data; at least one."""
    per_trial_cpus = driver_cpus + num_workers * cpus_per_worker
    fit = int((resources.get("CPU", 1) - 1) // per_trial_cpus)
    if use_gpu:
        fit = min(fit, int(resources.get("GPU", 0) / (num_workers * gpus_per_worker) + 1e-9))
    return max(1, fit)


def driver_slots(nodes: list[dict[str, float]], driver_cpus: float, marker: str) -> int | None:
    """Trial drivers that fit the nodes carrying `marker` (cluster.yaml's head: drivers stay off
    spot workers); None when no node pins them."""
    pinned = [node for node in nodes if node.get(marker)]
    if not pinned or driver_cpus <= 0:
        return None
    return max(1, int(sum(node.get("CPU", 0) for node in pinned) // driver_cpus))


def concurrency_for(resources_now: dict[str, float], resources_max: dict[str, float] | None, *,
                    drivers: int | None = None, **trial) -> tuple[int, str]:
    """Trials at once and why: what fits the cluster it can scale to, within the room its pinned
    drivers have."""
    now = trials_that_fit(resources_now, **trial)
    fit, why = now, f"what fits the cluster now ({_describe(resources_now)})"
    if resources_max and trials_that_fit(resources_max, **trial) > now:
        fit = trials_that_fit(resources_max, **trial)
        why = (f"what fits the largest cluster its autoscaler allows ({_describe(resources_max)}; "
               f"now {_describe(resources_now)})")
    if drivers is not None and drivers < fit:
        fit, why = drivers, f"{why}, within the {drivers} trial driver(s) the head holds"
    return fit, why


def _describe(resources: dict[str, float]) -> str:
    return ", ".join(f"{resources.get(key, 0):g} {key}" for key in ("CPU", "GPU") if resources.get(key) or key == "CPU")
