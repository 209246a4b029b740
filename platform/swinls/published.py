"""Published models: a run's checkpoint as weights plus a typed model card (`model_card.py`), in
object storage, and loading them back by any URI a user has.

    <experiment>/best/LATEST.json                  pointer, flipped last
    <experiment>/best/versions/<id>/model.pt       weights, model config, bands, normalisation
    <experiment>/best/versions/<id>/model_card.json

A reader follows the pointer, so it sees the previous best or the new one, never half of either;
previous versions stay readable. Cards and weights carry no credentials.
"""

from __future__ import annotations

import functools
import hashlib
import importlib.metadata
import io
import subprocess
from pathlib import Path

import torch

from swinls import storage
from swinls.checkpoints import CheckpointError, load_checkpoint
from swinls.errors import SwinLSError
from swinls.model_card import LEGACY_FORMAT, ModelCard, card_for, parse_card

MODEL_FORMAT = LEGACY_FORMAT  # the weights file's format tag
LIBRARIES = ("torch", "timm", "ray", "optuna", "numpy", "pyarrow", "rasterio", "swinls-platform")


def code_version() -> dict:
    """The code that runs: the package's version, the commit when there is a `.git` (a cluster
    node's copy has none), and always a hash of the package's own files as they are loaded."""
    return dict(_code_version())


@functools.lru_cache(maxsize=1)
def _code_version() -> dict:
    here = Path(__file__).resolve().parent
    try:
        sha = subprocess.run(["git", "rev-parse", "HEAD"], cwd=here, capture_output=True, text=True, timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        sha = ""
    return {"package": _version("swinls-platform"), "git": sha or None, "source": source_hash()}


SOURCE_SUFFIXES = (".py", ".yaml")  # the modules and the recipes they load


@functools.lru_cache(maxsize=1)
def source_hash(root: Path | None = None) -> str:
    """sha256 over the package's source files (relative path and bytes, in path order): what a
    retraining key depends on, so that an edited module is a new run with or without git."""
    root = root or Path(__file__).resolve().parent
    digest = hashlib.sha256()
    for path in sorted(p for p in root.rglob("*") if p.suffix in SOURCE_SUFFIXES and "__pycache__" not in p.parts):
        digest.update(path.relative_to(root).as_posix().encode() + b"\0")
        digest.update(hashlib.sha256(path.read_bytes()).digest())
    return digest.hexdigest()


def _version(name: str) -> str | None:
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return None


def model_card(checkpoint: dict, *, experiment: str, trial: str, objective: dict) -> ModelCard:
    return card_for(checkpoint, experiment=experiment, trial=trial, objective=objective, code_version=code_version(),
                    libraries={name: _version(name) for name in LIBRARIES})


def publish_best(best_uri: str, checkpoint_uri: str, *, experiment: str, trial: str, objective: dict,
                 before_pointer=None) -> str:
    """Publish a run's checkpoint as the new best; returns the version id."""
    checkpoint = load_checkpoint(checkpoint_uri)
    weights = {"format": MODEL_FORMAT, "model": checkpoint["model"], "model_config": checkpoint["config"]["model"],
               "channels": checkpoint["channels"], "normalization": checkpoint["normalization"]}
    buffer = io.BytesIO()
    torch.save(weights, buffer)
    card = model_card(checkpoint, experiment=experiment, trial=trial, objective=objective)
    files = {"model.pt": buffer.getvalue(), "model_card.json": card.to_json()}
    return storage.publish_version(best_uri, files, metadata={"trial": trial, "objective": objective},
                                   before_pointer=before_pointer)


CARD_NAME, WEIGHTS_NAME = "model_card.json", "model.pt"


class NoModel(SwinLSError, FileNotFoundError):
    """Nothing published at the URI a user gave."""

# folders that hold a published model's pointer: an experiment's best, a retraining registry's champion
PUBLISHED_FOLDERS = ("best", "champion")


def resolve_published(uri: str) -> tuple[str, dict[str, str] | None]:
    """(the version's folder, sha256 per file or None) for every way a user names a published model:
    a folder with LATEST.json (`best/`, a champion), a version folder, its model.pt or model card,
    or an experiment or registry holding `best/` or `champion/`."""
    uri = str(uri).rstrip("/")
    if uri.endswith((f"/{WEIGHTS_NAME}", f"/{CARD_NAME}")):
        uri = uri.rsplit("/", 1)[0]
    if storage.exists(storage.join(uri, storage.POINTER_NAME)):
        pointer = storage.latest_version(uri)
        return pointer["uri"], pointer["files"]
    if storage.exists(storage.join(uri, CARD_NAME)):
        digests = None
        parent, _, version = uri.rpartition("/versions/")
        if parent and storage.exists(storage.join(parent, storage.POINTER_NAME)):
            pointer = storage.read_json(storage.join(parent, storage.POINTER_NAME))
            digests = pointer["files"] if pointer.get("version") == version else None
        return uri, digests
    for folder in PUBLISHED_FOLDERS:
        if storage.exists(storage.join(uri, folder, storage.POINTER_NAME)):
            return resolve_published(storage.join(uri, folder))
    raise NoModel(f"{uri}: no published model here (expected {storage.POINTER_NAME}, {WEIGHTS_NAME} with "
                            f"{CARD_NAME}, or a {' or '.join(f'{f}/' for f in PUBLISHED_FOLDERS)} folder)")


def _read_checked(version_uri: str, name: str, digests: dict[str, str] | None) -> bytes:
    target = storage.join(version_uri, name)
    data = storage.read_bytes(target)
    if digests is not None and name in digests and hashlib.sha256(data).hexdigest() != digests[name]:
        raise storage.StorageError(f"{target}: content does not match the digest its pointer recorded")
    return data


def _card(version_uri: str, digests: dict[str, str] | None) -> ModelCard:
    return parse_card(_read_checked(version_uri, CARD_NAME, digests), storage.join(version_uri, CARD_NAME))


def read_card(uri: str) -> tuple[ModelCard, str]:
    """(model card, the version's URI) of a published model named any way `resolve_published`
    accepts, without reading its weights."""
    version_uri, digests = resolve_published(uri)
    return _card(version_uri, digests), version_uri


def load_published(uri: str):
    """(model in eval mode, model card, the version's URI) of a published model named any way
    `resolve_published` accepts."""
    return load_version(*resolve_published(uri))


def load_version(version_uri: str, digests: dict[str, str] | None):
    """(model in eval mode, model card, the version's URI) of one version folder, its files checked
    against `digests` (from the pointer that named it) when given."""
    from swinls.config import from_dict
    from swinls.models import ModelConfig, build_model

    card = _card(version_uri, digests)
    weights_uri = storage.join(version_uri, WEIGHTS_NAME)
    try:
        blob = _read_checked(version_uri, WEIGHTS_NAME, digests)
        weights = torch.load(io.BytesIO(blob), map_location="cpu", weights_only=True)
    except storage.StorageError:  # a digest mismatch says so itself
        raise
    except Exception as exc:  # noqa: BLE001 - any unreadable file is the same error for the user
        raise CheckpointError(f"{weights_uri}: the published model cannot be loaded ({exc})") from exc
    if not isinstance(weights, dict) or weights.get("format") != MODEL_FORMAT:
        raise CheckpointError(f"{weights_uri}: not a published SwinLS model")
    config = from_dict(ModelConfig, {**weights["model_config"], "pretrained": None})
    model = build_model(config, weights["channels"])
    model.load_state_dict(weights["model"])
    return model.eval(), card, version_uri


def load_best(best_uri: str):
    """(model in eval mode, model card) of the current best."""
    model, card, _ = load_published(best_uri)
    return model, card
