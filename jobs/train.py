"""One full run — stage 1 → stage 2 → self-training — from a config.

    python jobs/train.py [--config YAML] [--set KEY=VALUE ...] [--data URI] [--storage URI] [--name NAME]

Examples:
    # a tiny model for a few epochs on the built-in data, in this process (a minute or two)
    python jobs/train.py --smoke-test --local
    # Swin-B on RGB+NIR from the bucket, two DDP workers with a GPU each
    python jobs/train.py --set model.size=base --set data.bands=RGB+NIR --data s3://my-bucket/l4s/shards \\
        --storage s3://my-bucket/runs --name swin-b-rgbnir --workers 2 --use-gpu

Without --data, the built-in synthetic dataset is generated and ingested under .cache/ on first
use. Re-running with the same --name and --storage resumes from the latest checkpoint. Every
config key can be set with --set; a misspelled key is an error naming the closest valid one.
"""

from __future__ import annotations

import argparse
import json
import sys

from swinls.config import ConfigError, load_experiment
from swinls.defaults import SMOKE_OVERRIDES, default_dataset
from swinls.training import run_experiment
from swinls.training.report import epoch_row, epoch_table_header


def parse_args(argv=None) -> argparse.Namespace:
    from swinls.cli import JobParser

    parser = JobParser(__doc__)
    parser.add_argument("--config", help="experiment YAML (defaults: the paper's recipe)")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="override a config key, e.g. --set model.size=tiny (repeatable)")
    parser.add_argument("--name", help="run name (resume by re-running with the same one)")
    parser.add_argument("--data", help="shard dataset URI (default: the built-in synthetic data)")
    parser.add_argument("--storage", help="where runs are kept: a folder or s3://bucket/prefix")
    parser.add_argument("--workers", type=int, help="Ray Train workers")
    parser.add_argument("--use-gpu", action="store_true")
    parser.add_argument("--local", action="store_true", help="train in this process, without Ray")
    parser.add_argument("--smoke-test", action="store_true", help="tiny model and few epochs")
    parser.add_argument("--cache", default=".cache", help="where the built-in dataset is kept")
    return parser.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    overrides = list(SMOKE_OVERRIDES if args.smoke_test else []) + args.overrides
    for flag, key in ((args.name, "name"), (args.storage, "storage"), (args.workers, "run.num_workers")):
        if flag is not None:  # quoted: a name like 2024 stays a string (overrides are read as YAML)
            overrides.append(f"{key}={json.dumps(flag)}")
    if args.use_gpu:
        overrides.append("run.use_gpu=true")
    try:
        config = load_experiment(args.config, overrides)
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if args.data or not config.data.uri:
        config = load_experiment(args.config, overrides + [f"data.uri={json.dumps(args.data or default_dataset(args.cache))}"])
    if not args.local:
        from swinls.data.ray_data import init_local_ray

        init_local_ray(training_workers=config.run.num_workers, log_to_driver=False)
    print(epoch_table_header())
    result = run_experiment(config, local=args.local, printer=lambda m: print(epoch_row(m), flush=True))
    if not args.local:  # under Ray the workers report; print the table from the run's history
        for metrics in result.history:
            print(epoch_row(metrics))
    print(f"final checkpoint: {result.checkpoint}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
