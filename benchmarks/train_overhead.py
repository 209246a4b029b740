"""Ray Train overhead: training patches/s of the platform's loop under Ray Train (1 worker, the
split held on its device, or `--stream` for Ray Data feeding it every epoch) against a bare
PyTorch loop with the same model, batch size, augmentation, step and data, held in memory —
measured in the same run on the same cores.

    python benchmarks/train_overhead.py [--size nano] [--epochs 4] [--batch 8] [--stream] [--data SHARDS]
    python benchmarks/train_overhead.py --mlflow [URI] [--rounds 2]   # tracking on against off

    # representative epochs: the small preset's 792 training patches (jobs/synth.py --preset small)
    python jobs/synth.py /tmp/small --preset small --ingest /tmp/small-shards
    python benchmarks/train_overhead.py --data /tmp/small-shards

Both sides time only their training epochs (batches, forward, loss, backward, step) after a
warm-up epoch; the Ray worker gets every CPU, like the bare loop. The patch count is printed: an
epoch must be long enough that fixed per-epoch costs are not the measurement.

With --mlflow, the same Ray Train run with MLflow tracking on (every epoch's report logged to the
server, as `jobs/train.py --mlflow` does) against off, alternated --rounds times; without a URI a
local server is started (SQLite in a temporary folder). A warm-up run comes first and is not
counted; the order of on and off alternates between rounds.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time

import numpy as np
import torch

from swinls import storage
from swinls.accel import GpuSettings
from swinls.augment.ops import Augmenter
from swinls.experiment_config import load_experiment
from swinls.data import ShardData
from swinls.data.local import read_split
from swinls.ray_start import init_local_ray
from swinls.data.resident import ResidentSplit
from swinls.defaults import default_dataset
from swinls.models import build_model
from swinls.training import run_experiment
from swinls.training.step import make_optimizer, train_step


def bare_loop(config, epochs: int) -> float:
    data = ShardData(config.data)
    split = ResidentSplit(read_split(data, "train"), "cpu")
    torch.manual_seed(0)
    model = build_model(config.model, data.channels).train()
    gpu = GpuSettings.resolve("cpu", bf16=None, channels_last=None, deterministic=True)
    optimizer = make_optimizer("adamw", model.parameters(), config.stage1.lr, config.stage1.weight_decay)
    augmenter = Augmenter(config.data.augment)
    rates = []
    for epoch in range(epochs):
        start, seen, total = time.perf_counter(), 0, torch.zeros(())
        for batch in split.batches(epoch=epoch, batch_size=config.data.batch_size, augmenter=augmenter, shuffle=True):
            total += train_step(model, optimizer, batch, config.stage1.loss, gpu)
            seen += len(batch)
        float(total)
        rates.append(seen / (time.perf_counter() - start))
    return float(np.mean(rates[1:]))


def tracking_ratio(config, uri: str | None, rounds: int) -> None:
    """Training patches/s with MLflow tracking on over off, the same run alternated."""
    from dataclasses import replace
    from pathlib import Path

    from swinls.config import to_dict
    from swinls.tracking.local_server import start_server, stop_server
    from swinls.tracking.mlflow_run import Tracker, flat_params, tracked

    server = None
    if uri is None:
        uri, server = start_server(Path(config.storage))
    try:
        run_experiment(replace(config, name="overhead-warm-up"), printer=lambda entry: None)  # caches, Ray Data's first start
        ratios = []
        for round_no in range(rounds):
            rates = {}
            for mode in (("off", "on") if round_no % 2 == 0 else ("on", "off")):  # neither always goes first
                run = replace(config, name=f"overhead-{mode}-{round_no}")
                tracker = Tracker(uri, "swinls-benchmark", run.name, params=flat_params(to_dict(run))) if mode == "on" else None
                history = run_experiment(run, printer=tracked(tracker, lambda entry: None)).history
                if tracker:
                    tracker.finish()
                rates[mode] = float(np.mean([h["train_patches"] / h["train_seconds"] for h in history[1:]]))
            ratios.append(rates["on"] / rates["off"])
            print(f"round {round_no + 1}: tracking off {rates['off']:.1f} patches/s, on {rates['on']:.1f}, "
                  f"ratio {ratios[-1]:.3f}")
        print(f"MLflow tracking on / off: median {np.median(ratios):.3f}, range {min(ratios):.3f}–{max(ratios):.3f}")
    finally:
        if server is not None:
            stop_server(server)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", default="nano", choices=("nano", "tiny", "small", "base"))
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--stream", action="store_true", help="Ray Data streams the split every epoch (data.resident=never)")
    parser.add_argument("--data", help="shard dataset (default: the built-in synthetic one)")
    parser.add_argument("--mlflow", nargs="?", const="", metavar="URI",
                        help="tracking on against off instead (a local MLflow server when no URI is given)")
    parser.add_argument("--rounds", type=int, default=2, help="with --mlflow: on/off pairs")
    args = parser.parse_args()
    cpus = os.cpu_count() or 1
    with tempfile.TemporaryDirectory() as tmp:
        overrides = [f"data.uri={storage.absolute(args.data) if args.data else default_dataset()}", f"data.resident={'never' if args.stream else 'auto'}", f"storage={tmp}", "name=overhead", f"model.size={args.size}",
                     f"data.batch_size={args.batch}", f"stage1.epochs={args.epochs}", "stage2.epochs=0",
                     "selftrain.rounds=0", f"run.cpus_per_worker={cpus}",
                     "data.holdout_regions=[volcanic-arc]"]  # in the built-in data and the presets alike
        if args.size == "nano":
            overrides.insert(0, "recipe=tiny")  # the nano Swin's decoder (platform/swinls/recipes/tiny.yaml)
        config = load_experiment(overrides=overrides)
        if args.mlflow is not None:
            init_local_ray(training_workers=1, num_cpus=cpus + 2, log_to_driver=False)
            return tracking_ratio(config, args.mlflow or None, args.rounds)
        # this machine's speed drifts: measure bare before and after the Ray run, and average
        bare_before = bare_loop(config, args.epochs)
        init_local_ray(training_workers=1, num_cpus=cpus + 2, log_to_driver=False)
        history = run_experiment(config).history
        bare_after = bare_loop(config, args.epochs)
    bare = (bare_before + bare_after) / 2
    ray_rate = float(np.mean([h["train_patches"] / h["train_seconds"] for h in history[1:]]))
    print(f"Swin {args.size}, batch {args.batch}, {cpus} cores, epochs 2–{args.epochs} of {history[0]['train_patches']} patches")
    print(f"bare PyTorch loop, data in memory: {bare:.1f} patches/s (before {bare_before:.1f}, after {bare_after:.1f})")
    feed = "Ray Data streaming" if args.stream else "split on the device"
    print(f"Ray Train, 1 worker, {feed}: {ray_rate:.1f} patches/s  = {ray_rate / bare:.2f} of bare")


if __name__ == "__main__":
    main()
