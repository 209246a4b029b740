"""Scheduled retraining: train a challenger when new labelled regions arrive, promote it only if it
beats the champion on the same evaluation, and never leave the champion broken.

    python jobs/retrain.py --data SHARDS --registry REGISTRY [--config YAML | --space YAML] [--set KEY=VALUE ...]
    python jobs/retrain.py --registry REGISTRY --rollback VERSION

Examples:
    # nightly, from cron on the head: a no-op unless the manifest changed
    ray job submit --working-dir . -- python jobs/retrain.py --data s3://my-bucket/l4s/shards \\
        --registry s3://my-bucket/registry --config recipes/swin-b-rgb.yaml --workers 2 --use-gpu
    # the built-in data, a tiny model, in this process
    python jobs/retrain.py --data .cache/shards --registry runs/registry --set model.size=nano --local
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

import argparse
import sys


def parse_args(argv=None) -> argparse.Namespace:
    from swinls.cli import JobParser
    from swinls.retraining.decision import MAX_REGION_DROP, MIN_GAIN

    parser = JobParser(__doc__)
    parser.add_argument("--data", help="the shard dataset (its manifest says which regions are labelled)")
    parser.add_argument("--registry", required=True, help="a folder or s3:// prefix: champion/, decisions/, runs/")
    recipe = parser.add_mutually_exclusive_group()
    recipe.add_argument("--config", help="experiment YAML of the challenger (default: the paper's recipe)")
    recipe.add_argument("--space", help="a search space YAML: a short search picks the challenger")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="override a config key (of --config, or of the space's base config)")
    parser.add_argument("--samples", type=int, help="with --space: the search's number of trials")
    parser.add_argument("--workers", type=int, help="Ray Train workers")
    parser.add_argument("--use-gpu", action="store_true")
    parser.add_argument("--local", action="store_true", help="train in this process, without Ray")
    parser.add_argument("--min-gain", type=float, default=MIN_GAIN, help="overall F1 the challenger must add")
    parser.add_argument("--max-region-drop", type=float, default=MAX_REGION_DROP, help="F1 no region may lose")
    parser.add_argument("--rollback", metavar="VERSION", help="point the champion at an earlier version, and stop")
    args = parser.parse_args(argv)
    if args.rollback is None and not args.data:
        parser.error("--data is needed (or --rollback VERSION)")
    return args


def main(argv=None) -> int:
    args = parse_args(argv)
    from swinls.cli import quiet_bookkeeping
    from swinls.errors import SwinLSError
    from swinls.retraining import Recipe, RetrainOptions, retrain, rollback

    quiet_bookkeeping()
    log = lambda line: print(line, flush=True)  # noqa: E731

    try:
        if args.rollback:
            print(rollback(args.registry, args.rollback, log=log))
            return 0
        recipe = Recipe(config=args.config, overrides=tuple(args.overrides), space=args.space, samples=args.samples,
                        workers=args.workers, use_gpu=args.use_gpu)
        options = RetrainOptions(min_gain=args.min_gain, max_region_drop=args.max_region_drop, local=args.local)
        outcome = retrain(args.data, args.registry, recipe, options, log=log)
    except (SwinLSError, OSError) as exc:  # a storage failure or a bad input: one line, no traceback
        print(f"error: {exc}", file=sys.stderr)
        return 2
    record = outcome.record
    if record and record.get("scores"):
        for line in score_table(record["scores"]):
            print(line)
        if outcome.record_uri:
            print(f"record: {outcome.record_uri}")
    print(outcome.line)
    return 0


def score_table(scores: dict) -> list[str]:
    """P/R/F1 of champion and challenger, overall and per region, from the record's pixel counts."""
    models = [(name, scores[name]) for name in ("champion", "challenger") if scores.get(name)]
    rows = ["overall", *scores["challenger"]["regions"]]
    width = max(len(r) for r in rows) + 2
    lines = [(" " * width + "".join(f"{name:<26}" for name, _ in models)).rstrip(),
             (f"{'region':<{width}}" + "".join(f"{'P':>7} {'R':>7} {'F1':>7}   " for _ in models)).rstrip()]
    for row in rows:
        cells = ""
        for _, table in models:
            values = table["overall"] if row == "overall" else table["regions"].get(row)
            cells += "".join(f"{values[m]:>7.4f} " if values else f"{'-':>7} " for m in ("precision", "recall", "f1")) + "  "
        lines.append(f"{row:<{width}}{cells}".rstrip())
    return lines


if __name__ == "__main__":
    sys.exit(main())
