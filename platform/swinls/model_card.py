"""The model card: the one contract between training, prediction, retraining and the ablations.

A published model's `model_card.json` says what the model is (its experiment config), what it
must be fed (bands in order, normalisation), what it was trained on (regions, the data manifest's
hash, the code), and how it scored. It is read in one place, here, into a typed, versioned
`ModelCard`; every reader uses its attributes, never `.get` chains with fallbacks.

Versions (the `format` field):
    swinls-model/1        the card before it had a type; cards written before training regions
                          were recorded lack `regions` and `data_manifest_sha256`
    swinls-model-card/2   this dataclass; `regions.trained` is None when the run trained on every
                          region of the manifest not held out (what a version-1 card without
                          regions meant)
An older card is upgraded step by step (`UPGRADES`) when read; the file itself is not rewritten.
"""

from __future__ import annotations

import datetime
import json
from dataclasses import asdict, dataclass, field
from typing import Any, Callable

from swinls.config import ConfigError, from_dict, to_dict
from swinls.checkpoints import CheckpointError
from swinls.errors import SourceError
from swinls.metrics import json_safe
from swinls.units import InputUnits, landslide4sense_units

FORMAT = "swinls-model-card"
VERSION = 2
LEGACY_FORMAT = "swinls-model/1"  # version 1, and still the format tag of the weights file


class CardError(SourceError, CheckpointError):
    """A model card that cannot be read: a published model's files are a checkpoint's kin."""


@dataclass(frozen=True)
class Regions:
    trained: tuple[str, ...] | None = None  # None: every region of the manifest not held out
    held_out: tuple[str, ...] = ()


@dataclass(frozen=True)
class Validation:
    """What the model was validated on: ValidData, or a fixed carve of the training patches."""

    source: str = "ValidData"  # ValidData, carved or mixed
    fraction: float | None = None  # the carve's fraction of each carved region's training patches
    valid_data_regions: tuple[str, ...] = ()
    carved_regions: tuple[str, ...] = ()


@dataclass(frozen=True)
class PretrainedWeights:
    """The weights the model started from: a timm name, a file or a URI, with the file's hash."""

    source: str
    sha256: str | None = None
    bytes: int | None = None


@dataclass(frozen=True)
class Metrics:
    final: dict[str, Any] = field(default_factory=dict)  # the last epoch's metrics
    per_phase: dict[str, dict] = field(default_factory=dict)  # the last epoch of each phase


@dataclass(frozen=True)
class CodeVersion:
    package: str | None = None
    git: str | None = None
    source: str | None = None  # sha256 of the package's files (cards before it have none)


@dataclass(frozen=True)
class ModelCard:
    normalization: dict[str, Any]  # band_set, inputs, channels, mean, std, source, pca (checked by prediction)
    config: dict[str, Any]  # the run's experiment config, as plain data
    format: str = f"{FORMAT}/{VERSION}"
    experiment: str = ""
    trial: str = ""
    created: str = ""
    objective: dict[str, Any] = field(default_factory=dict)  # metric, scope, mode and the value it was chosen by
    metrics: Metrics = Metrics()
    bands: tuple[str, ...] = ()  # the model's input channels, in order
    regions: Regions = Regions()
    validation: Validation | None = None  # None on cards written before it was recorded
    pretrained: PretrainedWeights | None = None  # None: trained from scratch (or not recorded)
    input_units: InputUnits | None = None  # physical values → inputs; None on cards before it (products refused)
    data_manifest_sha256: str | None = None
    code_version: CodeVersion = CodeVersion()
    libraries: dict[str, str | None] = field(default_factory=dict)

    @property
    def model(self) -> dict:
        return dict(self.config.get("model") or {})

    @property
    def trained_regions(self) -> list[str]:
        return list(self.regions.trained or [])

    def to_dict(self) -> dict:
        return to_dict(self)

    def to_json(self) -> bytes:
        return (json.dumps(self.to_dict(), indent=1) + "\n").encode()


def _v1_to_v2(card: dict) -> dict:
    card = dict(card)
    if card.get("regions") is None:
        data = (card.get("config") or {}).get("data") or {}
        card["regions"] = {"trained": list(data.get("train_regions") or []) or None,
                           "held_out": list(data.get("holdout_regions") or [])}
    card.setdefault("data_manifest_sha256", None)
    card["format"] = f"{FORMAT}/2"
    return card


UPGRADES: dict[int, Callable[[dict], dict]] = {1: _v1_to_v2}  # version N -> N + 1


def version_of(data: dict, source: str) -> int:
    tag = data.get("format") if isinstance(data, dict) else None
    if tag == LEGACY_FORMAT:
        return 1
    if isinstance(tag, str) and tag.startswith(f"{FORMAT}/") and tag.rsplit("/", 1)[1].isdigit():
        version = int(tag.rsplit("/", 1)[1])
        if version > VERSION:
            raise CardError(source, f"the model card is version {version}, newer than this code reads ({VERSION}); "
                                    "upgrade swinls-platform")
        return version
    raise CardError(source, "not the model card of a published SwinLS model")


def card_from_data(data: Any, source: str) -> ModelCard:
    """A card of any version, upgraded to the current one and checked strictly."""
    version = version_of(data, source)
    if not isinstance(data.get("normalization"), dict):
        raise CardError(source, "the model card has no normalisation record; a model is only used with the statistics "
                                "it was trained with")
    while version < VERSION:
        data = UPGRADES[version](data)
        version += 1
    try:
        return from_dict(ModelCard, data)
    except ConfigError as exc:
        raise CardError(source, f"malformed model card: {exc}") from None


def parse_card(blob: bytes, source: str) -> ModelCard:
    try:
        data = json.loads(blob)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise CardError(source, f"the model card is not valid JSON ({exc})") from None
    return card_from_data(data, source)


def per_phase(history: list[dict]) -> dict:
    """The last epoch's metrics of each phase."""
    out = {}
    for entry in history:
        # an undefined metric (NaN: nothing labelled) is null in the card
        out[entry["phase"]] = json_safe({k: v for k, v in entry.items() if isinstance(v, (int, float)) and k != "attempt"})
    return out


def card_for(checkpoint: dict, *, experiment: str, trial: str, objective: dict, code_version: dict,
             libraries: dict) -> ModelCard:
    """The card of a run's checkpoint, as published."""
    history = checkpoint.get("history", [])
    normalization = checkpoint["normalization"]
    phases = per_phase(history)
    held_out = normalization.get("holdout_regions") or []
    return card_from_data({
        "format": f"{FORMAT}/{VERSION}",
        "experiment": experiment,
        "trial": trial,
        "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "objective": objective,
        "config": checkpoint["config"],
        "metrics": {"final": phases.get(history[-1]["phase"], {}) if history else {}, "per_phase": phases},
        "bands": list(normalization["channels"]),
        "normalization": normalization,
        "regions": {"trained": normalization.get("train_regions"), "held_out": list(held_out)},
        "validation": normalization.get("validation"),
        "pretrained": checkpoint.get("pretrained"),
        "input_units": asdict(landslide4sense_units()),  # every ingest keeps Landslide4Sense's range
        "data_manifest_sha256": normalization.get("manifest_sha256"),
        "code_version": code_version,
        "libraries": libraries,
    }, f"the card of {experiment}/{trial}")
