"""The main job: a hyperparameter search over SwinLS training, the best model published.

    python jobs/tune.py [--space YAML] [--data URI] [--storage URI] [--name NAME] [--resume]

Examples:
    # the embedded default: local Ray, the built-in synthetic data, search_spaces/smoke.yaml
    python jobs/tune.py
    # a shorter search on it, two trials at a time
    python jobs/tune.py --samples 2 --max-concurrent 2 --name quick
    # check a cluster search's inputs without starting anything
    python jobs/tune.py --space search_spaces/paper.yaml --data s3://my-bucket/l4s/shards --use-gpu --dry-run
    # the paper's axes on a cluster, data and results in S3; after an interruption, add --resume
    ray job submit --working-dir . -- python jobs/tune.py --space search_spaces/paper.yaml \\
        --data s3://my-bucket/l4s/shards --storage s3://my-bucket/experiments --name paper-axes --use-gpu

Prints a ranked table of trials, the URI of the best model, and the commands that show its model
card and apply it. The same command again (the same --name, space and overrides) continues an
interrupted search without repeating finished trials; --resume says so explicitly. Exits 1 when
every trial failed, with the reason.
"""

from __future__ import annotations

import datetime
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "platform"))  # the package beside this job (ray job submit's copy), not an installed one


def parse_args(argv=None):
    from swinls.cli import JobParser, add_shared

    parser = JobParser(__doc__, root=ROOT)
    parser.add_argument("--space", default=str(ROOT / "search_spaces" / "smoke.yaml"), metavar="YAML",
                        help="search space YAML (its keys: docs/search-spaces.md)")
    add_shared(parser, "--data", "--storage", "--name")
    parser.add_argument("--resume", action="store_true", help="continue the experiment called --name")
    parser.add_argument("--samples", type=int, metavar="N", help="override the space's number of trials")
    parser.add_argument("--max-concurrent", type=int, metavar="N", help="override how many trials run at once")
    add_shared(parser, "--workers", "--use-gpu")
    parser.add_argument("--cpus-per-worker", type=float, metavar="N", help="override the space's CPUs per worker")
    parser.add_argument("--gpus-per-worker", type=float, metavar="N",
                        help="with --use-gpu: a share of a GPU per worker (0.25: four small trials per GPU)")
    add_shared(parser, "--set", "--cache", "--shared-fs", "--num-cpus", "--dry-run", "--mlflow")
    args = parser.parse_args(argv)
    if args.resume and not args.name:
        parser.error("--resume needs the --name of the experiment to continue")
    return args


def same_search_again(storage_uri: str, name: str, text: str) -> bool:
    """The same --name resumes, as it does in every job, when the space is the one it ran with;
    another space under that name is refused (it would mix two searches in one study)."""
    from swinls import storage
    from swinls.search.experiment import ExperimentExists, experiment_uri

    saved = storage.join(experiment_uri(storage_uri, name), "space.yaml")
    if not storage.exists(saved):
        return False
    if storage.read_bytes(saved).decode() != text:
        raise ExperimentExists(f"{experiment_uri(storage_uri, name)} holds a search of another space (or other command-line "
                               "overrides); rerun it as it was, or choose another --name")
    print(f"resuming {name}: finished trials are kept", flush=True)
    return True


def main(argv=None) -> int:
    """The job; its exit status (a user error is one line on stderr and 2)."""
    from swinls.cli import run_job

    return run_job(_run, argv)


def _run(argv=None) -> int:
    args = parse_args(argv)
    from swinls import preflight, storage
    from swinls.search.space import override_space, parse_space

    original = storage.read_bytes(args.space).decode()
    parse_space(original, args.space)  # a malformed space fails here with its lines, before the overrides
    text = override_space(original, samples=args.samples, max_concurrent=args.max_concurrent, workers=args.workers,
                          cpus_per_worker=args.cpus_per_worker, use_gpu=args.use_gpu,
                          gpus_per_worker=args.gpus_per_worker, base=args.overrides)
    space = parse_space(text, f"{args.space} with the command line's overrides", with_lines=False)
    if args.data:
        manifest = preflight.check_data(args.data, space.experiment({}))
    preflight.check_storage(args.storage)
    run = space.run
    preflight.check_devices(run.use_gpu, run.num_workers * run.gpus_per_worker)
    name = args.name or f"{Path(args.space).stem}-{datetime.datetime.now():%Y%m%d-%H%M%S}"
    resume = same_search_again(args.storage, name, text) or args.resume  # --resume of another space is refused too
    if args.dry_run:
        from swinls.dry_run import plan

        # the base config every trial starts from (a trial's sampled values may change it)
        config = space.experiment({}, [f"data.uri={json.dumps(args.data)}"] if args.data else [])
        headline = (f"dry run: {space.samples} trials of {args.space}, each {run.num_workers} worker(s)"
                    f"{' with GPUs' if run.use_gpu else ''}; experiment {storage.join(args.storage, name)}")
        for line in plan(config, headline=headline, storage_uri=args.storage, trials=space.samples,
                         parallel=max(1, space.max_concurrent or 1), manifest=manifest if args.data else None,
                         show_recipe=False):
            print(line)
        return 0
    from swinls.cli import quiet_bookkeeping
    from swinls.ray_start import check_placeable, init_local_ray
    from swinls.reachable import check_reachable, current_cluster, pretrained_path
    from swinls.search.experiment import run_search
    from swinls.search.summary import failure_summary, summary_lines, unrankable_summary

    init_local_ray(training_workers=run.num_workers, num_cpus=args.num_cpus, log_to_driver=False)
    check_placeable(run, "each trial")
    cluster = current_cluster()
    check_reachable({"--storage": args.storage, "--data": args.data,
                     "model.pretrained": pretrained_path(space.experiment({}).model.pretrained)}, cluster, args.shared_fs)
    if args.data:
        data_uri = args.data
    else:
        from swinls.defaults import default_dataset

        publish_to = args.storage if cluster.multi_node else None
        print(f"built-in synthetic dataset: preparing it under {args.cache}" + (
            f", published to {publish_to} for every node" if publish_to else "") + " (reused after the first time)", flush=True)
        data_uri = default_dataset(args.cache, publish_to=publish_to)
    quiet_bookkeeping()
    tracker = _tracker(args.mlflow, name, storage.join(args.storage, name), space, args.space)
    try:
        result = run_search(text, data_uri=data_uri, storage_uri=args.storage, name=name, resume=resume,
                            space_source=args.space,
                            tracking=(tracker.uri, tracker.run_id) if tracker and tracker.active else None)
    except BaseException:
        if tracker:
            tracker.finish("FAILED")
        raise
    for line in summary_lines(result, space, name=name, data=args.data, cache=args.cache, root=ROOT):
        print(line)
    failed = failure_summary(result.trials) or unrankable_summary(result.trials, space.metric)
    if tracker:
        tracker.tags(**{"swinls.best_model": result.best_model_uri or "", "swinls.trials": str(len(result.trials))})
        tracker.finish("FAILED" if failed else "FINISHED")
    if failed:
        print(f"error: {failed}", file=sys.stderr)
        return 1
    return 0


def _tracker(flag, name: str, exp_uri: str, space, space_source: str):
    """The search's MLflow run (each trial a child run of it), when a tracking server is given."""
    from swinls.config import to_dict
    from swinls.search.experiment import SEARCH_EXPERIMENT
    from swinls.tracking.mlflow_run import flat_params, shown, start_tracking

    params = flat_params({"base": to_dict(space.experiment({})), "space": {"source": space_source, "metric": space.metric,
                                                                        "mode": space.mode, "samples": space.samples}})
    tracker = start_tracking(flag, SEARCH_EXPERIMENT, name, params=params,
                             tags={"swinls.job": "tune", "swinls.experiment_uri": exp_uri})
    if tracker and tracker.active:
        print(f"tracking: MLflow run {tracker.run_id} at {shown(tracker.uri)} (a child run per trial)", flush=True)
    return tracker


if __name__ == "__main__":
    sys.exit(main())
