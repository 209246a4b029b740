"""Making a finished prediction visible in one step, locally or on S3.

Locally a staged folder takes OUTPUT's place by one rename, or, replacing an earlier prediction,
by one `renameat2(RENAME_EXCHANGE)`: OUTPUT is the old prediction or the new one at every instant.
Where the filesystem cannot exchange (NFS, non-Linux), the old folder is parked beside OUTPUT
under a name that says so, the new one renamed in, and the old one put back if that fails; a run
killed between the two renames leaves it parked, and the next run to OUTPUT restores it.

On S3 nothing is atomic across objects, so the marker is: `prediction.json`, written last and
listing every file with its sha256, is what says a prediction is complete, and readers trust
nothing without it. Replacing one writes a journal (`.swinls-pending.json`, every object of the
old and the new prediction) first, removes the old marker, uploads, deletes what of the old
prediction the new one does not overwrite, writes the new marker and removes the journal. A run
cut off anywhere leaves either a complete prediction or no marker and a journal that lets the
next `--overwrite` know exactly which objects are its own.
"""

from __future__ import annotations

import ctypes
import errno
import json
import os
import shutil
from pathlib import Path

from swinls import storage

JOURNAL = ".swinls-pending.json"
PARKED = ".swinls-old-"  # .<name>.swinls-old-<pid>: an earlier prediction moved aside during a replace
_RENAME_EXCHANGE, _AT_FDCWD = 2, -100


def exchange(a: str | Path, b: str | Path) -> bool:
    """Swap two paths in one step (Linux renameat2 with RENAME_EXCHANGE); False where the system or
    filesystem cannot, and nothing changed."""
    try:
        renameat2 = ctypes.CDLL(None, use_errno=True).renameat2
    except (AttributeError, OSError):
        return False
    if renameat2(_AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b), _RENAME_EXCHANGE) == 0:
        return True
    code = ctypes.get_errno()
    if code in (errno.ENOSYS, errno.EINVAL, errno.ENOTSUP, errno.EOPNOTSUPP):
        return False
    raise OSError(code, os.strerror(code), str(b))


def parked(target: Path) -> list[Path]:
    return sorted(target.parent.glob(f".{target.name}{PARKED}*"))


def replace_local(staging: Path, target: Path) -> Path:
    """Put `staging` at `target`, which holds an earlier prediction; where that one is now (to be
    deleted by the caller)."""
    if exchange(staging, target):
        return staging
    old = target.with_name(f".{target.name}{PARKED}{os.getpid()}")
    os.rename(target, old)
    try:
        os.rename(staging, target)
    except BaseException:
        os.rename(old, target)
        raise
    return old


def restore_parked(target: Path, is_prediction, log) -> None:
    """Undo what a run killed in the middle of `replace_local`'s fallback left: the old prediction
    parked and no OUTPUT, or both (then the parked one is stale)."""
    for path in reversed(parked(target)):
        if not target.exists() and is_prediction(path):
            os.rename(path, target)
            log(f"restored the earlier prediction {target} that an interrupted run had moved aside")
        elif is_prediction(path):
            shutil.rmtree(path)


def upload(staging: Path, uri: str, files: dict[str, str], previous: set[str], marker: str, summary: dict,
           check=lambda: None) -> None:
    """Commit a staged folder to an S3 prefix as the module says. `files`: name → sha256 of what
    is staged (the marker not included); `previous`: the objects of the prediction it replaces;
    `check`: called before each step that changes OUTPUT (the lock's fence)."""
    journal = storage.join(uri, JOURNAL)
    check()
    storage.write_json_atomic(journal, {"files": sorted(previous | set(files) | {marker})})
    if marker in previous:
        check()
        storage.remove(storage.join(uri, marker))  # from here on, no reader takes OUTPUT as complete
    for name in sorted(files):
        check()
        storage.put_file_atomic(staging / name, storage.join(uri, name))
    for stale in sorted(previous - set(files) - {marker, JOURNAL}):
        check()
        storage.remove(storage.join(uri, stale))
    check()
    storage.write_bytes_atomic(storage.join(uri, marker), (json.dumps(summary, indent=1, sort_keys=True) + "\n").encode())
    storage.remove(journal)
