"""A metric over no labelled pixel is undefined, and nothing is ranked, published or promoted on it:
a search's table and its best model, an ablation's grid, a retraining verdict."""

import math
from types import SimpleNamespace

import pytest

from swinls.errors import NothingToRankOn
from swinls.metrics import Confusion
from swinls.retraining.decision import judge
from swinls.retraining.evaluate import Scores
from swinls.search.experiment import rank_trials
from swinls.search.space import SCORE, parse_space
from swinls.search.summary import ranked_table, unrankable_summary

NAN = math.nan
SPACE = """
metric: valid_f1
mode: max
budget: {samples: 3}
base: {recipe: tiny}
parameters:
  stage1.lr: {low: 1.0e-4, high: 1.0e-2, log: true}
"""


def trial_result(name: str, score, complete: bool = True):
    """What Tune hands back per trial: its last reported metrics and its config."""
    metrics = {"trial_id": name, SCORE: score, "valid_f1": score, "epoch": 3, "run_complete": complete}
    return SimpleNamespace(metrics=metrics, config={"stage1.lr": 0.001}, error=None, path=f"/runs/{name}")


@pytest.fixture(scope="module")
def space():
    return parse_space(SPACE, "space.yaml")


def test_an_undefined_score_never_ranks_above_a_defined_one(space):
    ranked = rank_trials([trial_result("a", NAN), trial_result("b", 0.2), trial_result("c", 0.4)], space)
    assert [row["trial"] for row in ranked] == ["c", "b", "a"]
    assert unrankable_summary(ranked, space.metric) is None
    assert "undef" in ranked_table(ranked)[-1]  # shown as undefined, not as nan or 0


def test_a_search_whose_every_score_is_undefined_says_so(space):
    ranked = rank_trials([trial_result("a", NAN), trial_result("b", NAN), trial_result("c", 0.3, complete=False)], space)
    reason = unrankable_summary(ranked, space.metric)
    assert reason.startswith("the score (valid_f1) is undefined for all 2 finished trials")
    assert "jobs/ingest.py --labels" in reason


def test_the_best_model_callback_never_publishes_an_undefined_score():
    from swinls.search.callbacks import StudyAndBestCallback

    callback = StudyAndBestCallback("/nowhere", "x", {"metric": "valid_f1", "scope": "last", "mode": "max"}, "/nowhere/study")
    assert not callback._better(NAN, None) and not callback._better(NAN, 0.1)
    assert callback._better(0.1, None) and not callback._better(0.1, 0.2)


def test_an_ablation_whose_every_trial_is_undefined_stops_with_its_reason():
    from swinls.ablation.run import check_rankable

    records = [{"trial": "a", "status": "complete", "valid_f1": NAN}, {"trial": "b", "status": "complete"},
               {"trial": "c", "status": "incomplete", "valid_f1": 0.5}]
    with pytest.raises(NothingToRankOn, match="valid_f1 is undefined for all 2 finished trials"):
        check_rankable(records, "table.md")
    check_rankable(records + [{"trial": "d", "status": "complete", "valid_f1": 0.0}], "table.md")


def scores(**regions):
    """Per region (tp, fp, fn, labelled pixels)."""
    return Scores("m", {name: Confusion(tp, fp, fn, pixels - tp - fp - fn) for name, (tp, fp, fn, pixels) in regions.items()})


def test_a_challenger_judged_on_no_labelled_pixel_is_never_promoted():
    unlabelled = scores(north=(0, 0, 0, 0))
    verdict = judge(None, unlabelled)
    assert not verdict.promote and "undefined" in verdict.reason
    assert not judge(scores(north=(5, 5, 5, 100)), unlabelled).promote
    # a champion with no defined F1 on this data yields to any challenger that has one
    assert judge(scores(north=(0, 0, 0, 0)), scores(north=(1, 9, 9, 100))).promote
    # a region without labelled pixels is no reason to refuse one that is better everywhere else
    better = judge(scores(north=(5, 5, 5, 100), south=(0, 0, 0, 0)), scores(north=(9, 1, 1, 100), south=(0, 0, 0, 0)))
    assert better.promote
