"""Pixel confusion counts of the landslide class, and P/R/F1/IoU from their global sums.

Counts are summed over every pixel labelled 0 or 1 (255 is ignored) across batches and across
DDP workers before any ratio is taken, as the benchmark computes them: an F1 averaged over
batches or workers would weigh small batches wrongly.

A split with no labelled pixel has no score: every ratio is *undefined* (NaN; `defined` tells,
and JSON records hold null), and nothing ranks, promotes or stops on it. With labelled pixels, an
empty denominator gives 0.0 as in the official evaluation (P = TP / (TP + FP + ε), and so on):
F1 with nothing to find and nothing found is 0, not 1.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

IGNORE = 255
UNDEFINED = float("nan")


def defined(value) -> bool:
    """Whether a score exists: not None and not NaN (a split with no labelled pixel has none)."""
    return value is not None and not (isinstance(value, float) and math.isnan(value))


def undefined_everywhere(metric: str, values: list, what: str = "trial") -> str | None:
    """The reason nothing can be ranked when `values` (one per finished trial) hold no defined
    score; None when at least one does, or when nothing finished."""
    if not values or any(defined(v) for v in values):
        return None
    return (f"{metric} is undefined for all {len(values)} finished {what}{'s' if len(values) > 1 else ''}: their "
            "validation split has no labelled pixel, so none can be ranked; add its masks (jobs/ingest.py --labels) "
            "or let the run carve validation from training (data.valid_fraction)")


def json_safe(scores: dict) -> dict:
    """Scores for a JSON record: an undefined one is null (NaN is not JSON)."""
    return {k: (v if not isinstance(v, float) or defined(v) else None) for k, v in scores.items()}


@dataclass
class Confusion:
    tp: int = 0
    fp: int = 0
    fn: int = 0
    tn: int = 0

    def add(self, prediction: torch.Tensor, mask: torch.Tensor) -> "Confusion":
        """Accumulate a batch: prediction and mask N×H×W, prediction in {0, 1}."""
        valid = mask != IGNORE
        pred = prediction.bool() & valid
        truth = (mask == 1) & valid
        self.tp += int((pred & truth).sum())
        self.fp += int((pred & ~truth).sum())
        self.fn += int((~pred & truth & valid).sum())
        self.tn += int((~pred & ~truth & valid).sum())
        return self

    def __add__(self, other: "Confusion") -> "Confusion":
        return Confusion(self.tp + other.tp, self.fp + other.fp, self.fn + other.fn, self.tn + other.tn)

    def to_tensor(self, device: torch.device | str = "cpu") -> torch.Tensor:
        return torch.tensor([self.tp, self.fp, self.fn, self.tn], dtype=torch.int64, device=device)

    @classmethod
    def from_tensor(cls, counts: torch.Tensor) -> "Confusion":
        tp, fp, fn, tn = (int(v) for v in counts.tolist())
        return cls(tp, fp, fn, tn)

    def all_reduce(self) -> "Confusion":
        """Sum over the workers of the default process group (a no-op without one)."""
        import torch.distributed as dist

        if not (dist.is_available() and dist.is_initialized()):
            return self
        device = "cuda" if dist.get_backend() == "nccl" else "cpu"
        counts = self.to_tensor(device)
        dist.all_reduce(counts)
        return Confusion.from_tensor(counts.cpu())

    def _ratio(self, numerator: int, denominator: int) -> float:
        if self.pixels == 0:
            return UNDEFINED
        return numerator / denominator if denominator else 0.0

    @property
    def precision(self) -> float:
        return self._ratio(self.tp, self.tp + self.fp)

    @property
    def recall(self) -> float:
        return self._ratio(self.tp, self.tp + self.fn)

    @property
    def f1(self) -> float:
        return self._ratio(2 * self.tp, 2 * self.tp + self.fp + self.fn)

    @property
    def iou(self) -> float:
        return self._ratio(self.tp, self.tp + self.fp + self.fn)

    @property
    def pixels(self) -> int:
        return self.tp + self.fp + self.fn + self.tn

    def scores(self) -> dict[str, float]:
        return {"precision": self.precision, "recall": self.recall, "f1": self.f1, "iou": self.iou}


class ScoreHistogram:
    """Landslide pixels and background pixels counted per bin of P(landslide), for metrics that
    do not depend on one threshold: average precision and the F1 at the best threshold.

    Like Confusion, only counts cross workers; the curves are computed from their global sums.
    A bin is one threshold (1000 bins: thresholds 0.001 apart), so ties within a bin are one
    step of the curve. Unlike argmax F1, AP moves as soon as landslide pixels are ranked above
    background, which makes it the signal an early-stopping rule can use in the first epochs.
    """

    def __init__(self, bins: int = 1000) -> None:
        self.bins = bins
        self.positive = torch.zeros(bins, dtype=torch.float64)
        self.negative = torch.zeros(bins, dtype=torch.float64)

    def add(self, probability: torch.Tensor, mask: torch.Tensor) -> "ScoreHistogram":
        """Accumulate a batch: probability of the landslide class and mask, both N×H×W."""
        valid = mask != IGNORE
        index = (probability.float() * self.bins).long().clamp_(0, self.bins - 1)
        truth = mask == 1
        # counted where the pixels are; only the bins cross to the CPU
        self.positive += torch.bincount(index[valid & truth], minlength=self.bins).cpu().double()
        self.negative += torch.bincount(index[valid & ~truth], minlength=self.bins).cpu().double()
        return self

    def to_list(self) -> list[float]:
        return self.positive.tolist() + self.negative.tolist()

    @classmethod
    def from_list(cls, values: list[float]) -> "ScoreHistogram":
        bins = len(values) // 2
        histogram = cls(bins)
        histogram.positive = torch.tensor(values[:bins], dtype=torch.float64)
        histogram.negative = torch.tensor(values[bins:], dtype=torch.float64)
        return histogram

    def _curve(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """True and false positives when predicting landslide above each threshold, from the
        highest threshold down; and the number of landslide pixels."""
        tp = self.positive.flip(0).cumsum(0)
        fp = self.negative.flip(0).cumsum(0)
        return tp, fp, self.positive.sum()

    def average_precision(self) -> float:
        """Σ (R_k − R_{k−1}) · P_k over thresholds, as scikit-learn's; undefined (NaN) with no
        landslide pixel, labelled or not: there is no curve to rank by."""
        tp, fp, positives = self._curve()
        if positives == 0:
            return float("nan")
        predicted = tp + fp
        precision = torch.where(predicted > 0, tp / predicted.clamp(min=1), torch.ones_like(tp))
        recall = tp / positives
        steps = torch.diff(recall, prepend=torch.zeros(1, dtype=recall.dtype))
        return float((steps * precision).sum())

    def best_f1(self) -> float:
        return self.best_operating_point()[0]

    def best_threshold(self) -> float:
        """The probability threshold (predict landslide where P >= it) at which best_f1 is reached."""
        return self.best_operating_point()[1]

    def best_operating_point(self) -> tuple[float, float]:
        """(best F1, its threshold); nan for both with no landslide pixel. The k-th point of the
        curve predicts landslide for bins >= bins-1-k, i.e. for P >= (bins-1-k)/bins."""
        tp, fp, positives = self._curve()
        if positives == 0:
            return float("nan"), float("nan")
        f1 = 2 * tp / (tp + fp + positives)
        k = int(torch.argmax(f1))
        return float(f1[k]), (self.bins - 1 - k) / self.bins


class DeviceCounts:
    """Confusion counts at argmax and the ScoreHistogram's bins, accumulated where the logits
    are, with no data-dependent shapes (a GPU is never waited for): read once with `read`,
    after summing over workers.

    Layout of `counts`: tp, fp, fn, tn, then `bins` landslide-pixel bins, then `bins` background
    bins, as ScoreHistogram.to_list.
    """

    def __init__(self, device: torch.device | str = "cpu", bins: int = 1000) -> None:
        self.bins = bins
        self.counts = torch.zeros(4 + 2 * bins, dtype=torch.int64, device=device)

    def add(self, logits: torch.Tensor, mask: torch.Tensor) -> "DeviceCounts":
        """Accumulate a batch: N×2×H×W logits and N×H×W masks."""
        valid = mask != IGNORE
        truth = mask == 1
        predicted = logits.argmax(1) == 1
        cells = torch.stack([predicted & truth, predicted & ~truth, ~predicted & truth, ~predicted & ~truth]) & valid
        self.counts[:4] += cells.flatten(1).sum(1)
        probability = torch.softmax(logits.float(), dim=1)[:, 1]
        index = (probability * self.bins).long().clamp_(0, self.bins - 1) + torch.where(truth, 0, self.bins)
        self.counts.index_add_(0, 4 + index.flatten(), valid.flatten().long())
        return self

    @staticmethod
    def read(counts: torch.Tensor) -> tuple[Confusion, "ScoreHistogram"]:
        values = counts.cpu().tolist()
        return Confusion(*(int(v) for v in values[:4])), ScoreHistogram.from_list([float(v) for v in values[4:]])
