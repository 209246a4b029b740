"""A run's storage: its resolved config, checkpoints and the pointer to the latest one.

    <run>/config.yaml                      the resolved experiment config
    <run>/checkpoints/<phase>-e<NNNN>.pt   torch.save of plain data and tensors only
    <run>/checkpoints/LATEST.json          pointer: file, sha256, phase, epoch, metric history

A checkpoint file is complete before the pointer names it (atomic upload, then pointer), and it
loads with `torch.load(weights_only=True)`: nothing in it can run code. A corrupt, truncated or
foreign file is a `CheckpointError` naming it, not a crash deep inside torch.

One writer per run: the pointer is moved by compare-and-swap against the pointer this store last
read or wrote, so a second process saving into the same run (two jobs given one `--name`, a
stalled worker that was replaced) fails with a CheckpointError at its next save instead of
interleaving its checkpoints with the other's. A pointer that names a file outside
`checkpoints/` is refused.
"""

from __future__ import annotations

import copy
import hashlib
import io
import os
import pickle
import tempfile
import threading
import uuid
import zipfile
from typing import Any

import torch
import yaml

from swinls import cas, storage
from swinls.errors import SwinLSError

FORMAT = "swinls-checkpoint/1"
POINTER = storage.POINTER_NAME  # one pointer name for every pointer file of the platform
LEGACY_POINTER = "latest.json"  # runs started before that: read when LATEST.json is absent, never written


class CheckpointError(SwinLSError, RuntimeError):
    pass


class RunStore:
    def __init__(self, uri: str) -> None:
        self.uri = str(uri).rstrip("/")
        self._seen: cas.Snapshot | None = None  # the pointer as this store last read or wrote it

    @property
    def config_uri(self) -> str:
        return storage.join(self.uri, "config.yaml")

    def checkpoint_uri(self, name: str) -> str:
        return storage.join(self.uri, "checkpoints", name)

    # -- config -----------------------------------------------------------------------------
    def write_config(self, text: str) -> None:
        """The first run writes it; a re-run (resume) must bring the same config. Where the run
        lives (`storage`) is not part of what it trains: a run moved, say from a folder to S3,
        resumes from its new place, and its saved config keeps the first one's wording."""
        if storage.exists(self.config_uri):
            existing = storage.read_bytes(self.config_uri).decode()
            saved, given = _without_location(existing, self.config_uri), _without_location(text, "the given config")
            if saved != given:
                import difflib

                diff = "\n".join(difflib.unified_diff(saved.splitlines(), given.splitlines(), "saved", "given",
                                                      lineterm="", n=0))
                raise CheckpointError(f"{self.uri} already holds a run with a different config; resume it with the same "
                                      f"config or choose another name:\n{diff}")
            return
        storage.write_bytes_atomic(self.config_uri, text.encode())

    # -- checkpoints ------------------------------------------------------------------------
    def latest(self) -> dict | None:
        self._seen = cas.read(self.checkpoint_uri(POINTER))
        pointer = self._seen.json()
        if pointer is None:
            pointer = self._legacy()
        if pointer is not None:
            name = pointer.get("checkpoint") if isinstance(pointer, dict) else None
            if not isinstance(name, str) or not storage.SAFE_NAME.match(name):
                raise CheckpointError(f"{self._seen.uri}: names {name!r}, not a checkpoint file of this run; refused")
        return pointer

    def _legacy(self) -> dict | None:
        return cas.read(self.checkpoint_uri(LEGACY_POINTER)).json()

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
        seen = self._seen if self._seen is not None else cas.read(self.checkpoint_uri(POINTER))
        previous = seen.json() or self._legacy() or {}
        finals = dict(previous.get("phase_finals", {}))
        if phase_done:
            finals[phase] = name
        recent = [n for n in previous.get("recent", []) if n != name] + [name]
        pointer = {"checkpoint": name, "sha256": digest, "phase": phase, "epoch": epoch, "phase_done": phase_done,
                   "phase_finals": finals, "recent": recent[-keep:], "history": history, "write": uuid.uuid4().hex}
        try:
            self._seen = cas.swap(self.checkpoint_uri(POINTER), cas.encode(pointer), seen.digest)
        except cas.Conflict as exc:
            raise CheckpointError(f"{self.uri}: another process saved a checkpoint of this run since this one last did "
                                  f"({exc}); one process per run: give this one another name") from exc
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


LOCATION_KEYS = ("storage",)


def _without_location(text: str, where: str) -> str:
    """The config as YAML with the keys that only say where the run lives taken out."""
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise CheckpointError(f"{where}: not a YAML config ({str(exc).splitlines()[0]})") from exc
    if not isinstance(data, dict):
        raise CheckpointError(f"{where}: not a config mapping (found {type(data).__name__})")
    return yaml.safe_dump({k: v for k, v in data.items() if k not in LOCATION_KEYS}, sort_keys=False)


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


def snapshot(value: Any) -> Any:
    """A copy of a state (nested dicts, lists, tensors) that training can no longer change: every
    tensor copied to the CPU. On a GPU this copy is the only part of a save that waits for it."""
    if isinstance(value, torch.Tensor):
        return value.detach().to("cpu", copy=True)
    if isinstance(value, dict):
        return {k: snapshot(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(snapshot(v) for v in value)
    return copy.deepcopy(value)


class BackgroundSaver:
    """Saves checkpoints off the training thread: `submit` snapshots the state and returns, a
    thread serialises, uploads and moves the pointer while the next epoch runs. One save at a
    time, in order (a submit first waits for the previous one); an upload that failed is raised
    by the next `submit` or `wait`, so a broken store stops the run instead of being forgotten.
    Until a save finishes, the pointer still names the previous checkpoint, which is complete:
    a worker killed mid-upload resumes from there.
    """

    def __init__(self, store: RunStore) -> None:
        self.store = store
        self._thread: threading.Thread | None = None
        self._error: BaseException | None = None

    def submit(self, state: dict[str, Any], **save_kwargs) -> str:
        self.wait()
        frozen, kwargs = snapshot(state), copy.deepcopy(save_kwargs)
        name = self.store.checkpoint_uri(f"{kwargs['phase']}-e{kwargs['epoch']:04d}.pt")

        def work() -> None:
            try:
                self.store.save(frozen, **kwargs)
            except BaseException as exc:  # noqa: BLE001 - re-raised on the training thread
                self._error = exc

        self._thread = threading.Thread(target=work, name="checkpoint-upload", daemon=True)
        self._thread.start()
        return name

    def wait(self) -> None:
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        if self._error is not None:
            error, self._error = self._error, None
            raise CheckpointError(f"{self.store.uri}: saving a checkpoint failed: {error}") from error
