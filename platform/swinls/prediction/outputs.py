"""Outputs that are committed, never merged.

Everything is written to a local staging folder first and made visible by one step when complete
(see `commit`). A folder OUTPUT's marker is `prediction.json`, written last, listing each file
with its sha256; a single-scene `.tif` OUTPUT carries the GeoTIFF tag `SWINLS_PREDICTION`.

`--overwrite` replaces an earlier prediction, recognised by its marker, and nothing else: an
OUTPUT holding files no prediction wrote is refused, and only files of the earlier prediction are
ever deleted. OUTPUT may not be INPUT or MODEL, contain them or lie inside them, and may not be a
bucket root. One run per OUTPUT at a time: a lock beside it (`.<name>.swinls-lock`) is taken
before any work starts, so a second run stops at once with an error, and the first loses nothing.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import tempfile
from pathlib import Path

from swinls import locks, storage
from swinls.prediction import commit
from swinls.prediction.errors import PredictionError

SUMMARY = "prediction.json"
TAG = "SWINLS_PREDICTION"  # GeoTIFF metadata of every mask and probability raster this platform writes
LOCK_SUFFIX = ".swinls-lock"
# what predictions wrote before their marker listed its files
_LEGACY = re.compile(r"^(mask_\d+\.h5|submission\.zip|metrics\.json|prediction\.json|.+_(prediction|probability)\.tif)$")


def _place(uri: str) -> str:
    """Where a URI points, comparable by prefix: `s3://bucket/key` or a resolved local path."""
    if storage.is_s3(uri):
        return "s3://" + str(uri).split("://", 1)[1].strip("/")
    return os.path.realpath(storage.filesystem(uri)[1])


def _inside(child: str, parent: str) -> bool:
    return child != parent and child.startswith(parent.rstrip("/") + "/")


def check_output(uri: str, protect: dict[str, str | None]) -> None:
    """Refuse an OUTPUT that is a bucket root, or is, contains or lies inside a protected path."""
    storage.check_uri(uri)
    if storage.is_bucket_root(uri):
        raise PredictionError(uri, "a bucket root cannot be OUTPUT; give a prefix, such as s3://bucket/predictions/…")
    out = _place(uri)
    for label, other in protect.items():
        if not other:
            continue
        place = _place(other)
        if out == place:
            raise PredictionError(uri, f"is {label} itself; choose another OUTPUT")
        if _inside(place, out):
            raise PredictionError(uri, f"contains {label} ({other}); choose another OUTPUT")
        if _inside(out, place):
            raise PredictionError(uri, f"lies inside {label} ({other}); choose another OUTPUT")


def published_folder(version_uri: str) -> str:
    """The folder holding a model's pointer (`best/`, `champion/`) for a version folder."""
    parent, found, _ = str(version_uri).rpartition("/versions/")
    return parent if found else str(version_uri)


def _lock(uri: str) -> locks.Lock:
    parent, _, name = str(uri).rstrip("/").rpartition("/")
    if not storage.is_s3(uri):
        target = Path(storage.filesystem(uri)[1])
        parent, name = str(target.parent), target.name
    try:
        return locks.acquire(storage.join(parent, f".{name}{LOCK_SUFFIX}"), f"jobs/predict.py writing {uri}")
    except locks.LockHeld as exc:
        raise PredictionError(uri, f"another prediction to it is under way ({exc}); this one stops") from None


def existing_prediction(uri: str, overwrite: bool) -> set[str] | None:
    """The files of the earlier prediction at a folder OUTPUT (None: there is none, or an empty
    folder); a PredictionError if OUTPUT holds files and --overwrite was not given, or holds
    anything but a prediction."""
    fs, path = storage.filesystem(uri)
    if not fs.exists(path):
        return None
    names = set(storage.list_files(uri)) if fs.isdir(path) else None
    if names is None:
        raise PredictionError(uri, "is a file, not a folder; choose another OUTPUT")
    if not names:
        return None  # an empty folder: nothing to lose, and a rename replaces it
    if commit.JOURNAL in names and not overwrite:
        raise PredictionError(uri, "holds an unfinished prediction (a run to it was cut off); pass --overwrite to "
                                   "replace it")
    if not overwrite:
        raise PredictionError(uri, "already exists; choose another OUTPUT or pass --overwrite to replace it")
    ours: set[str] = set()
    if SUMMARY in names:
        listed = _json_or_none(storage.join(uri, SUMMARY)).get("files")
        ours |= {SUMMARY} | (set(listed) if isinstance(listed, dict) else {n for n in names if _LEGACY.match(n)})
    if commit.JOURNAL in names:
        ours |= {commit.JOURNAL} | set(_json_or_none(storage.join(uri, commit.JOURNAL)).get("files") or ())
    if not ours:
        raise PredictionError(uri, f"is not an earlier prediction (no {SUMMARY}); --overwrite replaces only a "
                                   "prediction, so choose another OUTPUT")
    foreign = sorted(names - ours)
    if foreign:
        more = f" and {len(foreign) - 5} more" if len(foreign) > 5 else ""
        raise PredictionError(uri, f"holds files no prediction wrote ({', '.join(foreign[:5])}{more}); --overwrite "
                                   "replaces only an earlier prediction: move them away or choose another OUTPUT")
    return ours & names


def _json_or_none(uri: str) -> dict:
    try:
        found = storage.read_json(uri)
    except (storage.StorageError, FileNotFoundError):
        return {}
    return found if isinstance(found, dict) else {}


def refuse_existing(uri: str, overwrite: bool) -> None:
    """The early check, before a model is loaded: the same refusals as at the start of writing."""
    if not str(uri).lower().endswith((".tif", ".tiff")):
        existing_prediction(uri, overwrite)
    elif storage.exists(uri):
        existing_file(uri, overwrite)


def existing_file(uri: str, overwrite: bool) -> None:
    """A single-file OUTPUT that exists must be an earlier prediction, and --overwrite given."""
    if not storage.exists(uri):
        return
    if not overwrite:
        raise PredictionError(uri, "already exists; choose another OUTPUT or pass --overwrite to replace it")
    from swinls.prediction.rasters import open_raster

    try:
        with open_raster(uri) as dataset:
            ours = TAG in dataset.tags()
    except PredictionError:
        ours = False
    if not ours:
        raise PredictionError(uri, f"is not a prediction this platform wrote (no {TAG} tag); --overwrite replaces "
                                   "only an earlier prediction, so choose another OUTPUT")


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _staging(uri: str) -> Path:
    if storage.is_s3(uri):
        return Path(tempfile.mkdtemp(prefix="swinls-predict-"))
    target = Path(storage.filesystem(uri)[1])
    target.parent.mkdir(parents=True, exist_ok=True)
    return Path(tempfile.mkdtemp(prefix=f".{target.name}.partial-", dir=target.parent))


class StagedFolder:
    """OUTPUT as a folder of files. `protect`: label → URI that OUTPUT must keep clear of."""

    def __init__(self, uri: str, overwrite: bool = False, protect: dict[str, str | None] | None = None,
                 log=lambda line: None) -> None:
        check_output(uri, protect or {})
        self.uri = str(uri).rstrip("/")
        self.s3, self.overwrite = storage.is_s3(self.uri), overwrite
        self.lock = _lock(self.uri)
        try:
            if not self.s3:
                self._tidy(log)
            existing_prediction(self.uri, overwrite)
            self.staging = _staging(self.uri)
        except BaseException:
            self.lock.release()
            raise

    def _tidy(self, log) -> None:
        """What killed runs to this OUTPUT left beside it: staging folders, a parked prediction."""
        target = Path(storage.filesystem(self.uri)[1])
        for stale in target.parent.glob(f".{target.name}.partial-*"):
            shutil.rmtree(stale, ignore_errors=True)
        commit.restore_parked(target, lambda path: (path / SUMMARY).exists(), log)

    def path(self, name: str) -> Path:
        """Where to write `name` now; it reaches OUTPUT at commit."""
        return self.staging / name

    def commit(self, summary: dict) -> list[str]:
        """Write the marker (`summary` plus every file's sha256) and make the folder visible; the
        names of the files written."""
        files = {p.name: storage.sha256_file(p) for p in sorted(self.staging.iterdir()) if p.name != SUMMARY}
        marker = dict(summary, files=files)
        try:
            previous = existing_prediction(self.uri, self.overwrite)  # again, now: what appeared meanwhile is refused
            if self.s3:
                commit.upload(self.staging, self.uri, files, previous or set(), SUMMARY, marker, self.lock.check)
                shutil.rmtree(self.staging, ignore_errors=True)
            else:
                (self.staging / SUMMARY).write_text(json.dumps(marker, indent=1, sort_keys=True) + "\n")
                self._rename(previous)
        finally:
            self.lock.release()
        return sorted([*files, SUMMARY])

    def _rename(self, previous: set[str] | None) -> None:
        target = Path(storage.filesystem(self.uri)[1])
        os.chmod(self.staging, 0o777 & ~_umask())
        self.lock.check()
        if previous is None:
            try:
                os.rename(self.staging, target)
            except OSError as exc:
                raise PredictionError(self.uri, f"appeared while this run worked ({exc.strerror}); it was left as it "
                                                "is and nothing was written") from None
            return
        old = commit.replace_local(self.staging, target)
        left = {str(p.relative_to(old)) for p in old.rglob("*") if p.is_file()} - previous
        if left:
            raise PredictionError(self.uri, f"the new prediction is in place; files added to the old one while this "
                                            f"run worked ({', '.join(sorted(left)[:5])}) are kept in {old}")
        shutil.rmtree(old)

    def abort(self) -> None:
        shutil.rmtree(self.staging, ignore_errors=True)
        self.lock.release()


class StagedFiles:
    """OUTPUT as one file (a scene's mask), with optional siblings (its probability)."""

    def __init__(self, uris: dict[str, str], overwrite: bool = False,
                 protect: dict[str, str | None] | None = None) -> None:
        self.uris = dict(uris)  # name → final URI
        for uri in self.uris.values():
            check_output(uri, protect or {})
        self.lock = _lock(self.uris["mask"])
        try:
            for uri in self.uris.values():
                existing_file(uri, overwrite)
            self.staging = _staging(self.uris["mask"])
        except BaseException:
            self.lock.release()
            raise

    def path(self, name: str) -> Path:
        return self.staging / name

    def commit(self) -> list[str]:
        """Each staged file to its URI (each appears whole); the URIs written."""
        written = []
        try:
            for name, uri in self.uris.items():
                staged = self.staging / name
                if not staged.exists():
                    continue
                self.lock.check()
                if storage.is_s3(uri):
                    storage.put_file_atomic(staged, uri)
                else:
                    os.chmod(staged, storage.FILE_MODE)
                    os.replace(staged, storage.filesystem(uri)[1])
                written.append(uri)
        finally:
            shutil.rmtree(self.staging, ignore_errors=True)
            self.lock.release()
        return written

    def abort(self) -> None:
        shutil.rmtree(self.staging, ignore_errors=True)
        self.lock.release()
