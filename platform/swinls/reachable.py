"""On a cluster of more than one node, everything a trial reads or writes must be where every node
can reach it: trials, Train workers and Ray Data tasks run on whichever node has room, and a
folder on the node that started the job does not exist there (or, worse, exists and differs).

Local paths are refused with the flag that named them and the fix, unless they lie under a
filesystem the user declares mounted on every node (`--shared-fs PATH`: NFS, EFS, Lustre).
The built-in and preset datasets are made on the driver and published to the run's storage.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from swinls import storage
from swinls.errors import SwinLSError

SHARED_FS_ENV = "SWINLS_SHARED_FS"


class UnreachablePath(SwinLSError):
    """A local path where a multi-node cluster needs a URI every node can reach."""


@dataclass(frozen=True)
class Cluster:
    nodes: int  # alive now
    scales_to_more: bool  # an autoscaler may add nodes

    @property
    def multi_node(self) -> bool:
        return self.nodes > 1 or self.scales_to_more

    def describe(self) -> str:
        now = f"{self.nodes} node{'s' if self.nodes != 1 else ''}"
        return now + (" and an autoscaler that adds more" if self.scales_to_more else "")


def current_cluster() -> Cluster:
    """The Ray cluster this process is connected to: its alive nodes, and whether its autoscaler
    config (search/capacity.py) lets worker nodes join later."""
    import ray

    from swinls.search.capacity import cluster_config_path, worker_node_slots

    nodes = sum(1 for node in ray.nodes() if node.get("Alive"))
    path = cluster_config_path()
    return Cluster(nodes, bool(path) and worker_node_slots(path.read_text(), str(path)) > 0)


def is_local(uri: str) -> bool:
    return "://" not in uri


def _under(path: str, root: str) -> bool:
    return Path(path).resolve().is_relative_to(Path(root).resolve())


def check_reachable(paths: dict[str, str | None], cluster: Cluster, shared_fs: str | None = None) -> None:
    """Refuse, in one line naming the flag, a local path that other nodes of a multi-node cluster
    would not see. `paths`: what names it (a flag or config key) → the path or URI."""
    if not cluster.multi_node:
        return
    shared_fs = shared_fs or os.environ.get(SHARED_FS_ENV) or None
    for name, uri in paths.items():
        if not uri or not is_local(uri) or (shared_fs and _under(uri, shared_fs)):
            continue
        shared = f"; or, if {shared_fs} is the filesystem every node mounts, a path under it" if shared_fs else (
            ", or declare a filesystem every node mounts with --shared-fs PATH")
        raise UnreachablePath(f"{name} {uri} is a local path, and this cluster ({cluster.describe()}) runs trials on "
                              f"nodes that cannot read it: use an s3:// URI{shared}")


def pretrained_path(pretrained: str | None) -> str | None:
    """The weights file a model config names, when it names a file rather than a timm model."""
    from swinls.models.weights import kind_of

    return pretrained if pretrained and kind_of(pretrained) == "file" else None


def published_dataset_uri(storage_uri: str, name: str) -> str:
    """Where a dataset made on the driver is published for every node: beside the runs."""
    return storage.join(storage_uri, "datasets", name)
