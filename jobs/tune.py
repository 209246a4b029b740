"""The main job: a hyperparameter search over SwinLS training, the best model published.

    python jobs/tune.py [--space YAML] [--data URI] [--storage URI] [--name NAME] [--resume]

Examples:
    # the embedded default: local Ray, the built-in synthetic data, search_spaces/smoke.yaml
    python jobs/tune.py
    # a shorter search on it, two trials at a time
    python jobs/tune.py --samples 2 --max-concurrent 2 --name quick
    # the paper's axes on a cluster, data and results in S3; after an interruption, add --resume
    ray job submit --working-dir . -- python jobs/tune.py --space search_spaces/paper.yaml \\
        --data s3://my-bucket/l4s/shards --storage s3://my-bucket/experiments --name paper-axes --use-gpu

Prints a ranked table of trials, the URI of the best model, and the commands that show its model
card and apply it. Re-run with --resume (and the same --name) to continue an interrupted search
without repeating finished trials.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def parse_args(argv=None) -> argparse.Namespace:
    from swinls.cli import JobParser

    parser = JobParser(__doc__)
    parser.add_argument("--space", default=str(ROOT / "search_spaces" / "smoke.yaml"), help="search space YAML")
    parser.add_argument("--data", help="shard dataset URI (default: the built-in synthetic data, made on first use)")
    parser.add_argument("--storage", default=str(ROOT / "runs"), help="a folder or s3://bucket/prefix for the experiment")
    parser.add_argument("--name", help="experiment name (default: the space's name and the time)")
    parser.add_argument("--resume", action="store_true", help="continue the experiment called --name")
    parser.add_argument("--samples", type=int, help="override the space's number of trials")
    parser.add_argument("--max-concurrent", type=int, help="override how many trials run at once")
    parser.add_argument("--workers", type=int, help="Ray Train workers per trial")
    parser.add_argument("--cpus-per-worker", type=float)
    parser.add_argument("--use-gpu", action="store_true")
    parser.add_argument("--gpus-per-worker", type=float, help="with --use-gpu: a share of a GPU per worker (0.25: four small trials per GPU)")
    parser.add_argument("--cache", default=str(ROOT / ".cache"), help="where the built-in dataset is kept")
    parser.add_argument("--num-cpus", type=int, help="logical CPUs of a local Ray (default: cores + 2)")
    return parser.parse_args(argv)


def shown(path: str) -> str:
    """A local path as the user would type it from here; URIs unchanged."""
    if "://" in str(path):
        return str(path)
    absolute = os.path.abspath(path)  # not resolve(): a venv's python is a symlink out of the checkout
    inside = absolute.startswith(os.getcwd().rstrip(os.sep) + os.sep)
    return os.path.relpath(absolute) if inside else str(path)


def job_python() -> str:
    """This interpreter as the user would type it: the venv's, when run from the checkout."""
    python = shown(sys.executable)
    return python if not Path(python).is_absolute() else "python"


def predict_commands(args, space, result) -> list[str]:
    """The jobs/predict.py lines for this search's best model: the built-in data's test split and
    scenes of a region it did not train on, or a placeholder for the user's own data."""
    from swinls import storage

    best, out = shown(result.best_uri), shown(storage.join(result.experiment_uri, "predictions"))
    job = f"{job_python()} {shown(str(ROOT / 'jobs' / 'predict.py'))}"
    if args.data:
        return [f"{job} {best} <split folder holding img/, or GeoTIFF scenes> {out}"]
    from swinls.defaults import DEFAULT_SPEC

    config = space.experiment({})
    untrained = [r for r in DEFAULT_SPEC.regions if r not in config.data.train_regions]
    region = (list(config.data.holdout_regions) or untrained or list(DEFAULT_SPEC.regions))[0]
    raw = shown(str(Path(args.cache) / "synthetic" / region))
    return [f"{job} {best} {raw}/TestData {out}/{region}-test",
            f"{job} {best} {raw}/scenes {out}/{region}-scenes --probability"]


def main(argv=None) -> int:
    args = parse_args(argv)
    from swinls.search.experiment import ExperimentExists, run_search
    from swinls.cli import quiet_bookkeeping
    from swinls.search.space import SpaceError, override_space, parse_space

    if args.resume and not args.name:
        print("error: --resume needs the --name of the experiment to continue", file=sys.stderr)
        return 2
    try:
        from swinls import storage

        original = storage.read_bytes(args.space).decode()
        parse_space(original, args.space)  # a malformed space fails here, before Ray or any data, with its lines
        text = override_space(original, samples=args.samples, max_concurrent=args.max_concurrent,
                              workers=args.workers, cpus_per_worker=args.cpus_per_worker, use_gpu=args.use_gpu,
                              gpus_per_worker=args.gpus_per_worker)
        space = parse_space(text, f"{args.space} with the command line's overrides")
    except (SpaceError, FileNotFoundError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    name = args.name or f"{Path(args.space).stem}-{datetime.datetime.now():%Y%m%d-%H%M%S}"
    if args.data:
        data_uri = args.data
    else:
        from swinls.defaults import default_dataset

        print(f"built-in synthetic dataset: preparing it under {args.cache} (reused after the first time)", flush=True)
        data_uri = default_dataset(args.cache)
    from swinls.data.ray_data import init_local_ray

    init_local_ray(training_workers=space.resources.num_workers, num_cpus=args.num_cpus, log_to_driver=False)
    quiet_bookkeeping()
    try:
        result = run_search(text, data_uri=data_uri, storage_uri=args.storage, name=name, resume=args.resume,
                            space_source=args.space)
    except ExperimentExists as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"\nexperiment {name}: {result.experiment_uri}")
    print(f"ranked by {space.mode} {space.scope} {space.metric} (score); final: {space.metric} at the trial's last epoch")
    for line in ranked_table(result.trials):
        print(line)
    if result.best_model_uri:
        print(f"\nbest model: {shown(result.best_model_uri)}")
        print("\nnext:")
        python, best = job_python(), shown(result.best_uri)
        print(f"  {python} {shown(str(ROOT / 'jobs' / 'card.py'))} {best}    # its bands, normalisation, regions, metrics")
        print("  # apply it (masks, submission.zip, metrics where labels exist):")
        for line in predict_commands(args, space, result):
            print(f"  {line}")
    else:
        print("\nno trial finished its whole run, so no model was published")
    return 0


def ranked_table(trials: list[dict]) -> list[str]:
    """The trials best first: score, the metric at the last epoch, and what the live table showed
    beside them (the scheduler's metric, held-out F1)."""
    also = list(dict.fromkeys(key for row in trials for key in row.get("also", {})))

    def cell(value) -> str:
        return "-" if value is None else f"{value:.4f}"

    lines = [f"{'rank':>4} {'trial':<24} {'status':<9} {'epochs':>6} {'score':>8} {'final':>8} "
             + "".join(f"{key:>11} " for key in also) + " parameters"]
    for rank, row in enumerate(trials, start=1):
        lines.append(f"{rank:>4} {row['trial']:<24} {row['status']:<9} {str(row['epochs'] or '-'):>6} "
                     f"{cell(row['value']):>8} {cell(row['final']):>8} "
                     + "".join(f"{cell(row.get('also', {}).get(key)):>11} " for key in also)
                     + f" {json.dumps(row['params'], sort_keys=True)}")
    return lines


if __name__ == "__main__":
    sys.exit(main())
