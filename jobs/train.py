"""One full run — stage 1 → stage 2 → self-training — from a config.

    python jobs/train.py [--config YAML] [--set KEY=VALUE ...] [--data URI] [--storage URI] [--name NAME]

Examples:
    # a tiny model for a few epochs on the built-in data, in this process (a minute or two)
    python jobs/train.py --smoke-test --local
    # Swin-B on RGB+NIR from the bucket, two DDP workers with a GPU each
    python jobs/train.py --set model.size=base --set data.bands=RGB+NIR --data s3://my-bucket/l4s/shards \\
        --storage s3://my-bucket/runs --name swin-b-rgbnir --workers 2 --use-gpu

Without --data, the built-in synthetic dataset is generated and ingested under --cache on first
use. Re-running with the same --name and --storage resumes from the latest checkpoint. Every
config key can be set with --set; a misspelled key is an error naming the closest valid one.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def parse_args(argv=None):
    from swinls.cli import JobParser, add_shared

    parser = JobParser(__doc__, root=ROOT)
    add_shared(parser, "--config", "--set", "--data", "--storage", "--name", "--workers", "--use-gpu", "--local",
               "--smoke-test", "--cache", "--num-cpus", "--dry-run")
    return parser.parse_args(argv)


def main(argv=None) -> int:
    """The job; its exit status (a user error is one line on stderr and 2)."""
    from swinls.cli import run_job

    return run_job(_run, argv)


def _run(argv=None) -> int:
    args = parse_args(argv)
    from swinls import preflight
    from swinls.defaults import SMOKE_OVERRIDES
    from swinls.experiment_config import ExperimentConfig, load_experiment

    overrides = list(SMOKE_OVERRIDES if args.smoke_test else []) + args.overrides
    for value, key in ((args.name, "name"), (args.workers, "run.num_workers"), (args.data, "data.uri")):
        if value is not None:  # quoted: a name like 2024 stays a string (overrides are read as YAML)
            overrides.append(f"{key}={json.dumps(value)}")
    if args.use_gpu:
        overrides.append("run.use_gpu=true")
    config = load_experiment(args.config, overrides)
    if args.storage != str(ROOT / "runs") or config.storage == ExperimentConfig.storage:
        # the flag, or its default in place of the config's own (relative) default; a config file's storage otherwise
        config = load_experiment(args.config, overrides + [f"storage={json.dumps(args.storage)}"])
    preflight.check_storage(config.storage)
    if config.data.uri:
        preflight.check_data(config.data.uri, config)
    run = config.run
    preflight.check_devices(run.use_gpu, run.num_workers * run.gpus_per_worker, local=args.local)
    if args.dry_run:
        where = "in this process" if args.local else f"on {run.num_workers} Ray Train worker(s)"
        print(f"dry run: {config.name} {where}{' with GPUs' if run.use_gpu else ''}, {config.model.name} "
              f"{config.model.size}, bands {config.data.bands}, data {config.data.uri or 'the built-in synthetic dataset'}, "
              f"run under {config.storage}; nothing started")
        return 0
    if not config.data.uri:
        from swinls.defaults import default_dataset

        config = load_experiment(args.config, overrides + [f"storage={json.dumps(config.storage)}",
                                                           f"data.uri={json.dumps(default_dataset(args.cache))}"])
    from swinls.training import run_experiment
    from swinls.training.report import epoch_row, epoch_table_header

    if not args.local:
        from swinls.ray_start import check_gpus, init_local_ray

        init_local_ray(training_workers=run.num_workers, num_cpus=args.num_cpus, log_to_driver=False)
        check_gpus(run.num_workers * run.gpus_per_worker if run.use_gpu else 0, "the run")
    print(epoch_table_header())
    result = run_experiment(config, local=args.local, printer=lambda m: print(epoch_row(m), flush=True))
    if not args.local:  # under Ray the workers report; print the table from the run's history
        for metrics in result.history:
            print(epoch_row(metrics))
    print(f"final checkpoint: {result.checkpoint}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
