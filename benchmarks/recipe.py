"""The paper's Tables 3 and 4 on our synthetic data: balanced training and self-training.

    python benchmarks/recipe.py [--epochs 20] [--size nano] [--workdir DIR]

Every row trains the same model from the same seed on the built-in synthetic dataset with the
`volcanic-arc` region held out, in a plain process, and reports precision/recall/F1 of the
landslide class on the validation patches of the training regions (as the paper reports its
validation set) and F1 on the held-out region. Self-training rows start from the balanced
run's stage-2 checkpoint and add one round at A = 50/70/90/100 %. Prints a Markdown table.
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
from pathlib import Path

from swinls.experiment_config import load_experiment
from swinls.defaults import default_dataset
from swinls.training import run_experiment


def rows(epochs: int) -> list[tuple[str, list[str]]]:
    one_stage = ["stage2.epochs=0"]
    return [
        ("Normal training (CE)", one_stage + ["stage1.loss.ce=1", "stage1.loss.wce=0", "stage1.loss.lovasz=0", "stage1.loss.image=0"]),
        ("Weighted CE", one_stage + ["stage1.loss.wce=1", "stage1.loss.lovasz=0", "stage1.loss.image=0"]),
        ("Focal loss", one_stage + ["stage1.loss.focal=1", "stage1.loss.wce=0", "stage1.loss.lovasz=0", "stage1.loss.image=0"]),
        ("CE + Lovász", one_stage + ["stage1.loss.ce=1", "stage1.loss.wce=0", "stage1.loss.lovasz=1", "stage1.loss.image=0"]),
        ("Balanced training, paper weights (wce 1, Lovász 1, image 1 → CE)", []),
        ("Balanced training (wce 1, Lovász 0.25, image 0.5 → CE)", ["stage1.loss.lovasz=0.25", "stage1.loss.image=0.5"]),
    ]


def summary(history: list[dict]) -> dict:
    last = history[-1]
    return {k: last[k] for k in ("valid_precision", "valid_recall", "valid_f1", "holdout_f1")}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--epochs", type=int, default=20, help="stage-1 epochs (stage 2: a quarter)")
    parser.add_argument("--size", default="nano")
    parser.add_argument("--workdir")
    args = parser.parse_args()
    work = Path(args.workdir or tempfile.mkdtemp(prefix="recipe-"))
    stage2 = max(1, args.epochs // 4)
    base = [f"data.uri={default_dataset()}", f"storage={work}", f"model.size={args.size}", "data.batch_size=8",
            "data.holdout_regions=[volcanic-arc]", f"stage1.epochs={args.epochs}", "stage1.lr=0.001",
            f"stage2.epochs={stage2}", "stage2.lr=0.0001", "selftrain.rounds=0", "run.keep_checkpoints=1"]
    if args.size == "nano":
        base.insert(0, "recipe=tiny")  # the nano Swin's decoder and drop path (platform/swinls/recipes/tiny.yaml)
    results = []
    for i, (label, overrides) in enumerate(rows(args.epochs)):
        config = load_experiment(overrides=base + overrides + [f"name=row{i}"])
        results.append((label, summary(run_experiment(config, local=True, printer=None).history)))
        print(f"done: {label}: {results[-1][1]}", flush=True)
    balanced = work / "row5"
    for top in (50, 70, 90, 100):
        name = f"selftrain-{top}"
        target = work / name
        target.mkdir()
        shutil.copytree(balanced / "checkpoints", target / "checkpoints")  # start from the balanced model
        config = load_experiment(overrides=base + rows(args.epochs)[5][1] + [
            f"name={name}", "selftrain.rounds=1", f"selftrain.top_percent={top}",
            f"selftrain.stage1.epochs={max(1, args.epochs // 4)}", "selftrain.stage1.lr=0.0005",
            f"selftrain.stage2.epochs={stage2}", "selftrain.stage2.lr=0.0001"])
        results.append((f"Self-training, A = {top}%", summary(run_experiment(config, local=True, printer=None).history)))
        print(f"done: A={top}: {results[-1][1]}", flush=True)
    print(f"\nSwin {args.size}, RGB, flips + rotate/shift, batch 8, stage 1: {args.epochs} epochs at lr 1e-3, stage 2: "
          f"{stage2} epochs at lr 1e-4 (frozen encoder, CE); self-training: {max(1, args.epochs // 4)} + {stage2} epochs; "
          f"data: the built-in synthetic dataset, volcanic-arc held out; CPU, one process, seed 0.\n")
    print("| training | precision | recall | F1 (validation) | F1 (held-out region) |")
    print("| --- | ---: | ---: | ---: | ---: |")
    for label, s in results:
        print(f"| {label} | {s['valid_precision']:.3f} | {s['valid_recall']:.3f} | {s['valid_f1']:.3f} | {s['holdout_f1']:.3f} |")
    if not args.workdir:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
