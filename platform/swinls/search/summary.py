"""What jobs/tune.py prints when a search ends: the ranked trials, the best model, and the lines
to run next (its card; predictions on the built-in data, or a placeholder for the user's own)."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

from swinls import storage
from swinls.metrics import defined, undefined_everywhere


def shown(path: str) -> str:
    """A local path as the user would type it from here; URIs unchanged."""
    if "://" in str(path):
        return str(path)
    absolute = os.path.abspath(path)  # not resolve(): a venv's python is a symlink out of the checkout
    inside = absolute.startswith(os.getcwd().rstrip(os.sep) + os.sep)
    return os.path.relpath(absolute) if inside else str(path)


def job_python() -> str:
    """This interpreter as the user would type it: the venv's, when run from the checkout."""
    python = shown(sys.executable)
    return python if not Path(python).is_absolute() else "python"


def predict_commands(result, space, *, data: str | None, cache: str, root: Path) -> list[str]:
    """The jobs/predict.py lines for this search's best model: the built-in data's test split and
    scenes of a region it did not train on, or a placeholder for the user's own data."""
    best, out = shown(result.best_uri), shown(storage.join(result.experiment_uri, "predictions"))
    job = f"{job_python()} {shown(str(root / 'jobs' / 'predict.py'))}"
    if data:
        return [f"{job} {best} <split folder holding img/, or GeoTIFF scenes> {out}"]
    from swinls.defaults import DEFAULT_SPEC

    config = space.experiment({})
    untrained = [r for r in DEFAULT_SPEC.regions if r not in config.data.train_regions]
    region = (list(config.data.holdout_regions) or untrained or list(DEFAULT_SPEC.regions))[0]
    raw = shown(str(Path(cache) / "synthetic" / region))
    return [f"{job} {best} {raw}/TestData {out}/{region}-test",
            f"{job} {best} {raw}/scenes {out}/{region}-scenes --probability"]


def ranked_table(trials: list[dict]) -> list[str]:
    """The trials best first: score, the metric at the last epoch, and what the live table showed
    beside them (the scheduler's metric, held-out F1)."""
    also = list(dict.fromkeys(key for row in trials for key in row.get("also", {})))

    def cell(value) -> str:
        return "-" if value is None else "undef" if not defined(value) else f"{value:.4f}"

    lines = [f"{'rank':>4} {'trial':<24} {'status':<9} {'epochs':>6} {'score':>8} {'final':>8} "
             + "".join(f"{key:>11} " for key in also) + " parameters"]
    for rank, row in enumerate(trials, start=1):
        lines.append(f"{rank:>4} {row['trial']:<24} {row['status']:<9} {str(row['epochs'] or '-'):>6} "
                     f"{cell(row['value']):>8} {cell(row['final']):>8} "
                     + "".join(f"{cell(row.get('also', {}).get(key)):>11} " for key in also)
                     + f" {json.dumps(row['params'], sort_keys=True)}")
    return lines


def failure_summary(trials: list[dict]) -> str | None:
    """When every trial failed: one line saying so, with the first failure's own message (the
    same bad input usually fails them all); None when any trial ran."""
    if not trials or any(row["status"] != "error" for row in trials):
        return None
    reasons = list(dict.fromkeys(row.get("error") or "no message" for row in trials))
    more = f" ({len(reasons) - 1} other reason{'s' if len(reasons) > 2 else ''} in the trials' logs)" if len(reasons) > 1 else ""
    return f"all {len(trials)} trials failed: {reasons[0]}{more}"


def unrankable_summary(trials: list[dict], metric: str) -> str | None:
    """When every trial that finished has an undefined score: why no model was published."""
    return undefined_everywhere(f"the score ({metric})", [row["value"] for row in trials if row["status"] == "complete"])


def summary_lines(result, space, *, name: str, data: str | None, cache: str, root: Path) -> list[str]:
    lines = [f"\nexperiment {name}: {result.experiment_uri}",
             f"ranked by {space.mode} {space.scope} {space.metric} (score); final: {space.metric} at the trial's last epoch",
             *ranked_table(result.trials)]
    if not result.best_model_uri:
        if unrankable_summary(result.trials, space.metric):
            return lines + ["\nno trial has a defined score, so no model was published"]
        return lines + ["\nno trial finished its whole run, so no model was published"]
    python, best = job_python(), shown(result.best_uri)
    return lines + [f"\nbest model: {shown(result.best_model_uri)}", "\nnext:",
                    f"  {python} {shown(str(root / 'jobs' / 'card.py'))} {best}    # its bands, normalisation, regions, metrics",
                    "  # apply it (masks, submission.zip, metrics where labels exist):",
                    *(f"  {line}" for line in predict_commands(result, space, data=data, cache=cache, root=root))]
