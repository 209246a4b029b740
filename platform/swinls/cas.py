"""Compare-and-swap of one small object (a pointer): write it only if it still holds what the
writer expects, identified by the sha256 of its bytes, so that a corrupt pointer can be replaced
too and no content is ever mistaken for another.

Locally under a `locks` lock file beside it, then an atomic rename. On S3 by a conditional PUT
(`If-Match` on the ETag of the state just read, `If-None-Match: *` where there is none yet), safe
to retry. When the PUT's response is lost and botocore retries, the retry fails with 412 though
the first attempt landed. So after a 412 the object is read again, and if it holds exactly the
bytes this writer sent, the swap succeeded. S3's 409 ConditionalRequestConflict (a concurrent
conditional write) and any other failed attempt are decided the same way: read again, done if it
holds this writer's bytes, a Conflict if it holds neither these nor the expected ones, else
retried with backoff. Callers make every write's bytes their own (a write
id in the pointer), so that "holds exactly my bytes" means "I wrote it".
"""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import dataclass
from typing import Any

from swinls import locks, storage
from swinls.storage import StorageError

LOCAL_LOCK_WAIT_S = 120.0  # a compare-and-swap holds the lock for a read and a rename
S3_ATTEMPTS = 8


class Conflict(StorageError):
    """The object no longer holds what the writer expected: another writer got there first."""


def digest(data: bytes | None) -> str | None:
    return hashlib.sha256(data).hexdigest() if data is not None else None


@dataclass(frozen=True)
class Snapshot:
    """One state of an object: its bytes (None: absent) and, on S3, its ETag."""

    uri: str
    raw: bytes | None
    etag: str | None = None

    @property
    def digest(self) -> str | None:
        return digest(self.raw)

    def json(self) -> Any:
        """The content as JSON; StorageError naming the object if it is not."""
        if self.raw is None:
            return None
        try:
            return json.loads(self.raw)
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise StorageError(f"{self.uri}: not valid JSON ({exc})") from exc


def read(uri: str) -> Snapshot:
    if storage.is_s3(uri):
        raw, etag = storage.s3_read(uri)
        return Snapshot(uri, raw, etag)
    try:
        return Snapshot(uri, storage.read_bytes(uri))
    except FileNotFoundError:
        return Snapshot(uri, None)


def encode(payload: Any) -> bytes:
    """The bytes a JSON pointer is written as (the same payload gives the same bytes)."""
    return (json.dumps(payload, indent=2, sort_keys=True) + "\n").encode()


def swap(uri: str, data: bytes, expected: str | None) -> Snapshot:
    """Write `data` at `uri` if the object's sha256 is still `expected` (None: only if there is no
    object); Conflict, and nothing written, otherwise. Returns the new state."""
    if not storage.is_s3(uri):
        with locks.acquire(f"{storage.filesystem(uri)[1]}.lock", f"compare-and-swap of {uri}", wait=LOCAL_LOCK_WAIT_S):
            found = read(uri)
            if found.digest != expected:
                raise _moved(found, expected)
            storage.write_bytes_atomic(uri, data)
        return Snapshot(uri, data)
    mine = digest(data)
    current, failure = read(uri), None
    for attempt in range(S3_ATTEMPTS):
        if current.digest == mine:
            return current  # an earlier attempt of this call landed; its response was lost
        if current.digest != expected:
            raise _moved(current, expected)
        condition = {"IfMatch": current.etag} if current.raw is not None else {"IfNoneMatch": "*"}
        try:
            return Snapshot(uri, data, storage.s3_put(uri, data, **condition))
        except Exception as exc:  # noqa: BLE001 - whatever failed, what the object now holds decides
            failure = exc
            if not storage.precondition_failed(exc):
                time.sleep(min(2.0, 0.05 * 2 ** attempt))  # 409, or a dropped connection: back off
        current = read(uri)
    raise StorageError(f"{uri}: the conditional write kept failing ({S3_ATTEMPTS} attempts; last: {failure}); "
                       "try again") from failure


def _moved(found: Snapshot, expected: str | None) -> Conflict:
    if found.raw is None:
        return Conflict(f"{found.uri}: gone, though the writer expected it to be there")
    try:
        what = f"names version {found.json().get('version')}"
    except (StorageError, AttributeError):
        what = "holds something else"
    if expected is None:
        return Conflict(f"{found.uri}: {what}: another writer created it first")
    return Conflict(f"{found.uri}: {what}: another writer changed it since it was read")
