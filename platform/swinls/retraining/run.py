"""`retrain(data, registry, recipe)`: one scheduled run. What `jobs/retrain.py` calls.

1. Nothing new (the champion was trained on this manifest and on every labelled region): no-op,
   before Ray or any training starts.
2. A verdict already recorded for this run's key: said again (and an interrupted promotion
   finished), without training.
3. Otherwise the challenger is trained (resuming its checkpoints), champion and challenger are
   scored on every region's validation patches, and the challenger is promoted if it wins.
   The decision record is written before the pointer swap, so a crash between the two is
   finished by the rerun; a swap that finds the champion moved is recorded as kept.
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass

from swinls import storage
from swinls.bands import BandError, resolve_band_set
from swinls.config import ConfigError
from swinls.registry import code_version
from swinls.retraining.decision import MAX_REGION_DROP, MIN_GAIN, Verdict, judge
from swinls.retraining.evaluate import Scores, evaluate, evaluation_regions, regions_labelled_in
from swinls.retraining.recipe import Recipe, make_challenger, run_key
from swinls.retraining.registry import Champion, ModelRegistry, RegistryError
from swinls.shards import Manifest


class RetrainError(RuntimeError):
    pass


@dataclass(frozen=True)
class RetrainOptions:
    min_gain: float = MIN_GAIN
    max_region_drop: float = MAX_REGION_DROP
    local: bool = False  # train in this process instead of on Ray


@dataclass
class Outcome:
    decision: str  # promoted, kept or no-op
    line: str  # the last line the job prints
    record: dict | None = None
    record_uri: str | None = None
    repeated: bool = False  # the verdict of an earlier run with the same key


def labelled_regions(manifest: Manifest) -> list[str]:
    """The regions a challenger can train on: those with labelled training patches."""
    return regions_labelled_in(manifest, "train")


def _short(sha: str | None) -> str:
    return (sha or "none")[:12]


def _check(recipe: Recipe, manifest: Manifest, data_uri: str, regions: list[str]) -> None:
    """A recipe that cannot run on this data fails here, before anything is trained."""
    try:
        band_sets = recipe.band_sets(data_uri, regions)
    except (ConfigError, ValueError, FileNotFoundError) as exc:
        raise RetrainError(f"recipe: {exc}") from exc
    for band_set in band_sets:
        try:
            inputs = resolve_band_set(band_set).inputs
        except BandError as exc:
            raise RetrainError(f"recipe: {exc}") from exc
        missing = [b for b in inputs if b not in manifest.bands]
        if missing:
            raise RetrainError(f"recipe: band set {band_set} needs {', '.join(missing)}, which "
                               f"{Manifest.uri(data_uri)} does not hold (it has {', '.join(manifest.bands)})")


def _line(record: dict) -> str:
    after = record["champion"]["after"]
    return f"decision: {record['verdict']} {after or record['champion']['before'] or ''}".rstrip() + \
        f" ({record['reason']})"


def retrain(data_uri: str, registry_uri: str, recipe: Recipe, options: RetrainOptions = RetrainOptions(),
            log=print, before_pointer=None) -> Outcome:
    """`before_pointer`: called between the new champion's upload and the pointer swap (tests
    inject crashes and rival promotions there)."""
    data_uri, registry_uri = storage.absolute(data_uri), storage.absolute(registry_uri)
    registry = ModelRegistry(registry_uri)
    try:
        manifest = Manifest.load(data_uri)
    except FileNotFoundError as exc:
        raise RetrainError(str(exc)) from exc
    manifest_sha = manifest.content_hash()
    regions = labelled_regions(manifest)
    if not regions:
        raise RetrainError(f"{Manifest.uri(data_uri)}: no region has labelled training patches, so there is "
                           "nothing to train a challenger on")
    _check(recipe, manifest, data_uri, regions)
    try:
        champion = registry.champion()
    except RegistryError as exc:
        raise RetrainError(str(exc)) from exc
    log(f"data: {data_uri} (manifest {_short(manifest_sha)}), labelled regions: {', '.join(regions)}")
    if champion is None:
        log(f"registry: {registry.uri}, no champion yet")
    else:
        log(f"registry: {registry.uri}, champion {champion.version} trained on {', '.join(champion.regions) or '?'} "
            f"(manifest {_short(champion.manifest_sha256)})")
        if set(regions) <= set(champion.regions) and champion.manifest_sha256 == manifest_sha:
            return Outcome("no-op", f"decision: no-op (champion {champion.version} was trained on this manifest "
                                    f"and every labelled region in it)")

    key = run_key(manifest_sha, recipe.identity(data_uri, regions), code_version())
    earlier = registry.decision(key)
    if earlier is not None:
        return _repeat(registry, champion, *earlier, key, log)

    if not options.local:
        from swinls.data.ray_data import init_local_ray

        init_local_ray(training_workers=recipe.workers or 1, log_to_driver=False)
    log(f"run {key}: a challenger on {', '.join(regions)}")
    candidate = make_challenger(recipe, data_uri, regions, registry, key, local=options.local, log=log)
    eval_regions = evaluation_regions(manifest)
    log(f"evaluating on the validation patches of {', '.join(eval_regions)}")
    challenger_scores = _evaluate(candidate, data_uri, eval_regions, recipe.use_gpu and not options.local)
    champion_scores = _evaluate(champion.uri, data_uri, eval_regions, recipe.use_gpu and not options.local) \
        if champion else None
    verdict = judge(champion_scores, challenger_scores, min_gain=options.min_gain, max_region_drop=options.max_region_drop)
    before = champion.version if champion else None
    record = {"key": key, "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
              "data": data_uri, "manifest_sha256": manifest_sha, "regions": regions, "evaluation_regions": eval_regions,
              "code_version": code_version(), "recipe": recipe.describe(), "candidate": candidate,
              "champion": {"before": before, "after": None},
              "scores": {"champion": champion_scores.table() if champion_scores else None,
                         "challenger": challenger_scores.table()},
              "thresholds": {"min_gain": options.min_gain, "max_region_drop": options.max_region_drop},
              "verdict": verdict.word, "reason": verdict.reason}
    if not verdict.promote:
        uri = registry.record(key, record)
        return Outcome("kept", _line(record), record, uri)
    pointer = registry.stage(candidate, {"key": key, "previous": before, "manifest_sha256": manifest_sha})
    record["champion"]["after"] = pointer["version"]
    record["pointer"] = pointer
    uri = registry.record(key, record)  # before the swap: a rerun after a crash here finishes it
    if before_pointer is not None:
        before_pointer()
    return _swap(registry, record, uri, before)


def _evaluate(model_uri: str, data_uri: str, regions: list[str], use_gpu: bool) -> Scores:
    if not use_gpu:
        return evaluate(model_uri, data_uri, regions)
    import ray

    return ray.get(ray.remote(num_gpus=1)(evaluate).remote(model_uri, data_uri, regions, use_gpu=True))


def _swap(registry: ModelRegistry, record: dict, uri: str, expected: str | None) -> Outcome:
    try:
        registry.swap(record["pointer"], expected)
    except storage.PointerMoved as exc:
        record.update(verdict="kept", reason=f"the challenger won ({record['reason']}), but the champion changed "
                                             f"while this run evaluated it, so it was not promoted: {exc}")
        record["champion"]["after"] = None
        registry.record(record["key"], record, uri)
        return Outcome("kept", _line(record), record, uri)
    return Outcome("promoted", _line(record), record, uri)


def _repeat(registry: ModelRegistry, champion: Champion | None, record: dict, uri: str, key: str, log) -> Outcome:
    """The verdict of an earlier run with this key; a promotion cut off before its swap is finished."""
    current = champion.version if champion else None
    after = record["champion"]["after"]
    if record["verdict"] == "promoted" and current != after:
        if current == record["champion"]["before"]:
            log(f"run {key}: its promotion of {after} was interrupted before the pointer swap; finishing it")
            outcome = _swap(registry, record, uri, current)
            outcome.repeated = True
            return outcome
        log(f"run {key}: promoted {after} before; the champion is now {current} (a rollback or a later run)")
    else:
        log(f"run {key}: decided before ({uri}); not trained again")
    return Outcome(record["verdict"], _line(record), record, uri, repeated=True)


def rollback(registry_uri: str, version: str) -> str:
    """Point the champion at an earlier version; the line to print."""
    registry = ModelRegistry(registry_uri)
    current = _pointer_version(registry)  # not loaded: a broken champion is what a rollback is for
    try:
        registry.rollback(version, current)
    except RegistryError as exc:
        raise RetrainError(str(exc)) from exc
    stamp = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")
    registry.record(f"rollback-{version}", {"created": stamp, "verdict": "rolled-back", "reason": "--rollback",
                                            "champion": {"before": current, "after": version}})
    return f"rollback: champion is {version} (was {current})"


def _pointer_version(registry: ModelRegistry) -> str | None:
    pointer = storage.join(registry.champion_uri, storage.POINTER_NAME)
    if not storage.exists(pointer):
        return None
    try:
        return storage.read_json(pointer).get("version")
    except storage.StorageError:
        return None
