"""A published model ready to predict: its normalisation and threshold from the model card alone.

The card is the only source of the bands, their order, the normalisation statistics and the PCA
projection: a card that lacks any of them is refused rather than filled in with defaults, since
a model fed data normalised with numbers that are not its own predicts garbage quietly.
The model's output is kept as the landslide logit margin (logit₁ − logit₀): argmax is margin > 0,
P(landslide) is sigmoid(margin), and blending windows means averaging margins.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from swinls.bands import BANDS, PCA_SET, PCAProjection
from swinls.model_card import CardError, ModelCard
from swinls.prediction.errors import PredictionError

PATCH_SIZE = 128  # SwinLS is built for 128×128 inputs (models/encoders.py), the Landslide4Sense patch


@dataclass(frozen=True)
class Normalizer:
    """Raw source bands (N×K×H×W, the card's `inputs` in order) → model input (N×C×H×W)."""

    inputs: tuple[str, ...]
    channels: tuple[str, ...]
    mean: np.ndarray
    std: np.ndarray
    pca: dict | None = None

    @classmethod
    def from_card(cls, card: "ModelCard", source: str) -> "Normalizer":
        return cls.from_record(card.normalization, source)

    @classmethod
    def from_record(cls, record: dict, source: str) -> "Normalizer":
        if not isinstance(record, dict):
            raise PredictionError(source, "the model card has no normalisation record; a model is only used with "
                                          "the statistics it was trained with")
        missing = [key for key in ("band_set", "inputs", "channels", "mean", "std") if not record.get(key)]
        if missing:
            raise PredictionError(source, f"the model card's normalisation lacks {', '.join(missing)}")
        inputs, channels = tuple(record["inputs"]), tuple(record["channels"])
        unknown = [band for band in inputs if band not in BANDS]
        if unknown:
            raise PredictionError(source, f"the model card names unknown input bands {', '.join(unknown)}")
        mean, std = np.asarray(record["mean"], np.float32), np.asarray(record["std"], np.float32)
        if mean.shape != (len(channels),) or std.shape != (len(channels),):
            raise PredictionError(source, f"the model card has {len(mean)} means and {len(std)} standard deviations "
                                          f"for {len(channels)} channels")
        if not (np.isfinite(mean).all() and np.isfinite(std).all() and (std > 0).all()):
            raise PredictionError(source, "the model card's normalisation has a non-finite mean or a non-positive "
                                          "standard deviation")
        pca = record.get("pca")
        if record["band_set"] == PCA_SET:
            if not pca:
                raise PredictionError(source, "the model was trained on PCA-3 but its card holds no fitted projection")
            if tuple(pca.get("bands", ())) != inputs:
                raise PredictionError(source, "the model card's PCA projection is not over its input bands")
        elif inputs != channels:
            raise PredictionError(source, f"the model card's channels {list(channels)} are not its input bands "
                                          f"{list(inputs)}")
        return cls(inputs, channels, mean, std, pca if record["band_set"] == PCA_SET else None)

    def __call__(self, raw: np.ndarray) -> np.ndarray:
        x = np.asarray(raw, dtype=np.float32)
        if x.ndim != 4 or x.shape[1] != len(self.inputs):
            raise ValueError(f"expected N×{len(self.inputs)}×H×W raw bands ({', '.join(self.inputs)}), got {x.shape}")
        if self.pca is not None:
            x = np.moveaxis(PCAProjection.from_dict(self.pca).apply(np.moveaxis(x, 1, -1)), -1, 1)
        return np.ascontiguousarray((x - self.mean[:, None, None]) / self.std[:, None, None], dtype=np.float32)


@dataclass(frozen=True)
class Decision:
    """Landslide or not from a margin: argmax, or P(landslide) >= a threshold."""

    threshold: float | None = None  # None: argmax

    @property
    def label(self) -> str:
        return "argmax" if self.threshold is None else f"P(landslide) >= {self.threshold:g}"

    def __call__(self, margin: np.ndarray) -> np.ndarray:
        if self.threshold is None:
            return (margin > 0).astype(np.uint8)  # argmax picks class 0 on a tie, as torch's does
        if self.threshold <= 0:
            return np.ones(margin.shape, np.uint8)
        if self.threshold >= 1:
            return np.zeros(margin.shape, np.uint8)
        return (margin >= math.log(self.threshold / (1 - self.threshold))).astype(np.uint8)


def decision_for(choice: str, card: "ModelCard", source: str) -> Decision:
    """`argmax`, `card` (the validation's best-F1 threshold the card records) or a probability."""
    if choice == "argmax":
        return Decision()
    if choice == "card":
        value = card.metrics.final.get("valid_best_threshold")
        if value is None or not math.isfinite(value):
            raise PredictionError(source, "the model card records no validation best-F1 threshold (a model trained "
                                          "before thresholds were recorded, or a validation split without landslide "
                                          "pixels); use --threshold argmax or a probability")
        return Decision(float(value))
    try:
        value = float(choice)
    except ValueError:
        raise PredictionError("--threshold", f"{choice!r} is not argmax, card or a probability") from None
    if not 0.0 < value < 1.0:
        raise PredictionError("--threshold", f"a probability threshold lies strictly between 0 and 1, got {value}")
    return Decision(value)


def probability(margin: np.ndarray) -> np.ndarray:
    """P(landslide) = softmax(logits)[1] = sigmoid(margin), float32."""
    return (0.5 * (1.0 + np.tanh(0.5 * margin.astype(np.float32)))).astype(np.float32)


class Predictor:
    """Model input batches → landslide margins, on CPU or a GPU (bf16 autocast there by default)."""

    def __init__(self, model: torch.nn.Module, *, device: str | torch.device = "cpu", bf16: bool = False,
                 channels_last: bool = False) -> None:
        self.device = torch.device(device)
        self.bf16 = bf16
        self.channels_last = channels_last
        self.model = model.to(self.device).eval()
        if channels_last:
            self.model = self.model.to(memory_format=torch.channels_last)

    @torch.inference_mode()
    def margins(self, image: np.ndarray) -> np.ndarray:
        from swinls.accel import autocast, to_memory_format

        x = torch.from_numpy(np.ascontiguousarray(image, dtype=np.float32))
        if self.device.type == "cuda":
            x = x.pin_memory().to(self.device, non_blocking=True)
        with autocast(self.device, self.bf16):
            logits = self.model(to_memory_format(x, self.channels_last))["logits"].float()
        return (logits[:, 1] - logits[:, 0]).cpu().numpy()


@dataclass
class LoadedModel:
    uri: str  # the version folder
    card: "ModelCard"
    normalizer: Normalizer
    predictor: Predictor


def load_for_prediction(uri: str, *, use_gpu: bool = False, bf16: bool | None = None,
                        channels_last: bool | None = None) -> LoadedModel:
    """A published model (any URI `published.resolve_published` accepts), checked and on its device."""
    from swinls.accel import pick_device
    from swinls.checkpoints import CheckpointError
    from swinls.published import CARD_NAME, load_published

    try:
        model, card, version_uri = load_published(uri)
    except CardError as exc:  # names the card's own file
        raise PredictionError(exc.source, exc.reason) from exc
    except (CheckpointError, FileNotFoundError) as exc:
        raise PredictionError(uri, str(exc).removeprefix(f"{uri}: ")) from exc
    card_uri = f"{version_uri}/{CARD_NAME}"
    normalizer = Normalizer.from_card(card, card_uri)
    if tuple(getattr(model, "channels", normalizer.channels)) != normalizer.channels:
        raise PredictionError(card_uri, f"the card's channels {list(normalizer.channels)} are not the weights' "
                                        f"{list(model.channels)}")
    try:
        device = pick_device(use_gpu)
    except RuntimeError as exc:
        raise PredictionError("--use-gpu", str(exc)) from None
    gpu = device.type == "cuda"
    predictor = Predictor(model, device=device, bf16=gpu if bf16 is None else bf16,
                          channels_last=gpu if channels_last is None else channels_last)
    return LoadedModel(version_uri, card, normalizer, predictor)


def predict_patch(model, card: ModelCard, patch: np.ndarray) -> np.ndarray:
    """A raw H×W×14 Landslide4Sense patch → H×W landslide mask (uint8, argmax), normalised as the
    card says. Whole splits and scenes: `prediction.run`."""
    if patch.ndim != 3 or patch.shape[-1] != len(BANDS):
        raise ValueError(f"expected an H×W×{len(BANDS)} patch, got {patch.shape}")
    normalizer = Normalizer.from_card(card, "model card")
    raw = np.moveaxis(patch[..., [BANDS.index(b) for b in normalizer.inputs]], -1, 0)[None]
    return Decision()(Predictor(model).margins(normalizer(raw))[0])
