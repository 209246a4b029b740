"""Self-training: pseudo-labels from the top-A% most confident pixels of each predicted class.

The model predicts every unlabeled pixel; within each predicted class the pixels are ranked by
confidence and the top A% keep their predicted label, the rest become 255 = ignore. With A = 100%
every pixel keeps its label. The ranking is global, over all unlabeled pixels of all workers, and
ties are broken by order (worker, row, pixel), so exactly ceil(A% · n_c) pixels of class c are
kept. Training ranks by the logit margin, which orders like the softmax confidence without its
rounding to 1, and finds the threshold by histograms all-reduced across ranks
(`swinls.top_percent`); `keep_top_percent` below is the same rule as one global sort, the
reference it is tested against.

Pseudo-labels are written beside the run as `<run>/pseudo/round-R/rank-K.parquet` (row key,
mask) with a `manifest.json` written last; `PseudoLabeler` puts them on the unlabeled rows.
"""

from __future__ import annotations

import json
import math
import tempfile
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from swinls import storage

IGNORE = 255
MANIFEST = "manifest.json"


def keep_top_percent(predictions: list[np.ndarray], confidences: list[np.ndarray], top_percent: float,
                     num_classes: int = 2) -> list[np.ndarray]:
    """For arrays (one per image, any shape) of predicted classes and their confidences, the
    pseudo-label arrays: the predicted class where kept, IGNORE elsewhere."""
    sizes = [p.size for p in predictions]
    pred = np.concatenate([p.ravel() for p in predictions]) if predictions else np.zeros(0, np.uint8)
    conf = np.concatenate([c.ravel() for c in confidences]).astype(np.float64) if confidences else np.zeros(0)
    keep = np.zeros(pred.shape, dtype=bool)
    for c in range(num_classes):
        where = np.flatnonzero(pred == c)
        if where.size == 0:
            continue
        k = math.ceil(where.size * top_percent / 100.0 - 1e-9)
        order = np.argsort(-conf[where], kind="stable")  # highest first; ties keep their order
        keep[where[order[:k]]] = True
    labels = np.where(keep, pred, IGNORE).astype(np.uint8)
    out, start = [], 0
    for p, n in zip(predictions, sizes):
        out.append(labels[start:start + n].reshape(p.shape))
        start += n
    return out


def round_uri(run_uri: str, round_no: int) -> str:
    return storage.join(run_uri, "pseudo", f"round-{round_no}")


def write_rank(run_uri: str, round_no: int, rank: int, keys: np.ndarray, masks: list[np.ndarray]) -> str:
    table = pa.table({"key": pa.array(np.asarray(keys, np.int64)),
                      "mask": pa.array([np.ascontiguousarray(m, np.uint8).tobytes() for m in masks], pa.binary())})
    uri = storage.join(round_uri(run_uri, round_no), f"rank-{rank}.parquet")
    with tempfile.TemporaryDirectory(prefix="swinls-pseudo-") as tmp:
        path = Path(tmp) / "part.parquet"
        pq.write_table(table, path, compression="zstd")
        storage.put_file_atomic(path, uri)
    return uri


def write_manifest(run_uri: str, round_no: int, files: list[str], stats: dict) -> None:
    storage.write_json_atomic(storage.join(round_uri(run_uri, round_no), MANIFEST), {"files": files, **stats})


def is_done(run_uri: str, round_no: int) -> bool:
    return storage.exists(storage.join(round_uri(run_uri, round_no), MANIFEST))


def load_masks(run_uri: str, round_no: int) -> dict[int, bytes]:
    manifest = storage.read_json(storage.join(round_uri(run_uri, round_no), MANIFEST))
    masks: dict[int, bytes] = {}
    for name in manifest["files"]:
        fs, path = storage.filesystem(storage.join(round_uri(run_uri, round_no), name))
        with fs.open(path, "rb") as handle:
            table = pq.read_table(handle)
        masks.update(zip(table.column("key").to_pylist(), table.column("mask").to_pylist()))
    return masks


class PseudoLabeler:
    """A batch UDF (Ray Data or plain): replace the unlabeled rows' masks by their pseudo-labels."""

    def __init__(self, run_uri: str, round_no: int) -> None:
        self.run_uri, self.round_no = run_uri, round_no
        self._masks: dict[int, bytes] | None = None

    def __call__(self, rows: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        if self._masks is None:
            self._masks = load_masks(self.run_uri, self.round_no)
        shape = rows["mask"].shape[1:]
        missing = [int(k) for k in rows["key"] if int(k) not in self._masks]
        if missing:
            raise KeyError(f"{round_uri(self.run_uri, self.round_no)} has no pseudo-label for rows {missing[:5]}")
        masks = np.stack([np.frombuffer(self._masks[int(k)], np.uint8).reshape(shape) for k in rows["key"]])
        return dict(rows, mask=masks)


def save_png(path: str | Path, pseudo: np.ndarray) -> None:
    """The paper's Figure 3 colours: black background, red landslide, white ignored."""
    import matplotlib.image

    rgb = np.zeros(pseudo.shape + (3,), np.uint8)
    rgb[pseudo == 1] = (220, 30, 30)
    rgb[pseudo == IGNORE] = (255, 255, 255)
    matplotlib.image.imsave(str(path), rgb)


def kept_fractions(masks: list[np.ndarray]) -> dict[str, float]:
    total = sum(m.size for m in masks) or 1
    return {"kept": float(sum((m != IGNORE).sum() for m in masks) / total),
            "landslide": float(sum((m == 1).sum() for m in masks) / total)}


def describe(run_uri: str, round_no: int) -> dict:
    return json.loads(storage.read_bytes(storage.join(round_uri(run_uri, round_no), MANIFEST)))
