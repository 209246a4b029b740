"""Scheduled retraining: a champion/challenger registry keyed by the regions it was trained on."""

from swinls.retraining.decision import MAX_REGION_DROP, MIN_GAIN, Verdict, judge
from swinls.retraining.evaluate import Scores, evaluate, evaluation_regions
from swinls.retraining.recipe import Recipe, run_key
from swinls.retraining.records import DecisionLog
from swinls.retraining.registry import Champion, ModelRegistry, RegistryError
from swinls.retraining.run import Outcome, RetrainError, RetrainOptions, labelled_regions, retrain, rollback

__all__ = ["MAX_REGION_DROP", "MIN_GAIN", "Champion", "DecisionLog", "ModelRegistry", "Outcome", "Recipe", "RegistryError",
           "RetrainError", "RetrainOptions", "Scores", "Verdict", "evaluate", "evaluation_regions", "judge",
           "labelled_regions", "retrain", "rollback", "run_key"]
