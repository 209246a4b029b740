"""A model registry for scheduled retraining, local or in object storage.

    <registry>/champion/LATEST.json                the champion pointer, swapped by compare-and-swap
    <registry>/champion/versions/<id>/             every model ever staged (published-model format)
    <registry>/champion/pointers/<sha256>.json     every champion pointer ever written, by the sha256
                                                   of its bytes: the pointer's history
    <registry>/decisions/<time>-<key>.json         one record per run that reached a verdict
    <registry>/decisions/<time>-<key>.pending.json a promotion or rollback recorded before its swap
    <registry>/locks/<key>.lock                    held while the run with that key runs
    <registry>/runs/<key>/                         a challenger's training run (checkpoints: resumable)
    <registry>/searches/<key>/                     or its search, with --space
    <registry>/candidates/<key>/                   the challenger, published before it is judged

`champion/` is what `registry.load_published` and `jobs/predict.py` read. A version is written
first and the pointer swapped last, only if the pointer still holds the bytes the run read (their
sha256): two runs cannot both promote, a crash leaves the old champion, and a stalled run cannot
swap over a pointer that moved while it stalled. Each pointer names the one it replaced, so its
history can be walked back from `LATEST.json` through `pointers/`.
"""

from __future__ import annotations

import datetime
import uuid
from dataclasses import dataclass

from swinls import cas, locks, storage
from swinls.checkpoints import CheckpointError
from swinls.errors import SwinLSError
from swinls.model_card import ModelCard
from swinls.published import CARD_NAME, WEIGHTS_NAME, load_version

CHAMPION, DECISIONS, POINTERS, LOCKS = "champion", "decisions", "pointers", "locks"


class RegistryError(SwinLSError, RuntimeError):
    pass


@dataclass(frozen=True)
class Champion:
    version: str
    uri: str  # the version's folder
    card: ModelCard
    pointer_sha256: str  # of the pointer that names it: what a swap expects to replace

    @property
    def regions(self) -> list[str]:
        return self.card.trained_regions

    @property
    def manifest_sha256(self) -> str | None:
        return self.card.data_manifest_sha256


def now() -> str:
    return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")


class ModelRegistry:
    def __init__(self, uri: str) -> None:
        self.uri = str(uri).rstrip("/")
        self.champion_uri = storage.join(self.uri, CHAMPION)
        self.pointer_uri = storage.join(self.champion_uri, storage.POINTER_NAME)

    def path(self, *parts: str) -> str:
        return storage.join(self.uri, *parts)

    # -- the champion ---------------------------------------------------------------------------
    def head(self) -> cas.Snapshot:
        """The champion pointer's bytes as they are now (None: no champion yet), readable or not."""
        return cas.read(self.pointer_uri)

    def pointer(self, head: cas.Snapshot) -> dict | None:
        """The pointer in `head`, checked to name a version of this registry."""
        return storage.check_pointer(head.json(), head.uri) if head.raw is not None else None

    def champion(self) -> Champion | None:
        """The current champion, loaded to prove it can be used; None before the first. A champion
        that cannot be loaded is an error: nothing is decided against a model nobody can serve."""
        head = self.head()
        if head.raw is None:
            return None
        try:
            pointer = self.pointer(head)
            version_uri = storage.join(self.champion_uri, pointer["prefix"])
            _, card, _ = load_version(version_uri, pointer["files"])
        except (CheckpointError, storage.StorageError, FileNotFoundError, KeyError, ValueError, RuntimeError) as exc:
            # RuntimeError: weights that do not fit the card's architecture
            raise RegistryError(f"{self.champion_uri}: the champion cannot be loaded ({exc}); fix it or roll back "
                                f"with --rollback VERSION (versions under {self.champion_uri}/versions/)") from exc
        return Champion(pointer["version"], version_uri, card, head.digest)

    def versions(self) -> list[str]:
        root = storage.join(self.champion_uri, "versions")
        if not storage.exists(root):
            return []
        return sorted({name.split("/", 1)[0] for name in storage.list_files(root)})

    def stage(self, model_uri: str, metadata: dict, replaces: str | None) -> dict:
        """Copy a published model into a new champion version that no reader sees yet; the pointer
        that would make it the champion in place of the pointer whose sha256 is `replaces`."""
        from swinls.published import resolve_published

        source, _ = resolve_published(model_uri)
        files = {name: storage.read_bytes(storage.join(source, name)) for name in (WEIGHTS_NAME, CARD_NAME)}
        version, digests = storage.write_version(self.champion_uri, files)
        return self.new_pointer(version, digests, metadata, replaces)

    def new_pointer(self, version: str, digests: dict, metadata: dict, replaces: str | None) -> dict:
        pointer = storage.make_pointer(version, digests, metadata)
        # a write id makes every pointer's bytes its own, so its sha256 names one write
        return dict(pointer, write=uuid.uuid4().hex, written=now(), replaces=replaces)

    def swap(self, pointer: dict) -> None:
        """Make `pointer` the champion's if the pointer is still the one it replaces;
        cas.Conflict, and the champion unchanged, if another run got there first."""
        data = cas.encode(pointer)
        storage.write_bytes_atomic(self.path(CHAMPION, POINTERS, f"{cas.digest(data)}.json"), data)  # history first
        cas.swap(self.pointer_uri, data, pointer["replaces"])

    def chain(self, head: cas.Snapshot | None = None) -> list[tuple[str, dict | None]]:
        """(sha256, pointer) of the champion pointer now and of each it replaced, newest first, as far
        back as pointers name their predecessors (pointers written before this history began do not)."""
        head = self.head() if head is None else head
        if head.raw is None:
            return []
        try:
            pointer = head.json()
        except storage.StorageError:
            return [(head.digest, None)]  # unreadable: its history is unknown
        out, seen = [(head.digest, pointer)], {head.digest}
        while isinstance(pointer, dict) and pointer.get("replaces") and pointer["replaces"] not in seen:
            digest = pointer["replaces"]
            if not storage.SAFE_NAME.match(digest):
                break
            snap = cas.read(self.path(CHAMPION, POINTERS, f"{digest}.json"))
            if snap.raw is None or snap.digest != digest:
                break
            pointer = snap.json()
            out.append((digest, pointer))
            seen.add(digest)
        return out

    def rollback_pointer(self, version: str, head: cas.Snapshot, current: str | None) -> dict:
        """The pointer that makes an earlier version the champion again, checked to load first."""
        known = self.versions()
        if version not in known:
            raise RegistryError(f"{self.champion_uri}: no version {version!r} (versions: {', '.join(known) or 'none'})")
        version_uri = storage.join(self.champion_uri, "versions", version)
        pointer = storage.pointer_for(self.champion_uri, version, {"rollback_from": current})
        try:
            load_version(version_uri, pointer["files"])
        except (CheckpointError, storage.StorageError, FileNotFoundError, RuntimeError) as exc:
            raise RegistryError(f"{version_uri}: cannot be loaded, so it cannot be the champion ({exc})") from exc
        return self.new_pointer(version, pointer["files"], pointer["metadata"], head.digest)

    # -- one run per key ------------------------------------------------------------------------
    def run_lock(self, key: str) -> locks.Lock:
        uri = self.path(LOCKS, f"{key}.lock")
        try:
            return locks.acquire(uri, f"jobs/retrain.py run {key}")
        except locks.LockHeld as exc:
            raise RegistryError(f"run {key} is already under way ({exc}); this one stops. A run killed on S3 "
                                f"leaves its lease until it expires ({locks.lease_ttl():g} s)") from exc
