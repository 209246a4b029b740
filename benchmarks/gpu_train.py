"""Stage-1 training speed on one device: patches/s, each step split into input (gathering and
augmenting the batch from a split held on the device) and compute (forward, the paper's stage-1
loss, backward, fused AdamW), and MFU against the device's bf16 peak.

    python benchmarks/gpu_train.py                       # Swin-T and Swin-B at batch 64, 128, 256 on cuda
    python benchmarks/gpu_train.py --device cpu --sizes nano --batches 8 --steps 5
    python benchmarks/gpu_train.py --sizes base,unet-resnet34,deeplabv3-resnet34 --batches 16   # the recipes' models
    python benchmarks/gpu_train.py --reference           # also the step as it was: per-sample augmentation
                                                         # on the host, losses that read the device

It runs the platform's own pieces (ResidentSplit, Augmenter with the paper's flips + rotate/shift,
`train_step`, GpuSettings) on synthetic patches shaped like Landslide4Sense RGB (3,799 × 3 × 128 × 128),
and needs torch, timm and numpy only. Model FLOPs are forward FLOPs per patch as
`benchmarks/models.py` counts them (torch's FlopCounterMode; a multiply-add is 2 FLOPs), times 3
for forward + backward. Input and compute times come from CUDA events on the one stream (on a CPU,
from the wall clock); "input" is the share of the device's time spent producing batches, which a
device-resident split makes kernels on the same stream rather than a wait for the host.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import time
from pathlib import Path

import numpy as np
import torch
from torch.utils.flop_counter import FlopCounterMode

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests.reference_* for --reference

from swinls.accel import GpuSettings  # noqa: E402
from swinls.augment import PAPER_RECIPE  # noqa: E402
from swinls.augment.ops import Augmenter  # noqa: E402
from swinls.data.resident import ResidentSplit  # noqa: E402
from swinls.losses import PAPER_STAGE1  # noqa: E402
from swinls.models import ModelConfig, build_model  # noqa: E402
from swinls.training.step import make_optimizer, train_step  # noqa: E402

# dense bf16 tensor-core peaks (TFLOP/s), from the vendors' data sheets
PEAKS = {"H200": 989.0, "H100 SXM": 989.0, "H100 NVL": 835.0, "H100 PCIe": 756.0, "H100": 989.0, "A100": 312.0,
         "L40S": 362.0, "A10G": 70.0, "L4": 121.0}
NAMES = {"nano": "Swin-nano", "tiny": "Swin-T", "small": "Swin-S", "base": "Swin-B"}
CHANNELS = ("B4", "B3", "B2")


def synthetic_rows(n: int, seed: int = 0) -> dict[str, np.ndarray]:
    """Normalised RGB-like patches with blob-shaped landslide masks (about 2 % positive pixels)."""
    rng = np.random.default_rng(seed)
    image = rng.normal(size=(n, 3, 128, 128)).astype(np.float16)
    yy, xx = np.mgrid[:128, :128]
    mask = np.zeros((n, 128, 128), np.uint8)
    for i in np.flatnonzero(rng.random(n) < 0.6):
        cy, cx, r = rng.integers(10, 118), rng.integers(10, 118), rng.integers(4, 14)
        mask[i] = (yy - cy) ** 2 + (xx - cx) ** 2 < r * r
    return {"image": image, "mask": mask, "key": np.arange(n, dtype=np.int64)}


def model_config(size: str) -> ModelConfig:
    """A Swin size, or a baseline as NAME-ENCODER (unet-resnet34, deeplabv3-resnet34)."""
    if size == "nano":
        from swinls.recipes import tiny_model

        return tiny_model()
    if "-" in size:
        name, encoder = size.split("-", 1)
        return ModelConfig(name=name, encoder=encoder)
    return ModelConfig(size=size)


def forward_flops(model, channels: int) -> int:
    was_training = model.training
    model.eval()
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        model(torch.randn(1, channels, 128, 128, device=next(model.parameters()).device))
    model.train(was_training)
    return counter.get_total_flops()


def device_peak(device: torch.device, override: float | None) -> tuple[float | None, str]:
    if override:
        return override, f"{override:.0f} TFLOP/s (given)"
    if device.type != "cuda":
        return None, "no known peak for a CPU (pass --peak-tflops)"
    name = torch.cuda.get_device_name(device)
    for key, peak in PEAKS.items():
        if key in name:
            return peak, f"{peak:.0f} TFLOP/s bf16 ({name})"
    return None, f"no known peak for {name} (pass --peak-tflops)"


class Clock:
    """Marks on the device's timeline (CUDA events) or the host's (a CPU runs in order anyway)."""

    def __init__(self, device: torch.device) -> None:
        self.cuda = device.type == "cuda"

    def now(self):
        if not self.cuda:
            return time.perf_counter()
        event = torch.cuda.Event(enable_timing=True)
        event.record()
        return event

    def ms(self, start, end) -> float:
        return start.elapsed_time(end) if self.cuda else (end - start) * 1000


def reference_batches(rows, device, batch: int, epoch: int):
    """The old input path: host rows, per-sample numpy draws and per-sample transforms."""
    from swinls.data.batches import to_batch
    from tests.reference_augment import sample_params_host, transform_host

    n = len(rows["key"])
    order = np.random.default_rng(epoch).permutation(n)
    for start in range(0, n - batch + 1, batch):
        take = order[start:start + batch]
        b = to_batch({k: v[take] for k, v in rows.items()}, device)
        params = sample_params_host(PAPER_RECIPE, rows["key"][take], epoch)
        b.image, b.mask = transform_host(b.image, b.mask, params)
        yield b


def reference_step(net, optimizer, batch, gpu: GpuSettings, lovasz_kind: str) -> torch.Tensor:
    from swinls.accel import autocast, to_memory_format
    from tests import reference_losses as ref

    with autocast(batch.image.device, gpu.bf16):
        outputs = net(to_memory_format(batch.image, gpu.channels_last))
    logits, mask = outputs["logits"], batch.mask
    # the new step's loss (PAPER_STAGE1 with --lovasz-kind), in the old code
    lovasz = ref.lovasz_softmax(logits, mask) if lovasz_kind == "softmax" else ref.lovasz_hinge(logits, mask, per_image=False)
    terms = [ref.weighted_cross_entropy(logits, mask), lovasz, ref.image_level(outputs["image_logit"], mask)]
    loss = sum(terms)
    _ = [float(t.detach()) for t in terms]  # the per-term logging of the old composite
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    optimizer.step()
    return loss.detach()


def measure(size: str, batch: int, args, split: ResidentSplit, rows, device: torch.device, reference: bool = False) -> dict:
    torch.manual_seed(0)
    model = build_model(model_config(size), CHANNELS).to(device).train()
    gpu = GpuSettings.resolve(device, bf16=None if not args.fp32 else False, channels_last=None, deterministic=False)
    gpu.apply()
    if gpu.channels_last:
        model = model.to(memory_format=torch.channels_last)
    flops = 3 * forward_flops(model, len(CHANNELS))
    optimizer = make_optimizer("adamw", model.parameters(), 1e-4, 0.01, fused=gpu.fused_optimizer)
    net = torch.compile(model) if args.compile else model
    augmenter = Augmenter(PAPER_RECIPE)
    loss = dataclasses.replace(PAPER_STAGE1, lovasz_kind=args.lovasz_kind)
    clock, marks, total = Clock(device), [], torch.zeros((), device=device)
    epoch, steps, started = 0, 0, time.perf_counter()
    while steps < args.warmup + args.steps:
        batches = iter(reference_batches(rows, device, batch, epoch) if reference else
                       split.batches(epoch=epoch, batch_size=batch, augmenter=augmenter, shuffle=True, seed=0))
        while steps < args.warmup + args.steps:
            begin = clock.now()
            b = next(batches, None)
            if b is None or len(b) < batch:
                break
            ready = clock.now()
            if reference:
                total += reference_step(net, optimizer, b, gpu, args.lovasz_kind)
            else:
                total += train_step(net, optimizer, b, loss, gpu)
            done = clock.now()
            steps += 1
            if steps > args.warmup:
                marks.append((begin, ready, done))
            elif steps == args.warmup:
                float(total)  # the warm-up's work finished before the clock starts
                started = time.perf_counter()
        epoch += 1
    float(total)  # wait for the device before stopping the clock
    seconds = time.perf_counter() - started
    input_ms = float(np.mean([clock.ms(a, b) for a, b, _ in marks]))
    compute_ms = float(np.mean([clock.ms(b, c) for _, b, c in marks]))
    return {"rate": args.steps * batch / seconds, "step_ms": 1000 * seconds / args.steps, "input_ms": input_ms,
            "compute_ms": compute_ms, "flops": flops}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--sizes", default="tiny,base",
                        help="Swin sizes (nano, tiny, small, base) or baselines (unet-resnet34, deeplabv3-resnet34)")
    parser.add_argument("--batches", default="64,128,256")
    parser.add_argument("--steps", type=int, default=30, help="timed steps per setting, after the warm-up")
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--patches", type=int, default=3799, help="patches held on the device (Landslide4Sense's training split)")
    parser.add_argument("--compile", action="store_true", help="torch.compile the model")
    parser.add_argument("--fp32", action="store_true", help="no bf16 autocast")
    parser.add_argument("--reference", action="store_true", help="also time the old step, side by side")
    parser.add_argument("--lovasz-kind", choices=("softmax", "hinge"), default=PAPER_STAGE1.lovasz_kind,
                        help="stage 1's Lovász term (default: the recipe's)")
    parser.add_argument("--peak-tflops", type=float, help="the device's bf16 peak, when it is not in the table")
    args = parser.parse_args()
    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        sys.exit("error: no CUDA device; run with --device cpu")
    peak, peak_text = device_peak(device, args.peak_tflops)
    rows = synthetic_rows(args.patches)
    split = ResidentSplit(rows, device)
    print(f"device {device} · torch {torch.__version__} · {args.patches} patches on the device ({split.nbytes / 2**20:.0f} MiB) · "
          f"peak {peak_text} · bf16 {'off' if args.fp32 else 'on' if device.type == 'cuda' else 'off (CPU)'}"
          f"{' · compiled' if args.compile else ''} · Lovász {args.lovasz_kind}")
    for size in args.sizes.split(","):
        for batch in (int(b) for b in args.batches.split(",")):
            for reference in ((False, True) if args.reference else (False,)):
                r = measure(size, batch, args, split, rows, device, reference)
                achieved = r["rate"] * r["flops"]
                mfu = f"{achieved / 1e12:.2f} TFLOP/s = MFU {100 * achieved / (peak * 1e12):.1f} %" if peak else \
                    f"{achieved / 1e12:.3f} TFLOP/s, MFU n/a"
                label = f"{NAMES.get(size, size)} stage 1, batch {batch}{' (old step)' if reference else ''}"
                print(f"{label:<36} {r['rate']:8.1f} patches/s · step {r['step_ms']:7.1f} ms = input {r['input_ms']:6.2f} ms "
                      f"({100 * r['input_ms'] / (r['input_ms'] + r['compute_ms']):4.1f} %) + compute {r['compute_ms']:7.1f} ms · "
                      f"{r['flops'] / 1e9:.1f} GFLOP/patch · {mfu}", flush=True)


if __name__ == "__main__":
    main()
