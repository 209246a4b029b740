"""Outputs that appear whole or not at all.

Every file is first written to a local staging folder. Locally, the staging folder sits beside
OUTPUT and is renamed into place when everything is written (one rename; an overwritten output
is swapped out and deleted only after). On S3 the finished files are uploaded at the end (each
object appears whole), the summary `prediction.json` last; a failure removes what this run
uploaded. An existing OUTPUT is refused unless `overwrite` is given.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

from swinls import storage
from swinls.prediction.errors import PredictionError

SUMMARY = "prediction.json"


def refuse_existing(uri: str, overwrite: bool) -> bool:
    fs, path = storage.filesystem(uri)
    exists = fs.exists(path)
    if exists and not overwrite:
        raise PredictionError(uri, "already exists; choose another OUTPUT or pass --overwrite to replace it")
    return exists


class StagedFolder:
    """OUTPUT as a folder of files."""

    def __init__(self, uri: str, overwrite: bool = False) -> None:
        self.uri = str(uri).rstrip("/")
        self.replacing = refuse_existing(self.uri, overwrite)
        self.s3 = storage.is_s3(self.uri)
        if self.s3:
            self.staging = Path(tempfile.mkdtemp(prefix="swinls-predict-"))
        else:
            target = Path(storage.filesystem(self.uri)[1])
            target.parent.mkdir(parents=True, exist_ok=True)
            self.staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.partial-", dir=target.parent))
        self.names: list[str] = []

    def path(self, name: str) -> Path:
        """Where to write `name` now; it reaches OUTPUT at commit."""
        if name not in self.names:
            self.names.append(name)
        return self.staging / name

    def commit(self) -> None:
        if self.s3:
            self._upload()
        else:
            self._rename()

    def _rename(self) -> None:
        target = Path(storage.filesystem(self.uri)[1])
        os.chmod(self.staging, 0o777 & ~_umask())
        old = None
        if target.exists():
            old = target.with_name(f".{target.name}.replaced-{os.getpid()}")
            os.rename(target, old)
        os.rename(self.staging, target)
        if old is not None:
            shutil.rmtree(old) if old.is_dir() else old.unlink()

    def _upload(self) -> None:
        before = set(storage.list_files(self.uri)) if self.replacing else set()
        ordered = sorted(self.names, key=lambda n: n == SUMMARY)  # the summary last: its presence means complete
        done = []
        try:
            for name in ordered:
                storage.put_file_atomic(self.staging / name, storage.join(self.uri, name))
                done.append(name)
        except BaseException:
            if not self.replacing:
                for name in done:
                    storage.remove(storage.join(self.uri, name))
            raise
        for stale in sorted(before - set(self.names)):
            storage.remove(storage.join(self.uri, stale))
        shutil.rmtree(self.staging, ignore_errors=True)

    def abort(self) -> None:
        shutil.rmtree(self.staging, ignore_errors=True)


class StagedFiles:
    """OUTPUT as one file (a scene's mask), with optional siblings (its probability)."""

    def __init__(self, uris: dict[str, str], overwrite: bool = False) -> None:
        self.uris = dict(uris)  # name → final URI
        for uri in self.uris.values():
            refuse_existing(uri, overwrite)
        first = next(iter(self.uris.values()))
        if storage.is_s3(first):
            self.staging = Path(tempfile.mkdtemp(prefix="swinls-predict-"))
        else:
            parent = Path(storage.filesystem(first)[1]).parent
            parent.mkdir(parents=True, exist_ok=True)
            self.staging = Path(tempfile.mkdtemp(prefix=".predict.partial-", dir=parent))

    def path(self, name: str) -> Path:
        return self.staging / name

    def commit(self) -> None:
        for name, uri in self.uris.items():
            staged = self.staging / name
            if not staged.exists():
                continue
            if storage.is_s3(uri):
                storage.put_file_atomic(staged, uri)
            else:
                _replace_local(staged, uri)
        shutil.rmtree(self.staging, ignore_errors=True)

    def abort(self) -> None:
        shutil.rmtree(self.staging, ignore_errors=True)


def _replace_local(path: Path, uri: str) -> None:
    os.chmod(path, storage.FILE_MODE)
    os.replace(path, storage.filesystem(uri)[1])


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask
