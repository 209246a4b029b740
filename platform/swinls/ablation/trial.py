"""One ablation trial: the shared settings, the row's and model's overrides and a seed, trained
to the end and reported to Tune every epoch.

A trial's run lives at `<experiment>/trials/<row>--<model>--s<seed>`: a rerun of the ablation
with the same name finds a finished trial's run complete and reports its last epoch again
without training, and an interrupted one resumes from its checkpoint.

A trial with one worker trains inside its Tune actor (the actor holds the trial's CPUs and GPU
share, so trials still spread over a cluster, without a Ray Train group to start per trial);
with more, it drives a Ray Train fit of that many DDP workers.
"""

from __future__ import annotations

import json
from typing import Any

from swinls import storage
from swinls.ablation.tables import Table
from swinls.config import apply_overrides
from swinls.experiment_config import ExperimentConfig, experiment_from_data


def trial_name(row: str, model: str, seed: int) -> str:
    return f"{row}--{model}--s{seed}"


def trains_in_actor(table: Table, config: ExperimentConfig) -> bool:
    """One worker trains in the Tune actor, except in the scaling table, where every row must go
    through Ray Train for their throughputs to compare."""
    return config.run.num_workers == 1 and table.name != "scaling"


def parse_trial_name(name: str) -> tuple[str, str, int]:
    row, model, seed = name.split("--")
    return row, model, int(seed[1:])


def trial_config(table: Table, settings: dict[str, Any], exp_uri: str, row: str, model: str, seed: int,
                 user: list[str] = ()) -> ExperimentConfig:
    """The experiment of one trial: the shared settings (the YAML), the table's recipe, the user's
    `--set` overrides, the model's and the row's own overrides, then the seed (of the weights, the
    batches and the augmentation draws) and where it runs."""
    overrides = table.overrides(table.row(row), model, list(user)) + [
        f"run.seed={seed}", f"data.augment.seed={seed}",
        f"storage={json.dumps(storage.join(exp_uri, 'trials'))}", f"name={json.dumps(trial_name(row, model, seed))}"]
    return experiment_from_data(apply_overrides(settings, overrides))


ABLATION_EXPERIMENT = "swinls-ablation"  # the MLflow experiment of ablation tables and their trials


def run_ablation_trial(params: dict, *, table: Table, settings: dict, exp_uri: str, attempt: str, user: list[str] = (),
                       tracking: tuple[str, str] | None = None) -> None:
    """The Tune function of a trial. `attempt`: this invocation of the grid (search/attempts.py).
    `tracking`: (MLflow URI, the table's run id)."""
    import ray.tune

    from swinls.search.attempts import train_once_per_attempt
    from swinls.tracking.trials import end_trial, trial_tracker
    from swinls.training import run_experiment
    from swinls.training.runner import run_uri_for

    row, model, seed = parse_trial_name(params["trial"])
    config = trial_config(table, settings, exp_uri, row, model, seed, user)
    tags = {"row": row, "model": model, "seed": seed}
    tracker = trial_tracker(tracking, ABLATION_EXPERIMENT, params["trial"], config,
                            {"swinls.job": f"ablate {table.name} trial", **{f"swinls.{k}": str(v) for k, v in tags.items()}})

    def report(metrics: dict) -> dict:
        if tracker:
            tracker.epoch(metrics)
        return dict(metrics, **tags)

    def fit():
        if trains_in_actor(table, config):
            import torch

            torch.set_num_threads(max(1, int(config.run.cpus_per_worker)))  # trials side by side, not fighting for cores
            return run_experiment(config, local=True, printer=lambda metrics: ray.tune.report(report(metrics)))
        from swinls.search.score import TrialScore, scored
        from swinls.search.tune_reports import fit_reporting_to_tune

        score = TrialScore("valid_f1", 1)
        return fit_reporting_to_tune(lambda callback: run_experiment(config, callbacks=[callback]),
                                     lambda metrics: scored(report(metrics), score))

    try:
        result = train_once_per_attempt(run_uri_for(config), attempt, fit)
    except BaseException:
        end_trial(tracker, failed=True)
        raise
    end_trial(tracker, result)
    if not result.trained and result.history:  # finished before this rerun: its last epoch again
        ray.tune.report(dict(result.final, **tags))
