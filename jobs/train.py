"""One full run — stage 1 → stage 2 → self-training — from a config.

    python jobs/train.py [--recipe NAME] [--config YAML] [--set KEY=VALUE ...] [--data URI] [--storage URI] [--name NAME]

Examples:
    # a tiny model for a few epochs on the built-in data, in this process (a minute or two)
    python jobs/train.py --smoke-test --local
    # the paper's SwinLS (Swin-B from ImageNet weights) on the real data, checked first, then run
    python jobs/train.py --recipe paper --data s3://my-bucket/l4s/shards --storage s3://my-bucket/runs --dry-run
    python jobs/train.py --recipe paper --data s3://my-bucket/l4s/shards --storage s3://my-bucket/runs
    # Swin-B on RGB+NIR from the bucket, two DDP workers with a GPU each
    python jobs/train.py --set model.size=base --set data.bands=RGB+NIR --data s3://my-bucket/l4s/shards \\
        --storage s3://my-bucket/runs --name swin-b-rgbnir --workers 2 --use-gpu

Recipes (--recipe, platform/swinls/recipes/): paper, laptop, nightly, unet-resnet34,
deeplabv3-resnet34, paper-ablation. Without --recipe, --config or --smoke-test the paper recipe
runs where there is a GPU (or a cluster); on a machine without one the job stops and says how to
choose. Without --data, the built-in synthetic dataset is generated and ingested under --cache on first
use. Re-running with the same --name and --storage resumes from the latest checkpoint. Every
config key can be set with --set; a misspelled key is an error naming the closest valid one.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "platform"))  # the package beside this job (ray job submit's copy), not an installed one


def parse_args(argv=None):
    from swinls.cli import JobParser, add_shared

    parser = JobParser(__doc__, root=ROOT)
    add_shared(parser, "--recipe", "--config", "--set", "--data", "--storage", "--name", "--workers", "--use-gpu", "--local",
               "--smoke-test", "--cache", "--shared-fs", "--num-cpus", "--dry-run", "--mlflow")
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
    if not args.recipe:
        load_experiment(args.config, overrides)  # a misspelled key is said first, before the choice of recipe
    recipe = args.recipe or default_recipe(args)
    if recipe:
        overrides.insert(0, f"recipe={recipe}")
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
        from swinls.dry_run import plan

        where = "in this process" if args.local else f"on {run.num_workers} Ray Train worker(s)"
        headline = f"dry run: {config.name} {where}{' with GPUs' if run.use_gpu else ''}, run under {config.storage}"
        for line in plan(config, headline=headline, storage_uri=config.storage):
            print(line)
        return 0
    from swinls.dry_run import weights_line

    print(weights_line(config.model), flush=True)  # a missing or corrupt file stops here, before training
    publish_to = None
    if not args.local:
        from swinls.ray_start import check_placeable, init_local_ray
        from swinls.reachable import check_reachable, current_cluster, pretrained_path

        init_local_ray(training_workers=run.num_workers, num_cpus=args.num_cpus, log_to_driver=False)
        check_placeable(run, "the run")
        cluster = current_cluster()
        check_reachable({"--storage": config.storage, "--data": config.data.uri,
                         "model.pretrained": pretrained_path(config.model.pretrained)}, cluster, args.shared_fs)
        publish_to = config.storage if cluster.multi_node else None  # the built-in data, for every node
    if not config.data.uri:
        from swinls.defaults import default_dataset

        data_uri = default_dataset(args.cache, publish_to=publish_to)
        config = load_experiment(args.config, overrides + [f"storage={json.dumps(config.storage)}",
                                                           f"data.uri={json.dumps(data_uri)}"])
    from swinls import storage
    from swinls.tracking.curves import CURVES_NAME
    from swinls.tracking.mlflow_run import tracked
    from swinls.tracking.trials import log_curves
    from swinls.training import run_experiment
    from swinls.training.progress import LiveLines
    from swinls.training.report import epoch_table_header

    from swinls.data.selection import ShardData

    print(ShardData(config.data).validation.describe(), flush=True)
    tracker = _tracker(args, config)
    print(epoch_table_header(live=True), flush=True)
    try:
        result = run_experiment(config, local=args.local,
                                printer=tracked(tracker, LiveLines(lambda line: print(line, flush=True))))
    except BaseException:
        if tracker:
            tracker.finish("FAILED")
        raise
    print(f"final checkpoint: {result.checkpoint}")
    if result.history:
        print(f"learning curves: {storage.join(result.run_uri, CURVES_NAME)}")
    if tracker:
        tracker.tags(**{"swinls.checkpoint": result.checkpoint or ""})
        log_curves(tracker, result.run_uri)
        tracker.finish()
    return 0


def _tracker(args, config):
    """The run's MLflow run, when a tracking server is given (--mlflow or MLFLOW_TRACKING_URI)."""
    from swinls.config import to_dict
    from swinls.training.runner import run_uri_for
    from swinls.tracking.mlflow_run import flat_params, shown, start_tracking

    tracker = start_tracking(args.mlflow, "swinls-train", config.name, params=flat_params(to_dict(config)),
                             tags={"swinls.job": "train", "swinls.run_uri": run_uri_for(config)})
    if tracker and tracker.active:
        print(f"tracking: MLflow run {tracker.run_id} at {shown(tracker.uri)}", flush=True)
    return tracker


def default_recipe(args) -> str | None:
    """The recipe when none was chosen: the paper's, where it can run in reasonable time."""
    chosen = args.config or args.smoke_test or any(o.split("=", 1)[0].strip() == "recipe" for o in args.overrides)
    if chosen:
        return None
    import os

    import torch

    if os.environ.get("RAY_ADDRESS") or (torch.cuda.is_available() and torch.cuda.device_count()):
        return "paper"
    from swinls.errors import SwinLSError
    from swinls.experiment_config import load_experiment
    from swinls.work_estimate import LANDSLIDE4SENSE_ROWS, duration, estimate

    paper = load_experiment(None, ["recipe=paper", "run.use_gpu=false"])
    work = estimate(paper, LANDSLIDE4SENSE_ROWS, threads=torch.get_num_threads())
    raise SwinLSError(
        "no recipe chosen and this machine has no GPU: the default, the paper's recipe (Swin-B from ImageNet "
        f"weights, {paper.stage1.epochs}+{paper.stage2.epochs} epochs and a self-training round), would train for about "
        f"{duration(work.seconds[0])}–{duration(work.seconds[1])} on this CPU with Landslide4Sense's size. Choose one: "
        "--recipe laptop (minutes here), --smoke-test, --recipe paper on a machine with a GPU, or --config YOUR.yaml")


if __name__ == "__main__":
    sys.exit(main())
