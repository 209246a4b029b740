"""A Tune trial running a Train fit: every report of the fit, then the trial's own last one, reaches
Tune in order and the trial ends. Ray 2.60's own bridge (TuneReportCallback) deadlocks on exactly
this sequence, a report straight after the fit's last one: both the trial actor's threads block
putting into its one-slot result queue (every trial, with the reports a few milliseconds apart)."""

import threading

import pytest

from swinls.search.tune_reports import fit_reporting_to_tune

pytestmark = pytest.mark.timeout(180)


def fake_fit(epochs: int, fail: bool = False):
    """What a Train controller does with the callback: a report per epoch, from a thread of its own."""

    def fit(callback):
        def controller():
            for epoch in range(1, epochs + 1):
                callback.after_report(None, [{"epoch": epoch, "valid_f1": epoch / 10}], None)

        thread = threading.Thread(target=controller)
        thread.start()
        thread.join()
        if fail:
            raise RuntimeError("the worker group failed")
        return {"epochs": epochs}

    return fit


def trial(config):
    import ray.tune

    result = fit_reporting_to_tune(fake_fit(3, config["fail"]), lambda m: dict(m, trial=config["i"]))
    ray.tune.report({"epoch": result["epochs"], "final": True, "trial": config["i"]})  # what a search trial adds


def test_every_report_and_the_trials_last_reach_tune_in_order_and_each_trial_ends(ray_local, tmp_path):
    import ray.tune

    tuner = ray.tune.Tuner(trial, param_space={"i": ray.tune.grid_search(list(range(3))), "fail": False},
                           tune_config=ray.tune.TuneConfig(max_concurrent_trials=3),
                           run_config=ray.tune.RunConfig(storage_path=str(tmp_path), verbose=0))
    results = tuner.fit()
    assert len(results) == 3 and not results.errors
    for result in results:
        frame = result.metrics_dataframe
        assert list(frame["epoch"]) == [1, 2, 3, 3] and list(frame["final"].fillna(False)) == [False] * 3 + [True]
        assert set(frame["trial"]) == {result.config["i"]}


def test_a_failed_fit_fails_its_trial_after_the_reports_it_made(ray_local, tmp_path):
    import ray.tune

    tuner = ray.tune.Tuner(trial, param_space={"i": 0, "fail": True},
                           run_config=ray.tune.RunConfig(storage_path=str(tmp_path), verbose=0))
    [result] = tuner.fit()
    assert "the worker group failed" in str(result.error)
    assert list(result.metrics_dataframe["epoch"]) == [1, 2, 3]
