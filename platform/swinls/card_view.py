"""A published model's card as a person reads it: what it is, the bands and statistics it must be
fed, what it was trained on, and how it scored after each phase. What `jobs/card.py` prints."""

from __future__ import annotations

from swinls.model_card import ModelCard
from swinls.models.config import DEFAULT_WINDOW
from swinls.training.report import epoch_row, epoch_table_header


def _architecture(model: dict) -> str:
    if model.get("name", "swinls") == "swinls":
        # a card that left the window to the size says which window that size has
        window = model.get("window_size") or DEFAULT_WINDOW.get(model.get("size"), "default")
        name, details = f"swinls {model.get('size')}", [f"window {window}"]
    else:
        name, details = f"{model['name']} on {model.get('encoder')}", []
    if model.get("decoder_channels"):
        details.append("decoder " + "-".join(str(c) for c in model["decoder_channels"]))
    if model.get("image_head"):
        details.append("image-level head")
    return f"{name} ({', '.join(details)})" if details else name


def _regions(card: ModelCard) -> str:
    trained = card.regions.trained or ["every region of the manifest not held out"]
    held_out = card.regions.held_out
    return f"{', '.join(trained)}; held out: {', '.join(held_out) if held_out else 'none'}"


def _threshold(final: dict) -> str:
    threshold = final.get("valid_best_threshold")
    if threshold is None:
        return "argmax (no validation threshold recorded)"
    best = final.get("valid_best_f1")
    return (f"argmax by default; the validation's best-F1 threshold is {threshold:.3f}"
            + (f" (F1 {best:.4f}; --threshold card)" if best is not None else " (--threshold card)"))


def describe_card(card: ModelCard, version_uri: str) -> list[str]:
    norm = card.normalization
    objective = card.objective
    lines = [f"model: {version_uri}",
             f"  experiment {card.experiment}, trial {card.trial}, published {card.created}"]
    if objective:
        value = objective.get("value")
        lines.append(f"  chosen by {objective.get('mode')} {objective.get('scope')} {objective.get('metric')}"
                     + (f" = {value:.4f}" if isinstance(value, (int, float)) else ""))
    lines.append(f"architecture: {_architecture(card.model)}")
    inputs, channels = norm["inputs"], norm["channels"]
    if norm.get("pca"):
        lines.append(f"bands: {norm['band_set']}, a PCA projection of {', '.join(inputs)} to {', '.join(channels)}")
    else:
        lines.append(f"bands: {norm['band_set']}, in this order: {', '.join(inputs)}")
    lines.append(f"normalisation ({norm.get('source')} statistics; x' = (x - mean) / std per channel):")
    lines.append(f"  {'channel':<8} {'mean':>9} {'std':>9}")
    for name, mean, std in zip(channels, norm["mean"], norm["std"]):
        lines.append(f"  {name:<8} {mean:>9.4f} {std:>9.4f}")
    units = card.input_units
    lines.append(f"input units: {units.kind} (physical values x' = x * gain + offset per band: reflectance, slope "
                 "degrees, DEM metres; how Sentinel-2 products are read)" if units else
                 "input units: not recorded (Sentinel-2 products are refused; pre-stacked scenes only)")
    lines.append(f"trained on regions: {_regions(card)}")
    manifest = card.data_manifest_sha256
    lines.append(f"data manifest: sha256 {manifest}" if manifest else "data manifest: not recorded")
    lines.append(f"threshold: {_threshold(card.metrics.final)}")
    if card.metrics.per_phase:
        lines.append("metrics at the end of each phase (valid: the training regions' validation patches):")
        lines.append(f"  {epoch_table_header()}")
        for phase, values in card.metrics.per_phase.items():
            lines.append(f"  {epoch_row(dict(values, phase=phase))}")
    code = card.code_version
    lines.append(f"code: swinls-platform {code.package}" + (f", git {code.git[:12]}" if code.git else "")
                 + (f", source {code.source[:12]}" if code.source else "")
                 + "; " + ", ".join(f"{k} {v}" for k, v in card.libraries.items() if v and k != "swinls-platform"))
    return lines
