"""The top-A% most confident pixels of each predicted class, across every rank's pixels, without
gathering them: a two-level radix select over histograms that are all-reduced.

Pixels are ranked by their logit margin (top logit − runner-up), whose float32 bit pattern is a
monotonic integer for margins ≥ 0. For two classes the softmax confidence is a monotonic function
of it, so the ranking is the confidence ranking — minus the ties that softmax makes once it
rounds to 1 (float32 above a margin of about 17, float16 above about 8.3), which decided the
old ranking by pixel order among the most confident pixels.

Per class c with n_c pixels, k_c = ceil(A% · n_c) are kept:
  1. a histogram of the high 15 bits of every margin, summed over ranks, finds the bin holding
     the k_c-th largest; 2. a histogram of the low 16 bits within that bin finds its exact value t;
  3. every pixel above t is kept, and of the pixels equal to t exactly as many as are still
     needed, taken in (rank, row, pixel) order — each rank learns the tie counts of the ranks
     before it from one more all-reduce.
The result equals a global stable sort of every margin (`selftrain.keep_top_percent` on the
gathered margins): exact, ties included. Memory per rank: 4 bytes per pixel of its own rows, and
two histograms of 2 × 32 k and 2 × 64 k counts that cross the network.
"""

from __future__ import annotations

import math
from typing import Callable

import torch

from swinls.errors import SwinLSError

IGNORE = 255
HIGH_BITS, LOW_BITS = 15, 16  # non-negative float32 bit patterns are below 2**31
CHUNK = 1 << 24  # pixels per histogram pass, bounding the temporaries

AllSum = Callable[[torch.Tensor], torch.Tensor]  # the sum over ranks, returned on the CPU


def margin_bits(logits: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(predicted class as uint8, margin as its int32 bit pattern) for N×C×H×W logits."""
    top = logits.float().topk(2, dim=1)
    # + 0.0 folds -0.0 (whose sign bit would index below the histogram) to +0.0; NaN stays NaN
    margin = (top.values[:, 0] - top.values[:, 1]).clamp(min=0) + 0.0
    return top.indices[:, 0].to(torch.uint8), margin.contiguous().view(torch.int32)


NON_FINITE_BITS = 0x7F800000  # +inf; NaN patterns lie above it (or, with the sign bit, below 0)


class NonFiniteLogits(SwinLSError, ValueError):
    """Self-training met logits that are NaN or infinite: the model diverged."""


def check_finite(bits: torch.Tensor, all_sum: AllSum) -> None:
    """Every rank joins the count, so all raise together rather than leave the others waiting."""
    bad = ((bits < 0) | (bits >= NON_FINITE_BITS)).sum().reshape(1).to(torch.int64)
    total = int(all_sum(bad)[0])
    if total:
        raise NonFiniteLogits(f"self-training: {total} pixels have a non-finite logit margin (NaN or infinite logits): "
                              "the model diverged, and ranking them would keep them as the most confident; "
                              "lower the learning rate or check the inputs' normalisation")


def _histogram(predicted: torch.Tensor, bits: torch.Tensor, num_classes: int, bins: int, value, select) -> torch.Tensor:
    counts = torch.zeros(num_classes * bins, dtype=torch.int64, device=bits.device)
    flat_pred, flat_bits = predicted.reshape(-1), bits.reshape(-1)
    for start in range(0, flat_bits.numel(), CHUNK):
        p, b = flat_pred[start:start + CHUNK].long(), flat_bits[start:start + CHUNK].long()
        counts.index_add_(0, p * bins + value(b), select(p, b).long())
    return counts.view(num_classes, bins)


def _from_top(histogram: torch.Tensor, needed: int) -> tuple[int, int]:
    """(the bin, counted from 0 upwards, holding the `needed`-th largest; how many lie above it)."""
    above = torch.cat([torch.zeros(1, dtype=torch.int64), histogram.flip(0).cumsum(0)])  # above[i]: in the top i bins
    i = int(torch.searchsorted(above[1:], torch.tensor(needed), right=False))  # first i with above[i+1] >= needed
    return histogram.numel() - 1 - i, int(above[i])


def thresholds(predicted: torch.Tensor, bits: torch.Tensor, top_percent: float, all_sum: AllSum,
               num_classes: int = 2) -> list[tuple[int, int]]:
    """Per class: (threshold bits t, how many pixels equal to t are kept over all ranks); t = -1
    keeps nothing of the class."""
    high = _histogram(predicted, bits, num_classes, 1 << HIGH_BITS, lambda b: b >> LOW_BITS, lambda p, b: torch.ones_like(b))
    high = all_sum(high)
    totals = high.sum(1).tolist()
    needed = [math.ceil(n * top_percent / 100.0 - 1e-9) for n in totals]
    coarse = [_from_top(high[c], needed[c]) if needed[c] else (-1, 0) for c in range(num_classes)]
    bins = torch.tensor([b for b, _ in coarse], device=bits.device)
    low = _histogram(predicted, bits, num_classes, 1 << LOW_BITS, lambda b: b & ((1 << LOW_BITS) - 1),
                     lambda p, b: (b >> LOW_BITS) == bins[p])
    low = all_sum(low)
    out = []
    for c in range(num_classes):
        if not needed[c]:
            out.append((-1, 0))
            continue
        fine, above_fine = _from_top(low[c], needed[c] - coarse[c][1])
        out.append(((coarse[c][0] << LOW_BITS) | fine, needed[c] - coarse[c][1] - above_fine))
    return out


def keep_top_percent_distributed(predicted: torch.Tensor, bits: torch.Tensor, top_percent: float, all_sum: AllSum,
                                 rank: int = 0, world_size: int = 1, num_classes: int = 2) -> torch.Tensor:
    """This rank's pseudo-labels (uint8, IGNORE where not kept) for its N×H×W predictions and
    margin bits, ranked against every rank's pixels."""
    check_finite(bits, all_sum)
    if top_percent >= 100.0:
        return predicted.clone()
    keep = torch.zeros_like(predicted, dtype=torch.bool)
    limits = thresholds(predicted, bits, top_percent, all_sum, num_classes)
    flat_pred, flat_bits = predicted.reshape(-1), bits.reshape(-1)
    for c, (t, tied_kept) in enumerate(limits):
        if t < 0:
            continue
        mine = flat_pred == c
        tied = mine & (flat_bits == t)
        counts = torch.zeros(world_size, dtype=torch.int64)
        counts[rank] = int(tied.sum())
        before = int(all_sum(counts)[:rank].sum())
        quota = min(max(tied_kept - before, 0), int(counts[rank]))
        first_tied = tied & (tied.cumsum(0) <= quota)
        keep.view(-1)[:] |= (mine & (flat_bits > t)) | first_tied
    return torch.where(keep, predicted, torch.full_like(predicted, IGNORE))
