"""Locks that cannot have two holders, locally (flock on a lock file) and on S3 (a lease), and the
compare-and-swap built on them. Contenders are real threads and processes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time

import pytest

from swinls import cas, locks, storage


def test_many_contenders_never_hold_a_local_lock_at_once_though_a_stale_lock_file_is_left(tmp_path):
    path = str(tmp_path / "LATEST.json.lock")
    with open(path, "w") as stale:  # what the old O_EXCL lock of a crashed writer left: long expired
        stale.write("4242")
    os.utime(path, (time.time() - 3600, time.time() - 3600))
    inside, most, order = [0], [0], []
    guard = threading.Lock()

    def contend(i):
        with locks.acquire(path, f"contender {i}", wait=30):
            with guard:
                inside[0] += 1
                most[0] = max(most[0], inside[0])
            time.sleep(0.05)  # a holder that takes its time: nobody may break in meanwhile
            with guard:
                inside[0] -= 1
                order.append(i)

    threads = [threading.Thread(target=contend, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert most[0] == 1 and sorted(order) == list(range(8))
    assert not os.path.exists(path)  # the last holder took its lock file with it


def test_a_stalled_holder_keeps_its_lock_for_as_long_as_it_lives_and_loses_it_when_it_dies(tmp_path):
    """No expiry: a holder stopped for longer than any timeout still holds the lock, and a killed
    one releases it at once (the kernel drops flock with the process)."""
    path = str(tmp_path / "key.lock")
    holder = subprocess.Popen([sys.executable, "-c", (
        "import sys, time; from swinls import locks; lock = locks.acquire(sys.argv[1], 'stalled holder'); "
        "print('held', flush=True); time.sleep(600)"), path], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        os.kill(holder.pid, 19)  # SIGSTOP: stalled
        with pytest.raises(locks.LockHeld, match=r"held by stalled holder, host .* pid \d+"):
            locks.acquire(path, "contender", wait=1.5)
        holder.kill()
        holder.wait()
        with locks.acquire(path, "contender", wait=5) as lock:
            lock.check()
    finally:
        holder.kill()
        holder.wait()


def test_releasing_a_lock_never_removes_another_holders_lock(tmp_path):
    path = str(tmp_path / "key.lock")
    first = locks.acquire(path, "first")
    os.unlink(path)  # someone removed the lock file by hand while it was held
    with pytest.raises(locks.LockLost, match="removed or replaced"):
        first.check()
    second = locks.acquire(path, "second")  # a new file: a new lock
    first.release()
    assert os.path.exists(path)
    with pytest.raises(locks.LockHeld, match="held by second"):
        locks.acquire(path, "third")
    second.release()
    assert not os.path.exists(path)


def test_a_local_compare_and_swap_lets_exactly_one_of_many_writers_through(tmp_path):
    uri = str(tmp_path / "pointer.json")
    storage.write_bytes_atomic(uri, b'{"version": "v0"}')
    expected = cas.read(uri).digest
    wins, lost = [], []

    def swap(i):
        try:
            cas.swap(uri, cas.encode({"version": f"v{i}"}), expected)
            wins.append(i)
        except cas.Conflict:
            lost.append(i)

    threads = [threading.Thread(target=swap, args=(i,)) for i in range(1, 9)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(wins) == 1 and len(lost) == 7
    assert json.loads(storage.read_bytes(uri))["version"] == f"v{wins[0]}"


def test_compare_and_swap_on_s3_expects_bytes_not_versions_and_replaces_an_unreadable_object(bucket):
    uri = f"{bucket}/champion/LATEST.json"
    with pytest.raises(cas.Conflict, match="gone"):
        cas.swap(uri, cas.encode({"version": "v1"}), "0" * 64)  # expects something; there is nothing
    first = cas.swap(uri, cas.encode({"version": "v1"}), None)
    with pytest.raises(cas.Conflict, match="names version v1: another writer created it first"):
        cas.swap(uri, cas.encode({"version": "v2"}), None)
    storage.write_bytes_atomic(uri, b"{garbage")
    with pytest.raises(cas.Conflict, match="holds something else"):
        cas.swap(uri, cas.encode({"version": "v2"}), first.digest)
    cas.swap(uri, cas.encode({"version": "v2"}), cas.digest(b"{garbage"))
    assert storage.read_json(uri) == {"version": "v2"}


def test_an_s3_lease_has_one_holder_is_taken_over_after_its_holder_dies_and_fences_the_old_holder(bucket):
    uri = f"{bucket}/locks/key.lock"
    first = locks.acquire(uri, "first", ttl=1.0)
    with pytest.raises(locks.LockHeld, match=r"held by first, host .* pid \d+, since .* \(lease until"):
        locks.acquire(uri, "second", ttl=1.0)
    time.sleep(1.5)  # renewed meanwhile: still held
    with pytest.raises(locks.LockHeld):
        locks.acquire(uri, "second", ttl=1.0)
    first._stop.set()  # the holder stalls: no more renewals (a GC pause, a frozen VM)
    first._thread.join()
    second = locks.acquire(uri, "second", wait=5, ttl=1.0)  # taken once the lease expired
    with pytest.raises(locks.LockLost, match="no longer holds the lock"):
        first.check()
    first.release()  # a stalled holder's release leaves the taker's lease alone
    with pytest.raises(locks.LockHeld, match="held by second"):
        locks.acquire(uri, "third", ttl=1.0)
    second.check()
    second.release()
    assert not storage.exists(uri)
