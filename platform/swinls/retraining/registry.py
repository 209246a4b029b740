"""A model registry for scheduled retraining, local or in object storage.

    <registry>/champion/LATEST.json                the champion pointer, swapped by compare-and-swap
    <registry>/champion/versions/<id>/             every model ever promoted (published-model format)
    <registry>/decisions/<time>-<key>.json         one record per run that reached a verdict
    <registry>/runs/<key>/                         a challenger's training run (checkpoints: resumable)
    <registry>/searches/<key>/                     or its search, with --space
    <registry>/candidates/<key>/                   the challenger, published before it is judged

`champion/` is what `registry.load_published` and `jobs/predict.py` read. Promotion writes the
new version first and swaps the pointer last, and only if the pointer still names the champion
that was evaluated: two runs at once cannot both promote, and a crash leaves the old champion.
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass

from swinls import storage
from swinls.checkpoints import CheckpointError
from swinls.registry import CARD_NAME, WEIGHTS_NAME, load_published

CHAMPION, DECISIONS = "champion", "decisions"


class RegistryError(RuntimeError):
    pass


@dataclass(frozen=True)
class Champion:
    version: str
    uri: str  # the version's folder
    card: dict

    @property
    def regions(self) -> list[str]:
        return list((self.card.get("regions") or {}).get("trained") or [])

    @property
    def manifest_sha256(self) -> str | None:
        return self.card.get("data_manifest_sha256")


class ModelRegistry:
    def __init__(self, uri: str) -> None:
        self.uri = str(uri).rstrip("/")
        self.champion_uri = storage.join(self.uri, CHAMPION)

    def path(self, *parts: str) -> str:
        return storage.join(self.uri, *parts)

    # -- the champion ---------------------------------------------------------------------------
    def champion(self) -> Champion | None:
        """The current champion, loaded to prove it can be used; None before the first. A champion
        that cannot be loaded is an error: nothing is decided against a model nobody can serve."""
        pointer_uri = storage.join(self.champion_uri, storage.POINTER_NAME)
        if not storage.exists(pointer_uri):
            return None
        try:
            _, card, version_uri = load_published(self.champion_uri)  # follows the pointer once
        except (CheckpointError, storage.StorageError, FileNotFoundError, KeyError, ValueError, RuntimeError) as exc:
            # RuntimeError: weights that do not fit the card's architecture
            raise RegistryError(f"{self.champion_uri}: the champion cannot be loaded ({exc}); fix it or roll back "
                                f"with --rollback VERSION (versions under {self.champion_uri}/versions/)") from exc
        return Champion(version_uri.rsplit("/", 1)[1], version_uri, card)

    def versions(self) -> list[str]:
        root = storage.join(self.champion_uri, "versions")
        if not storage.exists(root):
            return []
        return sorted({name.split("/", 1)[0] for name in storage.list_files(root)})

    def stage(self, model_uri: str, metadata: dict) -> dict:
        """Copy a published model into a new champion version that no reader sees yet; the pointer
        that would make it the champion."""
        from swinls.registry import resolve_published

        source, _ = resolve_published(model_uri)
        files = {name: storage.read_bytes(storage.join(source, name)) for name in (WEIGHTS_NAME, CARD_NAME)}
        version, digests = storage.write_version(self.champion_uri, files)
        return storage.make_pointer(version, digests, metadata)

    def swap(self, pointer: dict, expected: str | None) -> None:
        """Make `pointer` the champion's if the champion is still `expected` (None: none yet);
        storage.PointerMoved, and the champion unchanged, if another run got there first."""
        storage.swap_pointer(self.champion_uri, pointer, expected)

    def rollback(self, version: str, expected: str | None) -> None:
        """Point the champion at an earlier version, checked to load first."""
        known = self.versions()
        if version not in known:
            raise RegistryError(f"{self.champion_uri}: no version {version!r} (versions: {', '.join(known) or 'none'})")
        version_uri = storage.join(self.champion_uri, "versions", version)
        try:
            load_published(version_uri)
        except (CheckpointError, storage.StorageError, FileNotFoundError) as exc:
            raise RegistryError(f"{version_uri}: cannot be loaded, so it cannot be the champion ({exc})") from exc
        self.swap(storage.pointer_for(self.champion_uri, version, {"rollback_from": expected}), expected)

    # -- decisions ------------------------------------------------------------------------------
    def decision(self, key: str) -> tuple[dict, str] | None:
        """(record, its URI) of the run with this key, if it reached a verdict."""
        root = self.path(DECISIONS)
        if not storage.exists(root):
            return None
        names = sorted(name for name in storage.list_files(root) if name.endswith(f"-{key}.json"))
        if not names:
            return None
        uri = storage.join(root, names[-1])
        return storage.read_json(uri), uri

    def record(self, key: str, record: dict, uri: str | None = None) -> str:
        """Write (or, given its `uri`, rewrite) the decision record of the run with this key."""
        if uri is None:
            stamp = datetime.datetime.now(datetime.timezone.utc).strftime("%Y%m%dT%H%M%SZ")
            uri = self.path(DECISIONS, f"{stamp}-{key}.json")
        storage.write_json_atomic(uri, record)
        return uri
