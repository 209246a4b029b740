"""Two-stage balanced training and self-training, under Ray Train or in a plain process."""

from swinls.training.runner import RunResult, run_experiment, run_uri_for

__all__ = ["RunResult", "run_experiment", "run_uri_for"]
