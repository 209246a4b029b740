"""Recipes: named experiment-config fragments a config, a space's `base` or an override starts
from with `recipe: NAME` (one shipped here: tiny, smoke) or `recipe: PATH-or-URI` (a YAML file of
your own). The file's own keys win over the recipe's; a recipe may name a recipe in turn."""

from __future__ import annotations

import difflib
from pathlib import Path
from typing import Any, Mapping

from swinls.config import ConfigError, load_yaml, merge

HERE = Path(__file__).parent
KEY = "recipe"


def shipped() -> list[str]:
    return sorted(p.stem for p in HERE.glob("*.yaml"))


def tiny_model(**changes):
    """The tiny recipe's model settings as a ModelConfig, for code that builds a model alone."""
    from swinls.config import from_dict
    from swinls.models.config import ModelConfig

    return from_dict(ModelConfig, {**recipe_data("tiny")["model"], **changes})


def recipe_data(name: str) -> dict:
    """A recipe's own settings, with the recipes it names resolved."""
    return with_recipe({KEY: name})


def with_recipe(data: Mapping[str, Any], _seen: tuple[str, ...] = ()) -> dict:
    """`data` over the recipe it names (and that recipe over the one it names...), `recipe` gone."""
    data = dict(data)
    name = data.pop(KEY, None)
    if name is None:
        return data
    if not isinstance(name, str) or not name:
        raise ConfigError(f"recipe: expected a recipe name ({', '.join(shipped())}) or a YAML path, got {name!r}", (KEY,))
    if name in _seen:
        raise ConfigError(f"recipe {name!r} names itself through {' -> '.join(_seen)}", (KEY,))
    path = HERE / f"{name}.yaml" if "/" not in name and not name.endswith((".yaml", ".yml")) else None
    if path is not None and not path.exists():
        close = difflib.get_close_matches(name, shipped(), n=1)
        hint = f" (did you mean {close[0]}?)" if close else ""
        raise ConfigError(f"recipe {name!r} is not one of the shipped recipes{hint}: {', '.join(shipped())}; "
                          "give a YAML path for your own", (KEY,))
    base = with_recipe(load_yaml(str(path) if path else name), (*_seen, name))
    return merge(base, data)
