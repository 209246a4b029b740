"""What `--dry-run` checks and prints, for train, tune, ablate and retrain alike: the data (splits,
labelled patches and pixels per split and region, bands), the resolved recipe, pretrained
weights, storage, the resources asked for against those at hand, and an estimate of the work.
Every check that fails raises the job's one-line error; a dry run that returns could start.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

import pyarrow.parquet as pq

from swinls import storage
from swinls.data.selection import ShardData
from swinls.errors import SourceError
from swinls.shards.manifest import Manifest
from swinls.work_estimate import describe, estimate


@dataclass
class SplitCount:
    patches: int = 0
    labelled: int = 0
    labelled_pixels: float = 0  # approximate for a carved split (its shards' share)
    landslide_pixels: int = 0

    def add(self, other: "SplitCount") -> None:
        self.patches += other.patches
        self.labelled += other.labelled
        self.labelled_pixels += other.labelled_pixels
        self.landslide_pixels += other.landslide_pixels


@dataclass
class DataReport:
    lines: list[str] = field(default_factory=list)
    rows: dict[str, int] = field(default_factory=dict)  # patches per split the run reads


SPLIT_ORDER = ("train", "valid", "holdout", "unlabeled")
SHOWN_SPLITS = {"unlabeled": "test"}  # the split self-training pseudo-labels is the dataset's TestData


def _shard_count(shard) -> SplitCount:
    return SplitCount(shard.rows, shard.labeled_rows, shard.labeled_pixels, shard.positive_pixels)


def _carved_counts(data: ShardData, shard) -> dict[str, SplitCount]:
    """A carved region's training shard, split exactly by patch id into its train and valid sides."""
    fs, path = storage.filesystem(storage.join(data.config.uri, shard.path))
    with fs.open(path, "rb") as handle:
        table = pq.read_table(handle, columns=["id", "region", "labeled", "positive_pixels"])
    carve = data.row_filter("valid")
    in_valid = carve.mask(table.column("region").to_pylist(), table.column("id").to_pylist())
    labelled = table.column("labeled").to_pylist()
    positives = [p or 0 for p in table.column("positive_pixels").to_pylist()]
    per_labelled = shard.labeled_pixels / shard.labeled_rows if shard.labeled_rows else 0.0
    out = {"train": SplitCount(), "valid": SplitCount()}
    for valid, is_labelled, positive in zip(in_valid, labelled, positives):
        side = out["valid" if valid else "train"]
        side.add(SplitCount(1, int(is_labelled), per_labelled if is_labelled else 0, positive))
    return out


def split_counts(data: ShardData) -> dict[tuple[str, str], SplitCount]:
    """(region, split) → counts, for the splits the run reads."""
    counts: dict[tuple[str, str], SplitCount] = {}
    carved = set(data.validation.carved)
    sides: dict[str, dict[str, SplitCount]] = {}  # a carved shard is read once for both of its sides
    for split in SPLIT_ORDER:
        for shard in data.shards(split):
            key = (shard.region, split)
            if shard.region in carved and split in ("train", "valid"):
                if shard.path not in sides:
                    sides[shard.path] = _carved_counts(data, shard)
                part = sides[shard.path][split]
            else:
                part = _shard_count(shard)
            counts.setdefault(key, SplitCount()).add(part)
    return counts


def data_report(config, manifest: Manifest | None = None) -> DataReport:
    """The data a run reads, checked: bands and normalisation resolved, a labelled training and
    validation split (an error naming the manifest otherwise)."""
    data = ShardData(config.data, manifest)  # bands, statistics and regions checked here
    manifest, uri = data.manifest, Manifest.uri(config.data.uri)
    counts = split_counts(data)
    report = DataReport()
    h, w = manifest.patch_shape
    report.lines.append(f"data: {config.data.uri} (manifest {manifest.content_hash()[:12]}), {len(manifest.regions)} "
                        f"region(s), {h}×{w} patches of {len(manifest.bands)} bands ({' '.join(manifest.bands)})")
    report.lines.append(f"inputs: {data.band_set.name} = {', '.join(data.channels)}, "
                        f"normalised by {config.data.normalization} statistics")
    width = max([len(r) for r, _ in counts] + [6])
    report.lines.append(f"  {'region':<{width}}  {'split':<9} {'patches':>8} {'labelled':>9} {'labelled px':>13} {'landslide px':>13}")
    carved = set(data.validation.carved)
    for (region, split), c in sorted(counts.items(), key=lambda kv: (kv[0][0], SPLIT_ORDER.index(kv[0][1]))):
        approx = "≈" if region in carved and split in ("train", "valid") else ""
        name = SHOWN_SPLITS.get(split, split) + ("*" if approx else "")
        report.lines.append(f"  {region:<{width}}  {name:<9} {c.patches:>8,} {c.labelled:>9,} "
                            f"{approx + format(round(c.labelled_pixels), ','):>13} {c.landslide_pixels:>13,}")
    report.lines.append("  " + data.validation.describe() + ("; *: carved, pixels ≈ the shards' mean per patch" if carved else ""))
    for split in ("train", "valid"):
        report.rows[split] = sum(c.patches for (_, s), c in counts.items() if s == split)
        if not sum(c.labelled for (_, s), c in counts.items() if s == split):
            hint = ("raise data.valid_fraction, or ingest ValidData's masks" if split == "valid"
                    else "ingest labelled TrainData (TrainData/mask)")
            raise SourceError(uri, f"the {split} split of regions {', '.join(data.train_regions)} has no labelled patch; {hint}")
    for split in ("holdout", "unlabeled"):
        report.rows[split] = sum(c.patches for (_, s), c in counts.items() if s == split)
    if not config.selftrain.rounds:
        report.rows["unlabeled"] = 0
    return report


def weights_line(model) -> str:
    """Pretrained weights resolved (fetched into the node's cache if need be) and read."""
    from swinls.models.encoders import resolve_pretrained
    from swinls.models.weights import read_state_dict

    weights = resolve_pretrained(model)
    if weights is None:
        return "pretrained weights: none (trained from scratch)"
    read_state_dict(weights.path, weights.source)
    return f"pretrained weights: {weights.source} ({weights.bytes / 2**20:.0f} MiB, sha256 {weights.sha256[:12]}), readable"


def resources_line(run, *, trials_at_once: int = 1) -> str:
    """What the run asks for against this machine (a cluster at RAY_ADDRESS is checked on connecting)."""
    cpus = run.num_workers * run.cpus_per_worker * trials_at_once
    gpus = run.num_workers * run.gpus_per_worker * trials_at_once if run.use_gpu else 0
    asks = f"{run.num_workers} worker(s) × {run.cpus_per_worker:g} CPU" + (f" + {run.gpus_per_worker:g} GPU" if run.use_gpu else "")
    if os.environ.get("RAY_ADDRESS"):
        return f"resources: {asks} per run; the cluster at RAY_ADDRESS is checked when the job connects"
    import torch

    have_gpus = torch.cuda.device_count() if torch.cuda.is_available() else 0
    return (f"resources: {asks} per run ({cpus:g} CPU{', %g GPU' % gpus if gpus else ''} at once); this machine: "
            f"{os.cpu_count()} cores, {have_gpus} GPU(s)")


def _flat(data, prefix: str = "") -> dict:
    if not isinstance(data, dict):
        return {prefix: data}
    out = {}
    for key, value in data.items():
        out.update(_flat(value, f"{prefix}.{key}" if prefix else key))
    return out


# what a reader checks first, shown even where it is the default
HEADLINE_KEYS = ("model.name", "model.size", "model.encoder", "model.pretrained", "data.bands", "data.batch_size",
                 "data.augment.flip", "data.augment.rotate_shift", "stage1.epochs", "stage1.lr", "stage1.loss.ce",
                 "stage1.loss.wce", "stage1.loss.lovasz", "stage1.loss.image", "stage2.epochs", "stage2.freeze_encoder",
                 "selftrain.rounds", "selftrain.top_percent", "run.num_workers", "run.use_gpu")


def recipe_lines(config) -> list[str]:
    """The resolved config: its headline keys and every key that differs from the defaults (the
    run saves all of them)."""
    import json

    from swinls.config import to_dict
    from swinls.experiment_config import ExperimentConfig

    mine, defaults = _flat(to_dict(config)), _flat(to_dict(ExperimentConfig()))
    changed = {key: value for key, value in mine.items() if key in HEADLINE_KEYS or defaults.get(key, object()) != value}
    if changed.get("model.name") == "swinls":
        changed.pop("model.encoder", None)  # a Swin has no ResNet encoder
    else:
        changed.pop("model.size", None)
    return (["recipe (resolved; headline keys and those that differ from the defaults, docs/config.md for the rest):"]
            + [f"  {key} = {json.dumps(value)}" for key, value in changed.items()])


def storage_line(uri: str) -> str:
    """Storage reachable and writable: locally, the folder's permissions; on S3 a probe object
    written and removed."""
    import uuid

    from swinls.preflight import check_storage

    check_storage(uri)
    if not storage.is_s3(uri):
        return f"storage: {uri} (writable)"
    probe = storage.join(uri, f".swinls-dry-run-{uuid.uuid4().hex[:8]}")
    try:
        storage.write_bytes_atomic(probe, b"probe")
        storage.remove(probe)
    except OSError as exc:
        raise SourceError(uri, f"cannot be written ({exc})") from None
    return f"storage: {uri} (writable)"


def work_line(config, rows: dict[str, int], *, trials: int = 1, parallel: int = 1) -> str:
    import torch

    return describe(estimate(config, rows, trials=trials, parallel=parallel, threads=torch.get_num_threads()))


def plan(config, *, headline: str, storage_uri: str, trials: int = 1, parallel: int = 1, manifest=None,
         show_recipe: bool = True) -> list[str]:
    """Every line a dry run prints for a run of `config` (or `trials` runs like it)."""
    lines = [headline]
    if config.data.uri:
        report = data_report(config, manifest)
        lines += report.lines
    else:
        report = None
        lines.append("data: the built-in synthetic dataset (made under --cache on first use; pass --data to count it)")
    if show_recipe:
        lines += recipe_lines(config)
    lines.append(weights_line(config.model))
    lines.append(storage_line(storage_uri))
    lines.append(resources_line(config.run, trials_at_once=parallel))
    if report is not None:
        lines.append(work_line(config, report.rows, trials=trials, parallel=parallel))
    lines.append("dry run: every check passed; nothing started")
    return lines
