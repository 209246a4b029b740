"""`retrain(data, registry, recipe)`: one scheduled run. What `jobs/retrain.py` calls.

1. Nothing new (the champion was trained on this manifest and on every labelled region): no-op,
   before Ray or any training starts (earlier runs' intents are settled all the same).
2. Otherwise the run takes its key's lock (one run per key at a time; a second one stops with a
   clear error) and settles what earlier runs left intended (see `records`).
3. A verdict already recorded for this key: said again, without training. Its own intended
   promotion whose pointer has not moved since is finished; one the pointer moved past (a rival's
   promotion, an operator's rollback) is recorded as not promoted. A completed promotion that an
   operator rolled back since is never redone: with the same data, recipe and code the champion
   stays where the operator put it, and the run says so.
4. Otherwise the challenger is trained (resuming its checkpoints), champion and challenger are
   scored on every region's validation patches, and a winner is promoted: the intent recorded,
   the pointer swapped by compare-and-swap, the record marked done; a swap that finds the
   champion moved is recorded as kept.
"""

from __future__ import annotations

from dataclasses import dataclass

from swinls import cas, storage
from swinls.bands import BandError, resolve_band_set
from swinls.config import ConfigError
from swinls.data.validation import plan_validation
from swinls.errors import SwinLSError
from swinls.locks import Lock
from swinls.published import code_version
from swinls.retraining.decision import MAX_REGION_DROP, MIN_GAIN, judge
from swinls.retraining.evaluate import Scores, evaluate, evaluation_regions, regions_labelled_in
from swinls.retraining.recipe import Recipe, make_challenger, run_key
from swinls.retraining.records import DecisionLog, intent
from swinls.retraining.registry import Champion, ModelRegistry, RegistryError, now
from swinls.shards import Manifest
from swinls.shards.manifest import ManifestError


class RetrainError(SwinLSError, RuntimeError):
    pass


@dataclass(frozen=True)
class RetrainOptions:
    min_gain: float = MIN_GAIN
    max_region_drop: float = MAX_REGION_DROP
    local: bool = False  # train in this process instead of on Ray
    num_cpus: int | None = None  # logical CPUs of a local Ray (default: cores + 2)


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
    """`before_pointer`: called between the recorded intent and the pointer swap (tests inject
    crashes and rival promotions there)."""
    data_uri, registry_uri = storage.absolute(storage.check_uri(data_uri)), storage.absolute(storage.check_uri(registry_uri))
    registry = ModelRegistry(registry_uri)
    try:
        manifest = Manifest.load(data_uri)
    except (FileNotFoundError, ManifestError) as exc:
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
            DecisionLog(registry).settle(log)  # what earlier runs left intended, even on a quiet night
            return Outcome("no-op", f"decision: no-op (champion {champion.version} was trained on this manifest "
                                    f"and every labelled region in it)")

    # the code that runs, not the commit: a node's copy has no .git, and a commit of docs alone
    # changes no model
    code = code_version()
    key = run_key(manifest_sha, recipe.identity(data_uri, regions), {"package": code["package"], "source": code["source"]})
    try:
        lock = registry.run_lock(key)
    except RegistryError as exc:
        raise RetrainError(str(exc)) from exc
    with lock:
        records = DecisionLog(registry)
        records.settle(log)
        earlier = records.find(key)
        if earlier is not None:
            return _repeat(registry, records, *earlier, key, log)
        run = _Run(registry, records, lock, key, data_uri, manifest, manifest_sha, regions, champion)
        return _challenge(run, recipe, options, log, before_pointer)


@dataclass(frozen=True)
class _Run:
    """What a run that trains a challenger holds: where it records, its lock, and what it judges on."""

    registry: ModelRegistry
    records: DecisionLog
    lock: Lock
    key: str
    data_uri: str
    manifest: Manifest
    manifest_sha: str
    regions: list[str]
    champion: Champion | None


def _challenge(run: _Run, recipe: Recipe, options: RetrainOptions, log, before_pointer) -> Outcome:
    registry, records, lock, champion, key, data_uri = run.registry, run.records, run.lock, run.champion, run.key, run.data_uri
    manifest, manifest_sha, regions = run.manifest, run.manifest_sha, run.regions
    if not options.local:
        from swinls.ray_start import check_placeable, init_local_ray

        settings = recipe.run_settings(data_uri, regions)
        init_local_ray(training_workers=settings.num_workers, num_cpus=options.num_cpus, log_to_driver=False)
        check_placeable(settings, "the challenger")
    log(f"run {key}: a challenger on {', '.join(regions)}")
    candidate = make_challenger(recipe, data_uri, regions, registry, key, local=options.local, log=log)
    eval_regions = evaluation_regions(manifest)
    fraction, verdict_share = recipe.valid_fraction(data_uri, regions), recipe.verdict_fraction()
    plan = plan_validation(manifest, data_uri, eval_regions, fraction, verdict_share)
    log(f"evaluating on {plan.describe()}" + (" (the verdict is judged on that share alone)" if verdict_share else ""))
    use_gpu = recipe.use_gpu and not options.local
    challenger_scores = _evaluate(candidate, data_uri, eval_regions, use_gpu, fraction, verdict_share)
    champion_scores = _evaluate(champion.uri, data_uri, eval_regions, use_gpu, fraction, verdict_share) if champion else None
    verdict = judge(champion_scores, challenger_scores, min_gain=options.min_gain, max_region_drop=options.max_region_drop)
    before = champion.version if champion else None
    record = {"key": key, "created": now(), "data": data_uri, "manifest_sha256": manifest_sha, "regions": regions,
              "evaluation_regions": eval_regions, "verdict_fraction": verdict_share, "code_version": code_version(),
              "recipe": recipe.describe(),
              "candidate": candidate, "champion": {"before": before, "after": before},
              "scores": {"champion": champion_scores.table() if champion_scores else None,
                         "challenger": challenger_scores.table()},
              "thresholds": {"min_gain": options.min_gain, "max_region_drop": options.max_region_drop},
              "verdict": verdict.word, "reason": verdict.reason}
    lock.check()  # a run that lost its lock (a lease taken over while it stalled) commits nothing
    if not verdict.promote:
        uri = records.write(key, record)
        return Outcome("kept", _line(record), record, uri)
    pointer = registry.stage(candidate, {"key": key, "previous": before, "manifest_sha256": manifest_sha},
                             replaces=champion.pointer_sha256 if champion else None)
    record = intent(dict(record, verdict="promoting", champion={"before": before, "after": pointer["version"]}), pointer)
    uri = records.write(key, record, pending=True)  # before the swap: the rerun finishes or settles it
    if before_pointer is not None:
        before_pointer()
    lock.check()
    return _commit(registry, records, record, uri)


def _evaluate(model_uri: str, data_uri: str, regions: list[str], use_gpu: bool, fraction: float,
              verdict_share: float = 0.0) -> Scores:
    if not use_gpu:
        return evaluate(model_uri, data_uri, regions, valid_fraction=fraction, verdict_fraction=verdict_share)
    import ray

    return ray.get(ray.remote(num_gpus=1)(evaluate).remote(model_uri, data_uri, regions, use_gpu=True,
                                                            valid_fraction=fraction, verdict_fraction=verdict_share))


def _commit(registry: ModelRegistry, records: DecisionLog, record: dict, uri: str) -> Outcome:
    try:
        registry.swap(record["pointer"])
    except cas.Conflict as exc:
        record, uri = records.finish(uri, record, done=False, reason=(
            f"the challenger won ({record['reason']}), but the champion changed while this run evaluated it, "
            f"so it was not promoted: {exc}"))
        return Outcome("kept", _line(record), record, uri)
    record, uri = records.finish(uri, record, done=True)
    return Outcome("promoted", _line(record), record, uri)


def _repeat(registry: ModelRegistry, records: DecisionLog, record: dict, uri: str, key: str, log) -> Outcome:
    """The verdict of an earlier run with this key, and what became of it."""
    after = record["champion"]["after"]
    if record["verdict"] == "promoting":  # left by settle: the pointer has not moved since the intent
        log(f"run {key}: its promotion of {after} was recorded but the pointer swap did not happen; finishing it")
        outcome = _commit(registry, records, record, uri)
        outcome.repeated = True
        return outcome
    if record["verdict"] == "promoted":
        head = registry.head()
        current, how = _describe(registry, head)
        if current != after:
            return Outcome("no-op", f"decision: no-op (run {key} promoted {after} before; the champion is now {current}, "
                                    f"{how}, and a rerun with the same data, recipe and code leaves it there)",
                           record, uri, repeated=True)
    log(f"run {key}: decided before ({uri}); not trained again")
    return Outcome(record["verdict"], _line(record), record, uri, repeated=True)


def _describe(registry: ModelRegistry, head: cas.Snapshot) -> tuple[str | None, str]:
    """(the champion's version, how it got there) from the pointer."""
    try:
        pointer = registry.pointer(head)
    except storage.StorageError:
        return None, "its pointer unreadable"
    if pointer is None:
        return None, "no champion"
    metadata, when = pointer.get("metadata") or {}, pointer.get("written")
    at = f" at {when}" if when else ""
    if "rollback_from" in metadata:
        return pointer["version"], f"rolled back by an operator{at}"
    if metadata.get("key"):
        return pointer["version"], f"promoted by run {metadata['key']}{at}"
    return pointer["version"], f"set{at}"


def rollback(registry_uri: str, version: str, log=print) -> str:
    """Point the champion at an earlier version, as a decision of its own; the line to print.
    Works when the pointer is unreadable: that is what a rollback is for."""
    registry = ModelRegistry(storage.absolute(storage.check_uri(registry_uri)))
    records = DecisionLog(registry)
    records.settle(log)
    head = registry.head()
    try:
        current = (registry.pointer(head) or {}).get("version")
    except storage.StorageError as exc:
        current = None
        log(f"the champion pointer is unreadable ({exc}); rolling back replaces it")
    if current is not None and current == version:
        raise RetrainError(f"{registry.champion_uri}: {version} is already the champion")
    try:
        pointer = registry.rollback_pointer(version, head, current)
    except RegistryError as exc:
        raise RetrainError(str(exc)) from exc
    key = f"rollback-{pointer['write'][:16]}"
    record = intent({"key": key, "created": now(), "verdict": "rolling-back", "reason": "--rollback by an operator",
                     "champion": {"before": current, "after": version}}, pointer)
    uri = records.write(key, record, pending=True)
    try:
        registry.swap(pointer)
    except cas.Conflict as exc:
        records.finish(uri, record, done=False, reason=f"the champion changed while it was rolled back: {exc}")
        raise RetrainError(f"rollback: the champion changed while it was rolled back ({exc}); nothing was rolled "
                           "back, run it again") from exc
    records.finish(uri, record, done=True)
    return f"rollback: champion is {version} (was {current or 'an unreadable or missing pointer'})"
