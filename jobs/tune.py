"""The main job: a hyperparameter search over SwinLS training, the best model published.

    python jobs/tune.py                         # local Ray, built-in synthetic data, smoke space
    ray job submit --working-dir . -- python jobs/tune.py \\
        --space search_spaces/paper.yaml --data s3://bucket/l4s/shards --storage s3://bucket/experiments

Prints a ranked table of trials and the URI of the best model. Re-run with --resume (and the
same --name) to continue an interrupted search without repeating finished trials.
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
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
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
    parser.add_argument("--cache", default=str(ROOT / ".cache"), help="where the built-in dataset is kept")
    parser.add_argument("--num-cpus", type=int, help="logical CPUs of a local Ray (default: cores + 2)")
    return parser.parse_args(argv)


def space_text(args, original: str) -> str:
    """The space file with the command line's budget and resource overrides applied."""
    import yaml

    data = yaml.safe_load(original) or {}
    if args.samples is not None:
        data.setdefault("budget", {})["samples"] = args.samples
    if args.max_concurrent is not None:
        data.setdefault("budget", {})["max_concurrent"] = args.max_concurrent
    resources = data.setdefault("resources", {})
    for key, value in (("num_workers", args.workers), ("cpus_per_worker", args.cpus_per_worker)):
        if value is not None:
            resources[key] = value
    if args.use_gpu:
        resources["use_gpu"] = True
    return yaml.safe_dump(data, sort_keys=False)


def shown(path: str) -> str:
    """A local path as the user would type it from here; URIs unchanged."""
    if "://" in str(path):
        return str(path)
    absolute = os.path.abspath(path)  # not resolve(): a venv's python is a symlink out of the checkout
    inside = absolute.startswith(os.getcwd().rstrip(os.sep) + os.sep)
    return os.path.relpath(absolute) if inside else str(path)


def predict_commands(args, space, result) -> list[str]:
    """The jobs/predict.py lines for this search's best model: the built-in data's test split and
    scenes of a region it did not train on, or a placeholder for the user's own data."""
    from swinls import storage

    best, out = shown(result.best_uri), shown(storage.join(result.experiment_uri, "predictions"))
    python = shown(sys.executable)
    python = python if not Path(python).is_absolute() else "python"  # the venv's, when run from the checkout
    job = f"{python} {shown(str(ROOT / 'jobs' / 'predict.py'))}"
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
    from swinls.search.space import SpaceError, parse_space

    if args.resume and not args.name:
        print("error: --resume needs the --name of the experiment to continue", file=sys.stderr)
        return 2
    try:
        from swinls import storage

        original = storage.read_bytes(args.space).decode()
        parse_space(original, args.space)  # a malformed space fails here, before Ray or any data, with its lines
        text = space_text(args, original)
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
    try:
        result = run_search(text, data_uri=data_uri, storage_uri=args.storage, name=name, resume=args.resume,
                            space_source=args.space)
    except ExperimentExists as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"\nexperiment {name}: {result.experiment_uri}")
    print(f"ranked by {space.mode} {space.scope} {space.metric} (score); final: {space.metric} at the trial's last epoch")
    print(f"{'rank':>4} {'trial':<24} {'status':<9} {'epochs':>6} {'score':>8} {'final':>8}  parameters")
    for rank, row in enumerate(result.trials, start=1):
        score, final = ("-" if row[key] is None else f"{row[key]:.4f}" for key in ("value", "final"))
        print(f"{rank:>4} {row['trial']:<24} {row['status']:<9} {str(row['epochs'] or '-'):>6} {score:>8} {final:>8}  "
              f"{json.dumps(row['params'], sort_keys=True)}")
    if result.best_model_uri:
        print(f"\nbest model: {result.best_model_uri}")
        print(f"model card: {result.best_model_uri.rsplit('/', 1)[0]}/model_card.json")
        print("\napply it (masks, submission.zip, metrics where labels exist):")
        for line in predict_commands(args, space, result):
            print(f"  {line}")
    else:
        print("\nno trial finished its whole run, so no model was published")
    return 0


if __name__ == "__main__":
    sys.exit(main())
