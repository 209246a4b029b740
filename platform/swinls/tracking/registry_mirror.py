"""The retraining registry mirrored in MLflow's model registry.

The platform's registry (its decision records and champion pointer) stays the truth and works
without MLflow. Each run of `jobs/retrain.py --mlflow` (and each `--rollback`) brings MLflow in
line with it: every decision that trained a candidate is an MLflow run of the experiment
`swinls-retrain` (the challenger's config as parameters, every epoch it trained and its scores
against the champion as metrics, its model card as the run's one artifact) and a
version of the registered model (`swinls-landslides` unless named), tagged with the candidate's
URI, regions, F1 and verdict; the alias `champion` is on the version the champion pointer names.
The mirror is a sync, so a failed one is retried whole by the next run, and it runs after the
decision is committed: it never blocks a promotion.
"""

from __future__ import annotations

import tempfile
import time
import warnings
from pathlib import Path

from swinls import storage
from swinls.retraining.records import DecisionLog
from swinls.retraining.registry import ModelRegistry
from swinls.tracking.mlflow_run import client as mlflow_client, shown

RETRAIN_EXPERIMENT = "swinls-retrain"
REGISTERED_MODEL = "swinls-landslides"
ALIAS = "champion"
KEY_TAG, VERSION_TAG = "swinls.key", "swinls.version"


def _metrics(record: dict) -> dict[str, float]:
    out = {}
    for model in ("challenger", "champion"):
        table = (record.get("scores") or {}).get(model) or {}
        for name, value in (table.get("overall") or {}).items():
            if name in ("f1", "precision", "recall", "iou") and isinstance(value, (int, float)):
                out[f"{model}_{name}"] = float(value)
        for region, counts in (table.get("regions") or {}).items():
            if isinstance(counts.get("f1"), (int, float)):
                out[f"{model}_f1.{region}"] = float(counts["f1"])
    return out


def _candidate_history(registry: ModelRegistry, key: str, trial: str) -> list[dict]:
    """The epochs the candidate trained: its run, or its search's best trial."""
    from swinls.checkpoints import RunStore

    for run_uri in (registry.path("runs", key), registry.path("searches", key, "trials", trial)):
        if storage.exists(storage.join(run_uri, "checkpoints")):
            return (RunStore(run_uri).latest() or {}).get("history", [])
    return []


def _register(client, experiment_id: str, name: str, record: dict, registry: ModelRegistry) -> None:
    """One decision's run and model version: the challenger's config and every epoch it trained,
    its scores against the champion, its card as the run's one artifact (not the weights)."""
    from mlflow.entities import Metric, Param

    from swinls.model_card import parse_card
    from swinls.tracking.mlflow_run import epoch_metrics, flat_params

    candidate, key = record["candidate"], record["key"]
    card_uri = storage.join(storage.latest_version(candidate)["uri"], "model_card.json")
    card = storage.read_bytes(card_uri)
    parsed = parse_card(card, card_uri)
    run = client.create_run(experiment_id, run_name=f"retrain {key}",
                            tags={KEY_TAG: key, "swinls.verdict": record.get("verdict", ""),
                                  "swinls.reason": str(record.get("reason", ""))[:5000], "swinls.candidate": candidate})
    run_id = run.info.run_id
    params = [Param(k, v) for k, v in flat_params(parsed.config).items()]
    for start in range(0, len(params), 100):
        client.log_batch(run_id, params=params[start:start + 100])
    stamp = int(time.time() * 1000)
    metrics = [Metric(k, v, stamp, int(entry["epoch"])) for entry in _candidate_history(registry, key, parsed.trial)
               if entry.get("epoch") is not None for k, v in epoch_metrics(entry).items()]
    scores = _metrics(record)
    metrics += [Metric(k, v, stamp, 0) for k, v in scores.items()]
    for start in range(0, len(metrics), 1000):
        client.log_batch(run_id, metrics=metrics[start:start + 1000])
    with tempfile.TemporaryDirectory() as tmp:
        (Path(tmp) / "model_card.json").write_bytes(card)
        client.log_artifact(run_id, str(Path(tmp) / "model_card.json"), "model")
    client.set_terminated(run_id)
    score = scores.get("challenger_f1")
    tags = {KEY_TAG: key, "swinls.uri": candidate, "swinls.verdict": record.get("verdict", ""),
            "swinls.regions": ",".join(record.get("regions") or [])}
    if score is not None:
        tags["swinls.f1"] = f"{score:.4f}"
    if record.get("verdict") == "promoted":
        tags[VERSION_TAG] = record["champion"]["after"]
    client.create_model_version(name, source=f"runs:/{run_id}/model", run_id=run_id, tags=tags)


def sync(registry_uri: str, tracking_uri: str, name: str = REGISTERED_MODEL) -> dict:
    """Bring MLflow in line with the registry; {"registered": n, "champion": MLflow version or None}."""
    from mlflow.exceptions import MlflowException

    registry = ModelRegistry(registry_uri)
    client = mlflow_client(tracking_uri)
    try:
        client.get_registered_model(name)
    except MlflowException:
        client.create_registered_model(name, tags={"swinls.registry": registry.uri})
    found = client.get_experiment_by_name(RETRAIN_EXPERIMENT)
    experiment_id = found.experiment_id if found else client.create_experiment(RETRAIN_EXPERIMENT)
    versions = client.search_model_versions(f"name='{name}'")
    known = {v.tags.get(KEY_TAG) for v in versions}
    registered = 0
    for record in DecisionLog(registry).finals():
        if record.get("candidate") and record.get("key") not in known:
            _register(client, experiment_id, name, record, registry)
            registered += 1
    champion = registry.champion()
    chosen = None
    if champion is not None:
        versions = client.search_model_versions(f"name='{name}'")
        matching = [v for v in versions if v.tags.get(VERSION_TAG) == champion.version]
        if matching:
            chosen = max(matching, key=lambda v: int(v.version)).version
            client.set_registered_model_alias(name, ALIAS, chosen)
    return {"registered": registered, "champion": chosen}


def mirror(registry_uri: str, tracking_uri: str, log=print, name: str = REGISTERED_MODEL) -> bool:
    """`sync`, with a failure said once and left for the next run; True when it is in line."""
    try:
        done = sync(registry_uri, tracking_uri, name)
    except Exception as exc:  # noqa: BLE001 - the registry decided; MLflow only mirrors it
        warnings.warn(f"MLflow mirror of {registry_uri} at {shown(tracking_uri)} failed, the next run retries it: "
                      f"{type(exc).__name__}: {str(exc)[:300]}", stacklevel=2)
        return False
    alias = f"alias {ALIAS} on version {done['champion']}" if done["champion"] else "no champion to mark"
    log(f"mlflow: {name} in line with the registry ({done['registered']} new version(s); {alias})")
    return True
