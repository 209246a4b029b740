"""Published models: the best checkpoint of an experiment with its model card, in object storage.

    <experiment>/best/LATEST.json                  pointer, flipped last
    <experiment>/best/versions/<id>/model.pt       weights, model config, bands, normalisation
    <experiment>/best/versions/<id>/model_card.json

A reader follows the pointer, so it sees the previous best or the new one, never half of either;
previous versions stay readable. Cards and weights carry no credentials.
"""

from __future__ import annotations

import datetime
import importlib.metadata
import io
import json
import subprocess
from pathlib import Path

import numpy as np
import torch

from swinls import storage
from swinls.checkpoints import CheckpointError, load_checkpoint

MODEL_FORMAT = "swinls-model/1"
LIBRARIES = ("torch", "timm", "ray", "optuna", "numpy", "pyarrow", "rasterio", "swinls-platform")


def code_version() -> dict:
    here = Path(__file__).resolve().parent
    try:
        sha = subprocess.run(["git", "rev-parse", "HEAD"], cwd=here, capture_output=True, text=True, timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        sha = ""
    return {"package": _version("swinls-platform"), "git": sha or None}


def _version(name: str) -> str | None:
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return None


def per_phase(history: list[dict]) -> dict:
    """The last epoch's metrics of each phase."""
    out = {}
    for entry in history:
        out[entry["phase"]] = {k: v for k, v in entry.items() if isinstance(v, (int, float)) and k != "attempt"}
    return out


def model_card(checkpoint: dict, *, experiment: str, trial: str, objective: dict) -> dict:
    history = checkpoint.get("history", [])
    normalization = checkpoint["normalization"]
    return {
        "format": MODEL_FORMAT,
        "experiment": experiment,
        "trial": trial,
        "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "objective": objective,
        "config": checkpoint["config"],
        "metrics": {"final": per_phase(history[-1:]).get(history[-1]["phase"], {}) if history else {},
                    "per_phase": per_phase(history)},
        "bands": normalization["channels"],
        "normalization": normalization,
        "data_manifest_sha256": normalization.get("manifest_sha256"),
        "code_version": code_version(),
        "libraries": {name: _version(name) for name in LIBRARIES},
    }


def publish_best(best_uri: str, checkpoint_uri: str, *, experiment: str, trial: str, objective: dict,
                 before_pointer=None) -> str:
    """Publish a run's checkpoint as the new best; returns the version id."""
    checkpoint = load_checkpoint(checkpoint_uri)
    weights = {"format": MODEL_FORMAT, "model": checkpoint["model"], "model_config": checkpoint["config"]["model"],
               "channels": checkpoint["channels"], "normalization": checkpoint["normalization"]}
    buffer = io.BytesIO()
    torch.save(weights, buffer)
    card = model_card(checkpoint, experiment=experiment, trial=trial, objective=objective)
    files = {"model.pt": buffer.getvalue(), "model_card.json": (json.dumps(card, indent=1) + "\n").encode()}
    return storage.publish_version(best_uri, files, metadata={"trial": trial, "objective": objective},
                                   before_pointer=before_pointer)


def load_best(best_uri: str):
    """(model in eval mode, model card) of the current best."""
    from swinls.config import from_dict
    from swinls.models import ModelConfig, build_model

    card = json.loads(storage.read_published(best_uri, "model_card.json"))
    try:
        weights = torch.load(io.BytesIO(storage.read_published(best_uri, "model.pt")), map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - any unreadable file is the same error for the user
        raise CheckpointError(f"{best_uri}: the published model cannot be loaded ({exc})") from exc
    if weights.get("format") != MODEL_FORMAT:
        raise CheckpointError(f"{best_uri}: not a published SwinLS model")
    config = from_dict(ModelConfig, {**weights["model_config"], "pretrained": None})
    model = build_model(config, weights["channels"])
    model.load_state_dict(weights["model"])
    return model.eval(), card


@torch.no_grad()
def predict_patch(model, card: dict, patch: np.ndarray) -> np.ndarray:
    """A raw H×W×14 Landslide4Sense patch → H×W landslide mask (uint8), normalised as trained."""
    from swinls.bands import BANDS, PCAProjection, project, resolve_band_set

    normalization = card["normalization"]
    inputs = normalization["inputs"]
    band_set = resolve_band_set("PCA-3" if normalization["band_set"] == "PCA-3" else inputs)
    pca = PCAProjection.from_dict(normalization["pca"]) if normalization.get("pca") else None
    if patch.shape[-1] != len(BANDS):
        raise ValueError(f"expected an H×W×{len(BANDS)} patch, got {patch.shape}")
    x = project(patch.astype(np.float32), band_set, pca)
    x = (x - np.array(normalization["mean"], np.float32)) / np.array(normalization["std"], np.float32)
    logits = model(torch.from_numpy(np.ascontiguousarray(np.moveaxis(x, -1, 0)))[None])["logits"]
    return logits.argmax(1)[0].numpy().astype(np.uint8)
