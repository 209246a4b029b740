"""A run's storage: its resolved config, checkpoints and the pointer to the latest one.

    <run>/config.yaml                      the resolved experiment config
    <run>/checkpoints/<phase>-e<NNNN>.pt   torch.save of plain data and tensors only
    <run>/checkpoints/latest.json          pointer: file, sha256, phase, epoch, metric history

A checkpoint file is complete before the pointer names it (atomic upload, then pointer), and it
loads with `torch.load(weights_only=True)`: nothing in it can run code. A corrupt, truncated or
foreign file is a `CheckpointError` naming it, not a crash deep inside torch.
"""

from __future__ import annotations

import hashlib
import io
import os
import pickle
import tempfile
import zipfile
from typing import Any

import torch

from swinls import storage

FORMAT = "swinls-checkpoint/1"
POINTER = "latest.json"


class CheckpointError(RuntimeError):
    pass


class RunStore:
    def __init__(self, uri: str) -> None:
        self.uri = str(uri).rstrip("/")

    @property
    def config_uri(self) -> str:
        return storage.join(self.uri, "config.yaml")

    def checkpoint_uri(self, name: str) -> str:
        return storage.join(self.uri, "checkpoints", name)

    # -- config -----------------------------------------------------------------------------
    def write_config(self, text: str) -> None:
        """The first run writes it; a re-run (resume) must bring the same config."""
        if storage.exists(self.config_uri):
            existing = storage.read_bytes(self.config_uri).decode()
            if existing != text:
                import difflib

                diff = "\n".join(difflib.unified_diff(existing.splitlines(), text.splitlines(), "saved", "given", lineterm="", n=0))
                raise CheckpointError(f"{self.uri} already holds a run with a different config; resume it with the same "
                                      f"config or choose another name:\n{diff}")
            return
        storage.write_bytes_atomic(self.config_uri, text.encode())

    # -- checkpoints ------------------------------------------------------------------------
    def latest(self) -> dict | None:
        uri = self.checkpoint_uri(POINTER)
        return storage.read_json(uri) if storage.exists(uri) else None

    def save(self, state: dict[str, Any], *, phase: str, epoch: int, phase_done: bool, history: list[dict],
             keep: int = 2) -> str:
        """Write the checkpoint, then move the pointer to it; returns its URI."""
        name = f"{phase}-e{epoch:04d}.pt"
        payload = dict(state, format=FORMAT, phase=phase, epoch=epoch, phase_done=phase_done)
        with tempfile.TemporaryDirectory(prefix="swinls-ckpt-") as tmp:
            local = os.path.join(tmp, name)
            torch.save(payload, local)
            digest = storage.sha256_file(local)
            storage.put_file_atomic(local, self.checkpoint_uri(name))
        previous = self.latest() or {}
        finals = dict(previous.get("phase_finals", {}))
        if phase_done:
            finals[phase] = name
        recent = [n for n in previous.get("recent", []) if n != name] + [name]
        pointer = {"checkpoint": name, "sha256": digest, "phase": phase, "epoch": epoch, "phase_done": phase_done,
                   "phase_finals": finals, "recent": recent[-keep:], "history": history}
        storage.write_json_atomic(self.checkpoint_uri(POINTER), pointer)
        for stale in recent[:-keep]:
            if stale not in finals.values():
                storage.remove(self.checkpoint_uri(stale))
        return self.checkpoint_uri(name)

    def load(self, name: str | None = None, expected_sha256: str | None = None) -> dict[str, Any]:
        """The named checkpoint, or the latest one."""
        if name is None:
            pointer = self.latest()
            if pointer is None:
                raise CheckpointError(f"{self.uri}: no checkpoint yet")
            name, expected_sha256 = pointer["checkpoint"], pointer["sha256"]
        return load_checkpoint(self.checkpoint_uri(name), expected_sha256)


def load_checkpoint(uri: str, expected_sha256: str | None = None) -> dict[str, Any]:
    data = storage.read_bytes(uri)
    if expected_sha256 and hashlib.sha256(data).hexdigest() != expected_sha256:
        raise CheckpointError(f"{uri}: content does not match the sha256 its pointer recorded (corrupt or replaced)")
    try:
        state = torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, zipfile.BadZipFile, EOFError, ValueError, AttributeError) as exc:
        raise CheckpointError(f"{uri}: not a loadable checkpoint ({type(exc).__name__}: {str(exc).splitlines()[0][:200]})") from exc
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        found = state.get("format") if isinstance(state, dict) else type(state).__name__
        raise CheckpointError(f"{uri}: not a SwinLS checkpoint (format {found!r}, expected {FORMAT!r})")
    return state
