"""Stage-1 loss terms side by side: milliseconds for a forward and backward of each on one batch
of logits, the Lovász surrogates beside weighted CE, and the two-class Lovász-softmax with one
sort (the platform's) against a sort per class (the general path).

    python benchmarks/losses.py                                   # batch 16 and 64 on cpu, 1 thread
    python benchmarks/losses.py --device cuda --batches 64,256 --repeats 50

Each round times every term in turn on the same logits and mask (128 × 128 patches, about 2 %
landslide pixels), after one untimed call each; the table gives the median and range over
rounds, and the per-round ratio of the two Lovász-softmax paths. Needs torch only.
"""

from __future__ import annotations

import argparse
import dataclasses
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "platform"))

from swinls.losses import (PAPER_STAGE1, composite, lovasz_hinge, lovasz_softmax,  # noqa: E402
                           weighted_cross_entropy)


def terms(logits: torch.Tensor, image_logit: torch.Tensor, mask: torch.Tensor) -> dict:
    hinge_stage1 = dataclasses.replace(PAPER_STAGE1, lovasz_kind="hinge")
    outputs = {"logits": logits, "image_logit": image_logit}
    return {
        "weighted CE": lambda: weighted_cross_entropy(logits, mask),
        "Lovász hinge": lambda: lovasz_hinge(logits, mask, per_image=False),
        "Lovász-softmax, one sort": lambda: lovasz_softmax(logits, mask),
        "Lovász-softmax, sort per class": lambda: lovasz_softmax(logits, mask, one_sort=False),
        "stage 1 with Lovász-softmax": lambda: composite(outputs, mask, PAPER_STAGE1)[0],
        "stage 1 with the hinge": lambda: composite(outputs, mask, hinge_stage1)[0],
    }


def time_ms(fn, params: list[torch.Tensor], repeats: int, device: torch.device) -> float:
    def once():
        for p in params:
            p.grad = None
        fn().backward()

    once()
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    start = time.perf_counter()
    for _ in range(repeats):
        once()
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return (time.perf_counter() - start) / repeats * 1000


def run(batch: int, device: torch.device, rounds: int, repeats: int) -> None:
    gen = torch.Generator().manual_seed(batch)
    logits = torch.randn(batch, 2, 128, 128, generator=gen).to(device).requires_grad_()
    image_logit = torch.randn(batch, generator=gen).to(device).requires_grad_()
    mask = (torch.rand(batch, 128, 128, generator=gen) < 0.02).long().to(device)
    fns = terms(logits, image_logit, mask)
    times = {name: [] for name in fns}
    for _ in range(rounds):
        for name, fn in fns.items():
            times[name].append(time_ms(fn, [logits, image_logit], repeats, device))
    print(f"\nbatch {batch} on {device} ({batch * 128 * 128:,} pixels), {rounds} rounds of {repeats}:")
    for name, values in times.items():
        print(f"  {name:32s} {statistics.median(values):8.2f} ms  ({min(values):.2f}–{max(values):.2f})")
    ratios = [a / b for a, b in zip(times["Lovász-softmax, sort per class"], times["Lovász-softmax, one sort"])]
    print(f"  sort per class / one sort: {statistics.median(ratios):.2f}× ({min(ratios):.2f}–{max(ratios):.2f})")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--batches", default="16,64", help="comma-separated batch sizes")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--repeats", type=int, default=5, help="calls timed together in a round")
    parser.add_argument("--threads", type=int, default=1, help="CPU threads (a training worker's one core)")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    for batch in (int(b) for b in args.batches.split(",")):
        run(batch, device, args.rounds, args.repeats)
    return 0


if __name__ == "__main__":
    sys.exit(main())
