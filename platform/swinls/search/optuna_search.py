"""Ray's OptunaSearch, telling Optuna the truth about trials the scheduler stopped.

Ray's searcher reports a trial that ASHA stopped early as COMPLETE with its last, truncated
score, which misleads Optuna's sampler and its importance analysis. Every epoch's metrics say
whether the run was complete (`run_complete`); a trial that ends without that is PRUNED, with
its intermediate values kept — including the result that made the scheduler stop it, which Tune
hands to `on_trial_complete` only.

Intermediate values are keyed by the run's own epoch rather than Tune's training_iteration, so a
trial restarted by `--resume` continues its curve instead of reporting step 1 again.

The study (SQLite) is written as trials finish, Tune's copy of this searcher only at experiment
checkpoints, so a stopped search can leave the study ahead: a trial finished in the study that
Tune restarts on `--resume`. Restoring takes the study's word for it — that trial counts as
finished here too — instead of reporting to a finished Optuna trial, which Optuna refuses.
The study can also hold trials suggested after Tune's last save, which Tune never restarts: they
would stay RUNNING forever, so restoring marks them FAIL (the study belongs to this experiment
alone, so no other search is running them).

The study can never be behind: each time Tune saves this searcher, `on_save` first puts the
study in the experiment's storage. A head lost with its disk leaves a searcher state that names
Optuna trials; the study restored from storage holds every one of them.
"""

from __future__ import annotations

from optuna.trial import TrialState
from ray.tune.result import TRAINING_ITERATION
from ray.tune.search.optuna import OptunaSearch

COMPLETE_FLAG = "run_complete"
STEP = "epoch"


class PruneAwareOptunaSearch(OptunaSearch):
    def __init__(self, *args, on_save=None, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self._on_save = on_save  # picklable: it is saved and restored with the searcher
        self._reported_steps: dict[str, set[int]] = {}  # saved and restored with the searcher
        self._finished_in_study: set[str] = set()  # finished in the study after the searcher was saved

    def _report(self, trial_id: str, result: dict) -> None:
        value, step = result.get(self.metric), result.get(STEP, result.get(TRAINING_ITERATION))
        steps = self._reported_steps.setdefault(trial_id, set())
        if value is None or step is None or step in steps:
            return
        self._ot_trials[trial_id].report(value, step)
        steps.add(step)

    def save(self, checkpoint_path: str) -> None:
        if self._on_save is not None:
            self._on_save()
        super().save(checkpoint_path)

    def restore(self, checkpoint_path: str) -> None:
        super().restore(checkpoint_path)
        study_trials = self._ot_study.get_trials(deepcopy=False)
        finished = {t.number for t in study_trials if t.state.is_finished()}
        self._finished_in_study = {trial_id for trial_id, ot_trial in self._ot_trials.items()
                                   if ot_trial.number in finished and trial_id not in self._completed_trials}
        self._completed_trials.update(self._finished_in_study)
        known = {ot_trial.number for ot_trial in self._ot_trials.values()}
        for orphan in study_trials:
            if orphan.state is TrialState.RUNNING and orphan.number not in known:
                self._ot_study.tell(orphan.number, state=TrialState.FAIL)

    def on_trial_result(self, trial_id: str, result: dict) -> None:
        if trial_id in self._finished_in_study:
            return  # expected after a restore, not worth Ray's warning per result
        if isinstance(self.metric, list) or trial_id in self._completed_trials:
            return super().on_trial_result(trial_id, result)
        self._report(trial_id, result)

    def on_trial_complete(self, trial_id: str, result: dict | None = None, error: bool = False) -> None:
        if trial_id in self._finished_in_study:
            return
        if error or not result or result.get(COMPLETE_FLAG) or trial_id in self._completed_trials:
            return super().on_trial_complete(trial_id, result, error)
        self._report(trial_id, result)
        self._ot_study.tell(self._ot_trials[trial_id], state=TrialState.PRUNED)
        self._completed_trials.add(trial_id)
