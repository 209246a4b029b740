"""What a Ray Train fit costs beyond its epochs: wall time of one run (1 worker, the split on its
device, nano, a few short epochs) at Ray Train's default controller poll (2 s) and at the 0.5 s a
local instance gets (`init_local_ray`), alternated in one Ray instance, beside the same run in
this process (no Ray Train: the floor).

    python benchmarks/fit_startup.py [--repeats 3] [--epochs 3] [--data SHARDS] [--train-regions R1,R2]
    python benchmarks/fit_startup.py --train-regions steep-forest   # sub-second epochs, as in the tests

Ray Train passes the driver's RAY_TRAIN_HEALTH_CHECK_INTERVAL_S to each fit's controller, so
each fit here gets the setting named beside it. A worker's report waits for the controller to
take the one before, so epochs shorter than the poll wait for it; longer ones only wait at the
fit's end. The epochs' own seconds are printed beside the wall times.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time

import numpy as np

from swinls import storage
from swinls.experiment_config import load_experiment
from swinls.ray_start import LOCAL_TRAIN_POLL_S, TRAIN_POLL_ENV, init_local_ray
from swinls.defaults import default_dataset
from swinls.training import run_experiment

RAY_DEFAULT_POLL_S = "2.0"


def one_run(overrides: list[str], name: str, local: bool) -> tuple[float, float]:
    """(wall seconds, seconds spent in its epochs)."""
    config = load_experiment(overrides=[*overrides, f"name={name}"])
    start = time.perf_counter()
    history = run_experiment(config, local=local, printer=lambda *_: None).history
    return time.perf_counter() - start, sum(h["seconds"] for h in history)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=3, help="stage-1 epochs (stage 2 adds one)")
    parser.add_argument("--data", help="shard dataset (default: the built-in synthetic one)")
    parser.add_argument("--train-regions", help="comma-separated training regions (default: all but the held-out)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        overrides = [f"data.uri={storage.absolute(args.data) if args.data else default_dataset()}", f"storage={tmp}",
                     "model.size=nano", "model.decoder_channels=[32, 16, 16, 8, 8]", "data.batch_size=8",
                     f"stage1.epochs={args.epochs}", "stage2.epochs=1", "selftrain.rounds=0", "run.keep_checkpoints=1"]
        if args.train_regions:
            overrides.append(f"data.train_regions=[{args.train_regions}]")
        init_local_ray(training_workers=1, log_to_driver=False)
        one_run(overrides, "warm-up", local=False)  # the first fit also imports and caches what later ones reuse
        settings = {RAY_DEFAULT_POLL_S: [], LOCAL_TRAIN_POLL_S: [], "in process": []}
        for repeat in range(args.repeats):
            for setting, runs in settings.items():
                if setting != "in process":
                    os.environ[TRAIN_POLL_ENV] = setting
                runs.append(one_run(overrides, f"{setting}-{repeat}".replace(" ", "-"), local=setting == "in process"))
    epochs = [e for runs in settings.values() for _, e in runs]
    print(f"1 worker, nano, {args.epochs}+1 epochs taking {min(epochs):.1f}–{max(epochs):.1f} s in all, {args.repeats} runs each")
    floor = float(np.mean([w for w, _ in settings["in process"]]))
    for setting, runs in settings.items():
        walls = [w for w, _ in runs]
        label = "in this process (no Ray Train)" if setting == "in process" else f"Ray Train fit, poll {setting} s"
        extra = "" if setting == "in process" else f"; beyond the in-process run {np.mean(walls) - floor:.1f} s"
        print(f"{label}: {np.mean(walls):.1f} s ({min(walls):.1f}–{max(walls):.1f}){extra}")


if __name__ == "__main__":
    main()
