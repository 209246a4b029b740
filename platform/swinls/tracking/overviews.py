"""Pictures over many runs, drawn from recorded numbers: a search's trials on one plot, the scaling
table's time to each target F1 against workers, and retraining's champion F1 per region over
nights. Each is redrawn whole from storage, so an old experiment can be drawn again."""

from __future__ import annotations

import io
import math

from swinls import storage

TRIALS_NAME = "trials.png"
TIME_TO_F1_NAME = "time_to_f1.png"
CHAMPION_NAME = "champion_f1.png"


def _figure(width: float = 7.5, height: float = 4.0):
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    figure = Figure(figsize=(width, height), layout="constrained")
    return figure, figure.subplots()


def _png(figure) -> bytes:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=100)
    return buffer.getvalue()


def trials_figure(histories: dict[str, list[dict]], metric: str):
    """One line per trial: `metric` against the run's epoch."""
    figure, ax = _figure()
    for trial, history in sorted(histories.items()):
        points = [(h["epoch"], h[metric]) for h in history if isinstance(h.get(metric), (int, float))]
        if points:
            ax.plot(*zip(*points), marker="o", markersize=3, label=trial, gid=trial)
    ax.set_xlabel("epoch")
    ax.set_ylabel(metric)
    ax.set_title(f"{metric} of every trial")
    if ax.lines and len(ax.lines) <= 20:
        ax.legend(fontsize=7)
    return figure


def write_trials(exp_uri: str, trial_ids: list[str], metric: str) -> str | None:
    """`<experiment>/trials.png` from each trial's recorded history."""
    from swinls.checkpoints import RunStore

    histories = {}
    for trial in trial_ids:
        pointer = RunStore(storage.join(exp_uri, "trials", trial)).latest() or {}
        if pointer.get("history"):
            histories[trial] = pointer["history"]
    if not histories:
        return None
    uri = storage.join(exp_uri, TRIALS_NAME)
    storage.write_bytes_atomic(uri, _png(trials_figure(histories, metric)))
    return uri


def time_to_f1_figure(points: dict[float, list[tuple[int, float]]]):
    """One line per target F1: seconds to reach it against Ray Train workers."""
    figure, ax = _figure(6.0, 4.0)
    for target, series in sorted(points.items()):
        series = sorted((w, s) for w, s in series if not math.isnan(s))
        if series:
            ax.plot(*zip(*series), marker="o", label=f"valid F1 {target:g}", gid=f"{target:g}")
    ax.set_xlabel("Ray Train workers")
    ax.set_ylabel("seconds to reach it (mean over seeds)")
    ax.set_title("Time to a target F1")
    if ax.lines:
        ax.legend(fontsize=8)
    return figure


def champion_figure(records: list[dict]):
    """Per region, the F1 of the model that was champion after each night that judged one."""
    figure, ax = _figure()
    nights, per_region = [], {}
    for record in records:
        scores = record.get("scores") or {}
        holder = "challenger" if record.get("verdict") == "promoted" else "champion"
        table = scores.get(holder) or {}
        if not table.get("regions"):
            continue
        nights.append(len(nights) + 1)
        for region, counts in table["regions"].items():
            per_region.setdefault(region, []).append((nights[-1], counts.get("f1")))
    for region, series in sorted(per_region.items()):
        series = [(n, f) for n, f in series if isinstance(f, (int, float))]
        if series:
            ax.plot(*zip(*series), marker="o", label=region, gid=region)
    ax.set_xlabel("retraining run that reached a verdict")
    ax.set_ylabel("champion's validation F1")
    ax.set_title("The champion per region, night by night")
    if ax.lines:
        ax.legend(fontsize=8)
    return figure


def write_champion_history(registry_uri: str) -> str | None:
    """`<registry>/champion_f1.png` from the decision records."""
    from swinls.retraining.records import DecisionLog
    from swinls.retraining.registry import ModelRegistry

    records = DecisionLog(ModelRegistry(registry_uri)).finals()
    if not any(r.get("scores") for r in records):
        return None
    uri = storage.join(registry_uri, CHAMPION_NAME)
    storage.write_bytes_atomic(uri, _png(champion_figure(records)))
    return uri


def write_time_to_f1(exp_uri: str, points: dict[float, list[tuple[int, float]]]) -> str:
    uri = storage.join(exp_uri, TIME_TO_F1_NAME)
    storage.write_bytes_atomic(uri, _png(time_to_f1_figure(points)))
    return uri
