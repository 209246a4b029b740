"""Hyperparameter search: YAML spaces, Ray Tune + Optuna, the best model published to storage."""

from swinls.search.space import SearchSpace, SpaceError, load_space, parse_space

__all__ = ["SearchSpace", "SpaceError", "load_space", "parse_space"]
