"""The paper's ablations, one command per table, each a Ray Tune grid (a trial per row, model and
seed) that spreads over a cluster; outputs trials.csv, table.md and table.png.

    python jobs/ablate.py balance --preset small --seeds 2 --smoke-test      # minutes on a laptop
    python jobs/ablate.py bands --preset small                              # Table 1, 8 rows × 3 models × 3 seeds
    python jobs/ablate.py selftrain --preset small --rows before,a90,a100 --set stage1.epochs=20
    ray job submit --working-dir . -- python jobs/ablate.py balance --preset l4s \\
        --set model.size=tiny --set run.use_gpu=true --set run.gpus_per_worker=0.25 --storage s3://my-bucket/ablations

Tables: bands (Table 1), augment (Table 2), balance (Table 3), selftrain (Table 4), scaling
(throughput and time to each --target-f1 against Ray Train workers and Swin size). Shared settings
come from --config (default search_spaces/ablation.yaml); each table's recipe (e.g. one-stage CE
for Tables 1 and 2) comes next, then --set overrides (which may change the recipe: --set
stage1.loss.lovasz=0), then what the row varies. A rerun with the same --name keeps the trials
that finished; with the same settings it may add rows, models or seeds to the table
(--models unet after a SwinLS-only run), and the outputs cover everything asked under that name.
--target-f1 only chooses what the outputs report, so a rerun may change it freely.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SMOKE = ["stage1.epochs=1", "stage1.warmup_epochs=0", "stage2.epochs=1", "selftrain.stage1.epochs=1",
         "selftrain.stage2.epochs=1", "data.train_regions=[steep-forest, terraced-farmland]", "run.checkpoint_every=1"]


def target_f1s(text: str) -> tuple[float, ...]:
    import argparse

    try:
        values = tuple(float(v) for v in text.split(",") if v.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a comma-separated list of F1 values") from None
    if not values or any(not 0 < v <= 1 for v in values):
        raise argparse.ArgumentTypeError(f"{text!r}: each target F1 must be in (0, 1]")
    return tuple(sorted(set(values)))


def parse_args(argv=None):
    from swinls.ablation.tables import DEFAULT_TARGET_F1S, TABLES
    from swinls.cli import JobParser

    parser = JobParser(__doc__)
    parser.add_argument("table", help=f"one of: {', '.join(TABLES)}")
    parser.add_argument("--seeds", type=int, default=3, help="trials per row and model, seeds 0..N-1")
    parser.add_argument("--rows", help="comma-separated row names (default: all of the table's)")
    parser.add_argument("--models", help="comma-separated models (default: the table's)")
    parser.add_argument("--config", default=str(ROOT / "search_spaces" / "ablation.yaml"), help="shared settings (YAML)")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override a shared setting")
    data = parser.add_mutually_exclusive_group()
    data.add_argument("--preset", choices=("small", "l4s"), help="the benchmark-size synthetic data, made on first use")
    data.add_argument("--data", help="a shard dataset URI (default: the built-in synthetic data)")
    parser.add_argument("--storage", default=str(ROOT / "runs"), help="a folder or s3://bucket/prefix")
    parser.add_argument("--name", help="default: ablate-<table>-<time>; the same name resumes")
    parser.add_argument("--target-f1", type=target_f1s, default=DEFAULT_TARGET_F1S, metavar="F1[,F1...]",
                        help="scaling: the valid F1s the time is measured to, a column each "
                             f"(default: {','.join(f'{t:g}' for t in DEFAULT_TARGET_F1S)})")
    parser.add_argument("--max-concurrent", type=int, default=0, help="trials at once (default: what fits)")
    parser.add_argument("--smoke-test", action="store_true", help="one epoch per stage on two training regions")
    parser.add_argument("--cache", default=str(ROOT / ".cache"))
    parser.add_argument("--num-cpus", type=int, help="logical CPUs of a local Ray (default: cores + 2)")
    return parser.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    from swinls import storage
    from swinls.ablation.run import AblationRequest
    from swinls.ablation.tables import AblationError, get_table
    from swinls.config import ConfigError, load_yaml

    try:
        get_table(args.table)
        settings = load_yaml(args.config)
        overrides = (SMOKE if args.smoke_test else []) + args.set
    except (AblationError, ConfigError, FileNotFoundError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if args.preset:
        from swinls.defaults import preset_dataset

        overrides.append(f"data.uri={preset_dataset(args.preset, args.cache)}")
    elif args.data or not settings.get("data", {}).get("uri"):
        from swinls.defaults import default_dataset

        overrides.append(f"data.uri={args.data or default_dataset(args.cache)}")
    request = AblationRequest(args.table, settings, overrides, seeds=args.seeds,
                              rows=[r.strip() for r in (args.rows or "").split(",") if r.strip()],
                              models=[m.strip() for m in (args.models or "").split(",") if m.strip()],
                              target_f1s=args.target_f1, max_concurrent=args.max_concurrent)
    name = args.name or f"ablate-{args.table}-{time.strftime('%Y%m%d-%H%M%S')}"
    storage_uri = args.storage if storage.is_s3(args.storage) else str(Path(args.storage).absolute())

    import os

    from swinls.ablation.run import run_ablation
    from swinls.cli import quiet_bookkeeping
    from swinls.data.ray_data import init_local_ray

    quiet_bookkeeping()
    local = not os.environ.get("RAY_ADDRESS")
    init_local_ray(training_workers=1, num_cpus=args.num_cpus, log_to_driver=False)
    try:
        outputs = run_ablation(request, storage_uri=storage_uri, name=name, local_cores=(os.cpu_count() or 1) if local else None)
    except AblationError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print()
    print(outputs.markdown)
    for label, uri in outputs.uris.items():
        print(f"{label}: {uri}")
    incomplete = [r["trial"] for r in outputs.records if r["status"] != "complete"]
    if incomplete:
        print(f"not finished: {', '.join(incomplete)} (rerun with --name {name} to continue them)", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
