"""Ray's OptunaSearch, telling Optuna the truth about trials the scheduler stopped.

Ray's searcher reports a trial that ASHA stopped early as COMPLETE with its last, truncated
score, which misleads Optuna's sampler and its importance analysis. Every epoch's metrics say
whether the run was complete (`run_complete`); a trial that ends without that is PRUNED, with
its intermediate values (already reported epoch by epoch) kept.
"""

from __future__ import annotations

from optuna.trial import TrialState
from ray.tune.search.optuna import OptunaSearch

COMPLETE_FLAG = "run_complete"


class PruneAwareOptunaSearch(OptunaSearch):
    def on_trial_complete(self, trial_id: str, result: dict | None = None, error: bool = False) -> None:
        if error or not result or result.get(COMPLETE_FLAG) or trial_id in self._completed_trials:
            return super().on_trial_complete(trial_id, result, error)
        self._ot_study.tell(self._ot_trials[trial_id], state=TrialState.PRUNED)
        self._completed_trials.add(trial_id)
