"""How a challenger is made: one experiment config (`--config` with `--set` overrides) or a short
search (`--space`), always on every labelled region of the data, none held out.

A run's key is a hash of (manifest hash, recipe, code version): the same key means the same
challenger, so a rerun resumes its training, and a rerun after a verdict repeats the verdict.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass

from swinls import storage
from swinls.config import to_dict
from swinls.experiment_config import load_experiment
from swinls.published import publish_best
from swinls.retraining.registry import ModelRegistry, RegistryError
from swinls.training.progress import LiveLines
from swinls.training.report import epoch_table_header

# where the run lives and what it trains on come from the registry and the data, not the recipe
PLACED = ("storage", "name")
PLACED_DATA = ("uri", "train_regions", "holdout_regions")

SEARCH_VERDICT_FRACTION = 0.5  # of the validation patches, by patch id (data/validation.py)


@dataclass(frozen=True)
class Recipe:
    config: str | None = None  # an experiment YAML (default: the paper's recipe)
    overrides: tuple[str, ...] = ()  # key.sub=value on the config, or on a space's base config
    space: str | None = None  # a search space YAML instead: its best trial is the challenger
    samples: int | None = None  # the search's budget, overriding the space's
    workers: int | None = None
    use_gpu: bool = False

    def describe(self) -> dict:
        return {"config": self.config, "space": self.space, "overrides": list(self.overrides),
                "samples": self.samples, "workers": self.workers, "use_gpu": self.use_gpu}

    @staticmethod
    def _on(regions: list[str]) -> list[str]:
        return [f"data.train_regions={json.dumps(regions)}", "data.holdout_regions=[]"]

    def experiment(self, data_uri: str, regions: list[str], storage_uri: str, name: str):
        resources = [f"run.num_workers={self.workers}"] if self.workers is not None else []
        resources += ["run.use_gpu=true"] if self.use_gpu else []
        placed = [f"data.uri={json.dumps(data_uri)}", f"storage={json.dumps(storage_uri)}", f"name={json.dumps(name)}"]
        return load_experiment(self.config, [*self.overrides, *resources, *self._on(regions), *placed])

    def run_settings(self, data_uri: str, regions: list[str]):
        """The challenger's run settings (workers, GPUs), its config or space checked on the way."""
        if self.space:
            from swinls.search.space import parse_space

            return parse_space(self.space_text(regions), self.space).run
        return self.experiment(data_uri, regions, "unused", "unused").run

    def space_text(self, regions: list[str]) -> str:
        from swinls.search.space import override_space

        return override_space(storage.read_bytes(self.space).decode(), samples=self.samples, workers=self.workers,
                              use_gpu=self.use_gpu, base=[*self.overrides, *self._on(regions),
                                                          f"data.verdict_fraction={SEARCH_VERDICT_FRACTION}"])

    def verdict_fraction(self) -> float:
        """The share of validation the verdict keeps to itself: a search picks its best trial by
        validation F1, so judging that trial on the same patches would favour it."""
        return SEARCH_VERDICT_FRACTION if self.space else 0.0

    def band_sets(self, data_uri: str, regions: list[str]) -> list[str]:
        """Every band set the challenger may be trained on (a space's choices too)."""
        if not self.space:
            return [self.experiment(data_uri, regions, "unused", "unused").data.bands]
        from swinls.search.space import parse_space

        space = parse_space(self.space_text(regions), self.space)
        choices = [c for p in space.parameters if p.key == "data.bands" for c in p.choices or ()]
        return choices or [space.experiment({}).data.bands]

    def valid_fraction(self, data_uri: str, regions: list[str]) -> float:
        """The validation carve of regions without labelled ValidData: champion and challenger are
        scored on the patches the challenger did not train on."""
        if not self.space:
            return self.experiment(data_uri, regions, "unused", "unused").data.valid_fraction
        from swinls.search.space import parse_space

        return parse_space(self.space_text(regions), self.space).experiment({}).data.valid_fraction

    def identity(self, data_uri: str, regions: list[str]) -> dict:
        """What makes two challengers the same: the resolved experiment config without where it
        runs and on what (the key holds the manifest), or the resolved space."""
        if self.space:
            return {"space": self.space_text(regions)}
        config = to_dict(self.experiment(data_uri, regions, "unused", "unused"))
        for key in PLACED:
            config.pop(key, None)
        for key in PLACED_DATA:
            config["data"].pop(key, None)
        return {"config": config}


def run_key(manifest_sha256: str, recipe_identity: dict, code: dict) -> str:
    blob = json.dumps({"manifest": manifest_sha256, "recipe": recipe_identity, "code": code}, sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def make_challenger(recipe: Recipe, data_uri: str, regions: list[str], registry: ModelRegistry, key: str,
                    *, local: bool = False, log=print) -> str:
    """Train (or resume) the challenger and publish it under candidates/<key>/; its URI."""
    candidate = registry.path("candidates", key)
    if storage.exists(storage.join(candidate, storage.POINTER_NAME)):
        return candidate  # trained and published by an earlier run with this key
    if recipe.space:
        from swinls.search.experiment import run_search

        searches = registry.path("searches")
        resume = storage.exists(storage.join(searches, key, "space.yaml"))
        log(f"challenger: {'resuming' if resume else 'starting'} a search at {storage.join(searches, key)}")
        result = run_search(recipe.space_text(regions), data_uri=data_uri, storage_uri=searches, name=key,
                            resume=resume, space_source=recipe.space, verbose=0)
        if result.best_uri is None:
            raise RegistryError(f"{result.experiment_uri}: no trial of the search finished, so there is no challenger")
        return result.best_uri
    from swinls.training import run_experiment

    experiment = recipe.experiment(data_uri, regions, registry.path("runs"), key)
    run_uri = storage.join(registry.path("runs"), key)
    log(f"challenger: training at {run_uri}" + (" (resuming from its checkpoints)" if storage.exists(
        storage.join(run_uri, "checkpoints")) else ""))
    log(epoch_table_header(live=True))
    result = run_experiment(experiment, local=local, printer=LiveLines(log))
    if result.checkpoint is None:
        raise RegistryError(f"{run_uri}: the challenger's run ended without a checkpoint")
    final = result.final
    publish_best(candidate, result.checkpoint, experiment=f"retrain-{key}", trial=key,
                 objective={"metric": "valid_f1", "scope": "last", "mode": "max", "value": final.get("valid_f1")})
    return candidate

