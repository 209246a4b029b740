"""Scheduled retraining: train a challenger when new labelled regions arrive, promote it only if it
beats the champion on the same evaluation, and never leave the champion broken.

    python jobs/retrain.py --data SHARDS --registry REGISTRY [--recipe NAME] [--config YAML | --space YAML] [--set KEY=VALUE ...]
    python jobs/retrain.py --registry REGISTRY --rollback VERSION

Examples:
    # nightly, from cron on the head: a no-op unless the manifest changed
    ray job submit --working-dir . -- python jobs/retrain.py --data s3://my-bucket/l4s/shards \\
        --registry s3://my-bucket/registry --recipe nightly --workers 2
    # the built-in data, a tiny model, in this process
    python jobs/retrain.py --data .cache/shards --registry runs/registry --recipe laptop --local
    # undo the last promotion
    python jobs/retrain.py --registry s3://my-bucket/registry --rollback 3f2a9c0d41b7e655

The first run promotes a first champion. Later runs do nothing when every labelled region of the
manifest is one the champion was trained on and the manifest is the same; otherwise they train a
challenger on all labelled regions, score champion and challenger on every region's validation
patches, and promote the challenger only if its F1 beats the champion's by --min-gain with no
region down by more than --max-region-drop. A run is keyed by (manifest, recipe, code version):
rerun after a crash, it resumes; rerun after a verdict, it says the verdict again. The last line
printed is `decision: promoted|kept|no-op ...`. Decisions are kept under REGISTRY/decisions/.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "platform"))  # the package beside this job (ray job submit's copy), not an installed one


def parse_args(argv=None):
    from swinls.cli import JobParser, add_shared
    from swinls.retraining.decision import MAX_REGION_DROP, MIN_GAIN

    parser = JobParser(__doc__, root=ROOT)
    add_shared(parser, "--data")
    parser.add_argument("--registry", required=True, metavar="URI", help="a folder or s3:// prefix: champion/, decisions/, runs/")
    recipe = parser.add_mutually_exclusive_group()
    add_shared(recipe, "--config")
    recipe.add_argument("--space", metavar="YAML", help="a search space YAML instead: a short search picks the challenger")
    add_shared(parser, "--recipe", "--set")
    parser.add_argument("--samples", type=int, metavar="N", help="with --space: the search's number of trials")
    add_shared(parser, "--workers", "--use-gpu", "--local", "--cache", "--shared-fs", "--num-cpus", "--dry-run", "--mlflow")
    parser.add_argument("--min-gain", type=float, default=MIN_GAIN, metavar="F1", help="overall F1 the challenger must add")
    parser.add_argument("--max-region-drop", type=float, default=MAX_REGION_DROP, metavar="F1", help="F1 no region may lose")
    parser.add_argument("--rollback", metavar="VERSION", help="point the champion at an earlier version, and stop")
    return parser.parse_args(argv)


def main(argv=None) -> int:
    """The job; its exit status (a user error is one line on stderr and 2)."""
    from swinls.cli import run_job

    return run_job(_run, argv)


def _run(argv=None) -> int:
    args = parse_args(argv)
    from swinls import preflight, storage
    from swinls.cli import quiet_bookkeeping
    from swinls.retraining import Recipe, RetrainOptions, retrain, rollback
    from swinls.retraining.run import labelled_regions

    log = lambda line: print(line, flush=True)  # noqa: E731
    storage.check_uri(args.registry)
    if args.rollback:
        print(rollback(args.registry, args.rollback, log=log))
        _mirror(args, log)
        return 0
    overrides = ([f"recipe={args.recipe}"] if args.recipe else []) + args.overrides
    recipe = Recipe(config=args.config, overrides=tuple(overrides), space=args.space, samples=args.samples,
                    workers=args.workers, use_gpu=args.use_gpu)
    if args.data:
        manifest = preflight.check_data(args.data)
        regions = labelled_regions(manifest)
        run = recipe.run_settings(args.data, list(manifest.regions))
    else:
        regions = []
        run = recipe.run_settings("built-in", [])
    preflight.check_devices(run.use_gpu, run.num_workers * run.gpus_per_worker, local=args.local)
    if args.dry_run:
        from swinls.dry_run import plan

        headline = (f"dry run: a challenger by {'a search of ' + args.space if args.space else (args.config or 'the paper recipe')} "
                    f"on {args.data or 'the built-in synthetic dataset'}, judged against the champion in {args.registry}")
        if args.space:
            from swinls.search.space import parse_space

            space = parse_space(recipe.space_text(regions), args.space)
            config, trials = space.experiment({}, [f"data.uri={json.dumps(args.data)}"] if args.data else []), space.samples
        else:
            config, trials = recipe.experiment(args.data or "", regions, args.registry, "dry-run"), 1
        for line in plan(config, headline=headline, storage_uri=args.registry, trials=trials, show_recipe=not args.space):
            print(line)
        return 0
    publish_to = None
    if not args.local and os.environ.get("RAY_ADDRESS"):  # a cluster: what it runs on must reach every path
        from swinls.ray_start import init_local_ray
        from swinls.reachable import check_reachable, current_cluster, pretrained_path

        init_local_ray(training_workers=run.num_workers, num_cpus=args.num_cpus, log_to_driver=False)
        cluster = current_cluster()
        pretrained = None if args.space else recipe.experiment(args.data or "", regions, args.registry, "check").model.pretrained
        check_reachable({"--registry": args.registry, "--data": args.data, "model.pretrained": pretrained_path(pretrained)},
                        cluster, args.shared_fs)
        publish_to = args.registry if cluster.multi_node else None
    if not args.data:
        from swinls.defaults import default_dataset

        args.data = default_dataset(args.cache, publish_to=publish_to)
    quiet_bookkeeping()
    options = RetrainOptions(min_gain=args.min_gain, max_region_drop=args.max_region_drop, local=args.local,
                             num_cpus=args.num_cpus)
    outcome = retrain(args.data, args.registry, recipe, options, log=log)
    record = outcome.record
    if record and record.get("scores"):
        from swinls.retraining.decision import score_table

        for line in score_table(record["scores"]):
            print(line)
        if outcome.record_uri:
            print(f"record: {outcome.record_uri}")
    if record:
        _draw_champion(args.registry, log)
    _mirror(args, log)
    print(outcome.line)
    return 0


def _draw_champion(registry: str, log) -> None:
    """The champion's F1 per region over the nights, redrawn from the decision records."""
    import warnings

    from swinls.tracking.overviews import write_champion_history

    try:
        uri = write_champion_history(registry)
    except Exception as exc:  # noqa: BLE001 - the decision is committed; a picture never fails it
        warnings.warn(f"{registry}: the champion's history was not drawn ({type(exc).__name__}: {exc})", stacklevel=2)
        return
    if uri:
        log(f"champion per region over the nights: {uri}")


def _mirror(args, log) -> None:
    """MLflow's model registry brought in line with this registry, when a tracking server is given:
    after the decision is committed, so that it never holds one up."""
    from swinls.tracking.mlflow_run import tracking_uri

    uri = tracking_uri(args.mlflow)
    if uri:
        from swinls.tracking.registry_mirror import mirror

        mirror(args.registry, uri, log)


if __name__ == "__main__":
    sys.exit(main())
