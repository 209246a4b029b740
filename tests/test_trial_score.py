"""A trial's score follows the run's epochs: resumed runs, re-reported epochs, NaN."""

import math

import pytest

from swinls.search.score import SCORE, TrialScore, scored


def epochs(*values, first=1):
    return [{"epoch": first + i, "valid_f1": v} for i, v in enumerate(values)]


def test_the_score_averages_the_last_epochs_reported_so_far():
    score = TrialScore("valid_f1", 3)
    assert [score.add(m) for m in epochs(0.3, 0.0, 0.6, 0.9)] == pytest.approx([0.3, 0.15, 0.3, 0.5])
    assert TrialScore("valid_f1", 1, epochs(0.3, 0.1)).value() == pytest.approx(0.1)


def test_a_resumed_trial_continues_from_its_saved_history():
    resumed = TrialScore("valid_f1", 2, history=epochs(0.2, 0.4))
    assert resumed.add(epochs(0.8, first=3)[0]) == pytest.approx(0.6)


def test_epochs_reported_again_after_a_restart_replace_the_lost_ones():
    score = TrialScore("valid_f1", 2)
    for metrics in epochs(0.1, 0.2, 0.9):  # epoch 3 ran, then the worker group died before its checkpoint
        score.add(metrics)
    assert score.add({"epoch": 2, "valid_f1": 0.4}) == pytest.approx(0.25)  # epoch 3 is void, not averaged in
    assert score.add({"epoch": 3, "valid_f1": 0.6}) == pytest.approx(0.5)


def test_reports_without_the_metric_pass_through_and_nan_stays_nan():
    score = TrialScore("valid_f1", 2)
    assert scored({"epoch": 1, "train_loss": 1.0}, score) == {"epoch": 1, "train_loss": 1.0}
    assert scored({"epoch": 1, "valid_f1": 0.5}, score)[SCORE] == pytest.approx(0.5)
    assert math.isnan(scored({"epoch": 2, "valid_f1": float("nan")}, score)[SCORE])
