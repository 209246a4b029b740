"""Locks that cannot have two holders: one run per retraining key, one prediction per OUTPUT, one
writer in a local compare-and-swap.

Locally a lock is `fcntl.flock` on a lock file. The kernel holds it for the open file and drops it
when the holder exits or dies, so no expiry is needed and a stalled holder keeps it. The holder
unlinks the file while it still holds it; a waiter that then wins the `flock` checks that the path
still names the file it locked, and starts again if not. So a lock file never outlives its holder
and there is never a second holder.

NFS: Linux clients turn `flock` into POSIX byte-range locks on NFS. They hold across machines on
NFSv4, and on NFSv3 only with the lock daemon (not with `nolock`). A registry that several
machines write should be on S3.

On S3 a lock is a lease: an object created only if absent (`If-None-Match: *`), naming its holder
and its expiry. A thread renews it every third of its time to live (`If-Match` on the object it
last wrote). A lease whose holder died can be taken once it expires, by one taker only
(`If-Match` on the expired object). A holder that lost its lease finds out through `check()`, which
the work calls before each step that commits something (fencing). Clocks must agree to within a
third of the time to live (NTP does far better).
"""

from __future__ import annotations

import contextlib
import datetime
import fcntl
import json
import os
import socket
import threading
import time
import uuid

from swinls import storage
from swinls.storage import StorageError

LEASE_TTL_S = 60.0  # SWINLS_LEASE_TTL_S overrides it (read at each acquire)


def lease_ttl() -> float:
    return float(os.environ.get("SWINLS_LEASE_TTL_S", LEASE_TTL_S))


class LockHeld(StorageError):
    """Another process holds the lock."""


class LockLost(StorageError):
    """This process held the lock and no longer does; it must stop before committing anything."""


def _holder(purpose: str, **extra) -> dict:
    return {"host": socket.gethostname(), "pid": os.getpid(), "purpose": purpose,
            "since": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"), **extra}


def _describe(raw: bytes | str | None) -> str:
    try:
        holder = json.loads(raw or b"")
        return f"{holder['purpose']}, host {holder['host']} pid {holder['pid']}, since {holder['since']}"
    except (ValueError, KeyError, TypeError):
        return "a holder that has not said who it is yet"


class Lock:
    uri: str

    def check(self) -> None:
        """Raise LockLost if this lock is no longer held."""

    def release(self) -> None:
        raise NotImplementedError

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.release()


class LocalLock(Lock):
    def __init__(self, path: str, fd: int) -> None:
        self.uri, self._fd = path, fd

    @classmethod
    def acquire(cls, path: str, purpose: str, wait: float) -> "LocalLock":
        os.makedirs(os.path.dirname(path), exist_ok=True)
        deadline = time.monotonic() + wait
        while True:
            fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
            try:
                while True:
                    try:
                        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                        break
                    except BlockingIOError:
                        if time.monotonic() >= deadline:
                            raise LockHeld(f"{path}: held by {_describe(os.pread(fd, 4096, 0))}") from None
                        time.sleep(0.02)
            except BaseException:
                os.close(fd)
                raise
            try:
                current = os.stat(path)
            except FileNotFoundError:
                current = None
            if current is not None and os.path.samestat(os.fstat(fd), current):
                os.ftruncate(fd, 0)
                os.pwrite(fd, json.dumps(_holder(purpose)).encode(), 0)
                return cls(path, fd)
            os.close(fd)  # the holder we waited for unlinked it: lock the file now at the path

    def check(self) -> None:
        try:
            same = os.path.samestat(os.fstat(self._fd), os.stat(self.uri))
        except (FileNotFoundError, OSError):
            same = False
        if not same:
            raise LockLost(f"{self.uri}: the lock file was removed or replaced while this process held it")

    def release(self) -> None:
        if self._fd < 0:
            return
        with contextlib.suppress(FileNotFoundError):
            if os.path.samestat(os.fstat(self._fd), os.stat(self.uri)):
                os.unlink(self.uri)  # still holding it: a waiter that wins next sees the path changed
        os.close(self._fd)
        self._fd = -1


class S3Lease(Lock):
    def __init__(self, uri: str, purpose: str, ttl: float) -> None:
        self.uri, self.purpose, self.ttl = uri, purpose, ttl
        self.token = uuid.uuid4().hex
        self.etag: str | None = None
        self.expires = 0.0
        self.lost: str | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def _put(self, **condition) -> None:
        expires = time.time() + self.ttl
        body = json.dumps(_holder(self.purpose, owner=self.token, expires=expires)).encode()
        self.etag = storage.s3_put(self.uri, body, **condition)
        self.expires = expires

    @classmethod
    def acquire(cls, uri: str, purpose: str, wait: float, ttl: float) -> "S3Lease":
        lease = cls(uri, purpose, ttl)
        deadline = time.monotonic() + wait
        while True:
            try:
                lease._put(IfNoneMatch="*")
                break
            except OSError as exc:
                if not (storage.precondition_failed(exc) or storage.is_conflict(exc)):
                    raise
            raw, etag = storage.s3_read(uri)
            if raw is not None and _expiry(raw) < time.time():  # its holder died: take it, one taker only
                try:
                    lease._put(IfMatch=etag)
                    break
                except OSError as exc:
                    if not (storage.precondition_failed(exc) or storage.is_conflict(exc)):
                        raise
            elif raw is not None and time.monotonic() >= deadline:
                raise LockHeld(f"{uri}: held by {_describe(raw)} (lease until "
                               f"{datetime.datetime.fromtimestamp(_expiry(raw), datetime.timezone.utc):%H:%M:%S} UTC)")
            time.sleep(0.2)
        lease._thread = threading.Thread(target=lease._renew, name="lease-renewal", daemon=True)
        lease._thread.start()
        return lease

    def _renew(self) -> None:
        while not self._stop.wait(self.ttl / 3):
            try:
                self._put(IfMatch=self.etag)
            except OSError as exc:
                if storage.precondition_failed(exc):
                    self.lost = "another process took the lease"
                    return
                if time.time() > self.expires:  # could not renew in time: others may take it now
                    self.lost = f"the lease expired while renewing it failed ({exc})"
                    return

    def check(self) -> None:
        if self.lost is None and time.time() > self.expires - self.ttl / 3:
            self.lost = "the lease is about to expire unrenewed"
        if self.lost is not None:
            raise LockLost(f"{self.uri}: this process no longer holds the lock ({self.lost})")

    def release(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        if self.lost is None and self.etag is not None:
            storage.s3_delete(self.uri, self.etag)  # only our own lease: a taker's stays
            self.etag = None


def _expiry(raw: bytes) -> float:
    try:
        return float(json.loads(raw)["expires"])
    except (ValueError, KeyError, TypeError):
        return 0.0  # not a lease this code wrote: treat it as expired


def acquire(uri: str, purpose: str, *, wait: float = 0.0, ttl: float | None = None) -> Lock:
    """The lock at `uri` (a local lock file or an S3 lease object), waiting up to `wait` seconds;
    LockHeld, naming the holder, if it stays held."""
    storage.check_uri(uri)
    if storage.is_s3(uri):
        return S3Lease.acquire(uri, purpose, wait, lease_ttl() if ttl is None else ttl)
    try:
        return LocalLock.acquire(storage.filesystem(uri)[1], purpose, wait)
    except OSError as exc:
        if isinstance(exc, StorageError):
            raise
        raise StorageError(f"{uri}: cannot take the lock ({os.strerror(exc.errno) if exc.errno else exc})") from exc
