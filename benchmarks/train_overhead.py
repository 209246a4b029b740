"""Ray Train overhead: training patches/s of the platform's loop under Ray Train (1 worker,
Ray Data feeding it) against a bare PyTorch loop with the same model, batch size, augmentation
and data, held in memory — measured in the same run on the same cores.

    python benchmarks/train_overhead.py [--size nano] [--epochs 4] [--batch 8]

Both sides time only their training epochs (forward, loss, backward, step) after a warm-up
epoch; the Ray worker gets every CPU, like the bare loop.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time

import numpy as np
import torch

from swinls.augment.ops import Augmenter
from swinls.config import load_experiment
from swinls.data import ShardData
from swinls.data.batches import to_batch
from swinls.data.local import read_split
from swinls.data.ray_data import init_local_ray
from swinls.defaults import default_dataset
from swinls.losses import composite
from swinls.models import build_model
from swinls.training import run_experiment


def bare_loop(config, epochs: int) -> float:
    data = ShardData(config.data)
    rows = read_split(data, "train")
    torch.manual_seed(0)
    model = build_model(config.model, data.channels).train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=config.stage1.lr)
    augmenter = Augmenter(config.data.augment)
    n, batch = len(rows["key"]), config.data.batch_size
    rates = []
    for epoch in range(epochs):
        order = np.random.default_rng(epoch).permutation(n)
        start, seen = time.perf_counter(), 0
        for i in range(0, n, batch):
            take = order[i:i + batch]
            b = to_batch({k: v[take] for k, v in rows.items()}, "cpu", augmenter, epoch)
            loss, _ = composite(model(b.image), b.mask, config.stage1.loss)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            seen += len(b)
        rates.append(seen / (time.perf_counter() - start))
    return float(np.mean(rates[1:]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", default="nano", choices=("nano", "tiny", "small", "base"))
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--batch", type=int, default=8)
    args = parser.parse_args()
    cpus = os.cpu_count() or 1
    with tempfile.TemporaryDirectory() as tmp:
        overrides = [f"data.uri={default_dataset()}", f"storage={tmp}", "name=overhead", f"model.size={args.size}",
                     f"data.batch_size={args.batch}", f"stage1.epochs={args.epochs}", "stage2.epochs=0",
                     "selftrain.rounds=0", "data.holdout_regions=[volcanic-arc]", f"run.cpus_per_worker={cpus}"]
        if args.size == "nano":
            overrides.append("model.decoder_channels=[64, 32, 16, 16, 8]")
        config = load_experiment(overrides=overrides)
        # this machine's speed drifts: measure bare before and after the Ray run, and average
        bare_before = bare_loop(config, args.epochs)
        init_local_ray(training_workers=1, num_cpus=cpus + 2, log_to_driver=False)
        history = run_experiment(config).history
        bare_after = bare_loop(config, args.epochs)
    bare = (bare_before + bare_after) / 2
    ray_rate = float(np.mean([h["train_patches"] / h["train_seconds"] for h in history[1:]]))
    print(f"Swin {args.size}, batch {args.batch}, {cpus} cores, epochs 2–{args.epochs} of {history[0]['train_patches']} patches")
    print(f"bare PyTorch loop, data in memory: {bare:.1f} patches/s (before {bare_before:.1f}, after {bare_after:.1f})")
    print(f"Ray Train, 1 worker, Ray Data:     {ray_rate:.1f} patches/s  = {ray_rate / bare:.2f} of bare")


if __name__ == "__main__":
    main()
