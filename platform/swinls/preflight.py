"""Checks a job runs on what it was given before it starts Ray or any trial: a wrong input is
found in a second, in one line naming it, not after Ray has started and every trial has failed.

Nothing here imports Ray; each check raises a `SwinLSError` subclass.
"""

from __future__ import annotations

import math
import os
from pathlib import Path

from swinls import storage
from swinls.errors import SourceError, SwinLSError
from swinls.shards.manifest import Manifest


class DeviceError(SwinLSError):
    """The run asks for devices (GPUs) the machine or cluster does not have."""


def check_data(uri: str, *configs) -> Manifest:
    """The shard dataset at `uri`: its manifest read (a missing one says to ingest), and the
    regions each experiment config in `configs` trains on or holds out present in it."""
    storage.check_uri(uri)
    manifest = Manifest.load(uri)
    for config in configs:
        named = [*config.data.train_regions, *config.data.holdout_regions]
        missing = [region for region in named if region not in manifest.regions]
        if missing:
            raise SourceError(Manifest.uri(uri), f"has no region {', '.join(missing)} (it has {', '.join(manifest.regions)}); "
                              "set data.train_regions and data.holdout_regions to regions it has")
    return manifest


def check_model(uri: str):
    """A published model at `uri` (any way a user names one), its card read and checked; the
    weights are loaded later, by whatever predicts."""
    from swinls.published import read_card

    storage.check_uri(uri)
    return read_card(uri)[0]


def check_storage(uri: str) -> str:
    """A place runs can be written: a well-formed URI; locally, a folder (or one that can be
    made) and not a file. S3 is checked by the first write, which fails in one line too."""
    storage.check_uri(uri)
    if storage.is_s3(uri):
        return uri
    path = Path(uri.removeprefix("file://")).absolute()
    if path.exists() and not path.is_dir():
        raise SourceError(str(uri), "is a file; --storage must be a folder or s3://bucket/prefix")
    existing = next(p for p in (path, *path.parents) if p.exists())
    if not existing.is_dir():
        raise SourceError(str(uri), f"cannot be made: {existing} is a file")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise SourceError(str(uri), f"cannot be written: no write permission on {existing}")
    return uri


def check_devices(use_gpu: bool, gpus: float, *, local: bool = False) -> None:
    """GPUs asked for must exist. In this process (`local`) or a local Ray they must be visible to
    torch here; a job submitted to a cluster (RAY_ADDRESS) is checked against the cluster once
    connected (`ray_start.check_gpus`), since the head may have none of its own."""
    if not use_gpu:
        return
    if os.environ.get("RAY_ADDRESS") and not local:
        return
    import torch

    have = torch.cuda.device_count() if torch.cuda.is_available() else 0
    needed = max(1, math.ceil(gpus))
    if have < needed:
        raise DeviceError(f"--use-gpu (run.use_gpu) asks for {gpus:g} GPU(s) but this machine has {have}"
                          + ("; to run on CPUs, drop --use-gpu or --set run.use_gpu=false" if not have else ""))
