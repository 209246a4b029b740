"""The searcher against a real SQLite study: what `--resume` hands it after a stopped search."""

import optuna
import pytest
from optuna.trial import TrialState

from swinls.search.optuna_search import PruneAwareOptunaSearch


def define_by_run(trial):
    trial.suggest_float("lr", 1e-4, 1e-2, log=True)


def searcher(db):
    return PruneAwareOptunaSearch(space=define_by_run, metric="score", mode="max",
                                  storage=optuna.storages.RDBStorage(f"sqlite:///{db}"), study_name="study",
                                  sampler=optuna.samplers.RandomSampler(seed=0))


def started_and_saved(tmp_path):
    """A search whose trial t1 reported epoch 1 (score 0.4) when Tune saved the searcher."""
    db = tmp_path / "study.db"
    first = searcher(db)
    assert first.suggest("t1") is not None
    first.on_trial_result("t1", {"score": 0.4, "epoch": 1})
    first.save(str(tmp_path / "searcher.pkl"))
    return db, first


def study_trials(db):
    return optuna.load_study(study_name="study", storage=f"sqlite:///{db}").trials


def test_a_trial_the_study_finished_after_tunes_last_checkpoint_is_finished_on_restore(tmp_path, caplog):
    db, first = started_and_saved(tmp_path)  # Tune's experiment checkpoint: t1 still running
    first.on_trial_result("t1", {"score": 0.6, "epoch": 2})
    first.on_trial_complete("t1", {"score": 0.6, "epoch": 2, "run_complete": True})  # the study moves on

    resumed = searcher(db)
    resumed.restore(str(tmp_path / "searcher.pkl"))
    # Tune restarts t1, whose finished run reports its last epochs again
    resumed.on_trial_result("t1", {"score": 0.6, "epoch": 2})
    resumed.on_trial_complete("t1", {"score": 0.6, "epoch": 2, "run_complete": True})
    assert not [r for r in caplog.records if "already finished" in r.getMessage()]  # no warning per result

    (trial,) = study_trials(db)
    assert trial.state is TrialState.COMPLETE and trial.value == pytest.approx(0.6)
    assert trial.intermediate_values == {1: 0.4, 2: 0.6}


def test_a_trial_still_running_in_the_study_goes_on_reporting_after_restore(tmp_path):
    db, _ = started_and_saved(tmp_path)

    resumed = searcher(db)
    resumed.restore(str(tmp_path / "searcher.pkl"))
    resumed.on_trial_result("t1", {"score": 0.5, "epoch": 2})
    resumed.on_trial_complete("t1", {"score": 0.5, "epoch": 2})  # no run_complete: the scheduler stopped it

    (trial,) = study_trials(db)
    assert trial.state is TrialState.PRUNED and trial.intermediate_values == {1: 0.4, 2: 0.5}


def test_a_trial_suggested_after_tunes_last_checkpoint_fails_on_restore_and_the_rest_go_on(tmp_path):
    db, first = started_and_saved(tmp_path)
    first.suggest("t2")  # Tune never saved it, so it never restarts it

    resumed = searcher(db)
    resumed.restore(str(tmp_path / "searcher.pkl"))
    assert resumed.suggest("t3") is not None  # the search goes on with a fresh trial
    resumed.on_trial_complete("t1", {"score": 0.5, "epoch": 2, "run_complete": True})

    states = {t.number: t.state for t in study_trials(db)}
    assert states == {0: TrialState.COMPLETE, 1: TrialState.FAIL, 2: TrialState.RUNNING}
