"""Champion and challenger scored alike: a published model over the validation patches of every
region of a shard dataset, each model normalising the raw bands with its own card's statistics.
A region's validation patches are its labelled ValidData, or where that has no labelled pixel the
fixed carve of its TrainData that training leaves out (`data/validation.py`).

Counts are pixel counts (landslide class, argmax; ignored pixels left out) per region and summed
over all of them, so the overall F1 is the official evaluation's, not a mean of per-region F1.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import numpy as np
import pyarrow.parquet as pq
import torch

from swinls import storage
from swinls.data.selection import DataConfig
from swinls.data.transform import BatchProjector
from swinls.data.validation import plan_validation
from swinls.metrics import Confusion, json_safe
from swinls.shards import Manifest

EVALUATION_SPLIT = "valid"
VERDICT_SPLIT = "verdict"  # validation's set-aside share (data.verdict_fraction)


@dataclass
class Scores:
    model: str  # the version's URI
    regions: dict[str, Confusion] = field(default_factory=dict)

    @property
    def overall(self) -> Confusion:
        return sum(self.regions.values(), Confusion())

    def table(self) -> dict:
        """What a decision record holds: counts and P/R/F1/IoU, overall and per region."""
        def row(c: Confusion) -> dict:
            return {**asdict(c), **json_safe(c.scores())}

        return {"model": self.model, "overall": row(self.overall),
                "regions": {name: row(c) for name, c in sorted(self.regions.items())}}


def regions_labelled_in(manifest: Manifest, split: str) -> list[str]:
    return [name for name, entry in sorted(manifest.regions.items())
            if any(s.split == split and s.labeled_rows for s in entry.shards)]


def evaluation_regions(manifest: Manifest) -> list[str]:
    """Every region with labelled validation patches, its own or carved from labelled training ones."""
    return sorted(set(regions_labelled_in(manifest, EVALUATION_SPLIT)) | set(regions_labelled_in(manifest, "train")))


def evaluate(model_uri: str, data_uri: str, regions: list[str], *, batch_size: int = 32, use_gpu: bool = False,
             valid_fraction: float = DataConfig.valid_fraction, verdict_fraction: float = 0.0) -> Scores:
    """Pixel counts per region on the validation patches no candidate trained on; with a
    `verdict_fraction`, on the share of them set aside for the verdict only."""
    from swinls.prediction.model import Decision, load_for_prediction

    loaded = load_for_prediction(model_uri, use_gpu=use_gpu)
    manifest = Manifest.load(data_uri)
    norm = loaded.normalizer
    missing = [band for band in norm.inputs if band not in manifest.bands]
    if missing:
        raise ValueError(f"{loaded.uri}: the model reads bands {', '.join(missing)} that {data_uri} does not hold")
    plan = plan_validation(manifest, data_uri, regions, valid_fraction, verdict_fraction)
    split = VERDICT_SPLIT if verdict_fraction else EVALUATION_SPLIT
    projector = BatchProjector(tuple(norm.inputs), tuple(manifest.patch_shape), manifest.image_dtype,
                               norm.mean, norm.std, norm.pca, plan.row_filter(split))
    decide = Decision()
    scores = Scores(loaded.uri)
    shards = plan.shards(manifest, split)
    for region in regions:
        counts = Confusion()
        for shard in (s for s in shards if s.region == region):
            fs, path = storage.filesystem(storage.join(data_uri, shard.path))
            with fs.open(path, "rb") as handle:
                parquet = pq.ParquetFile(handle)
                for group in range(parquet.num_row_groups):
                    table = projector.select(parquet.read_row_group(group, columns=projector.columns()))
                    if not table.num_rows:
                        continue
                    rows = projector(table)
                    for start in range(0, len(rows["key"]), batch_size):
                        image = rows["image"][start:start + batch_size].astype(np.float32)
                        predicted = decide(loaded.predictor.margins(image))
                        counts.add(torch.from_numpy(predicted), torch.from_numpy(rows["mask"][start:start + batch_size]))
        scores.regions[region] = counts
    return scores
