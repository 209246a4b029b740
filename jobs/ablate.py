"""The paper's ablations, one command per table, each a Ray Tune grid (a trial per row, model and
seed) that spreads over a cluster; outputs trials.csv, table.md and table.png.

    python jobs/ablate.py balance --preset small --seeds 2 --smoke-test      # minutes on a laptop
    python jobs/ablate.py bands --preset small                              # Table 1, 8 rows × 3 models × 3 seeds
    python jobs/ablate.py selftrain --preset small --rows before,a90,a100 --set stage1.epochs=20
    python jobs/ablate.py bands --data /nonexistent --dry-run                   # check the inputs, start nothing
    python jobs/ablate.py balance --name balance-proxy --report-only           # the outputs of what finished so far
    python jobs/ablate.py bands --data s3://my-bucket/l4s/shards --storage s3://my-bucket/ablations \\
        --set recipe=paper-ablation --use-gpu --seeds 3                        # the real data, pretrained models
    ray job submit --working-dir . -- python jobs/ablate.py balance --preset l4s \\
        --set model.size=tiny --use-gpu --set run.gpus_per_worker=0.25 --storage s3://my-bucket/ablations

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

import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "platform"))  # the package beside this job (ray job submit's copy), not an installed one


def parse_args(argv=None):
    from swinls.ablation.tables import DEFAULT_TARGET_F1S, TABLES, tables_help, target_f1s
    from swinls.cli import JobParser, add_shared

    parser = JobParser(__doc__, root=ROOT, epilog=tables_help(TABLES))
    parser.add_argument("table", metavar="TABLE", help=f"one of: {', '.join(TABLES)}")
    parser.add_argument("--seeds", type=int, default=3, metavar="N", help="trials per row and model, seeds 0..N-1")
    parser.add_argument("--rows", metavar="ROW[,ROW...]", help="the table's rows to run (default: all; see docs/ablations.md)")
    parser.add_argument("--models", metavar="MODEL[,MODEL...]", help="swinls, unet, deeplabv3 (default: the table's)")
    add_shared(parser, "--config", "--set", config=str(ROOT / "search_spaces" / "ablation.yaml"))
    data = parser.add_mutually_exclusive_group()
    data.add_argument("--preset", choices=("small", "l4s"), help="the benchmark-size synthetic data, made on first use")
    add_shared(data, "--data")
    add_shared(parser, "--storage", "--name", "--workers", "--use-gpu")
    parser.add_argument("--holdout", default="auto", metavar="auto|none|REGION[,REGION...]",
                        help="regions no trial trains on, scored as held-out F1; auto: volcanic-arc on the built-in "
                             "synthetic data, none on --data")
    parser.add_argument("--target-f1", type=target_f1s, default=DEFAULT_TARGET_F1S, metavar="F1[,F1...]",
                        help="scaling: the valid F1s the time is measured to, a column each")
    parser.add_argument("--max-concurrent", type=int, default=0, metavar="N", help="trials at once (0: what fits)")
    add_shared(parser, "--smoke-test", "--cache", "--shared-fs", "--num-cpus", "--dry-run", "--mlflow")
    parser.add_argument("--report-only", action="store_true",
                        help="write trials.csv, table.md and table.png from the trials under --name finished so far "
                             "(while it runs, or after it was stopped); train nothing, start no Ray")
    args = parser.parse_args(argv)
    if args.report_only and not args.name:
        parser.error("--report-only reports an ablation that has run: give its --name")
    return args


def main(argv=None) -> int:
    """The job; its exit status (a user error is one line on stderr and 2)."""
    from swinls.cli import run_job

    return run_job(_run, argv)


def _run(argv=None) -> int:
    args = parse_args(argv)
    from swinls import preflight, storage
    from swinls.ablation.run import SMOKE_OVERRIDES, SMOKE_SYNTHETIC_REGIONS, AblationRequest, check_request, holdout_regions
    from swinls.ablation.tables import get_table
    from swinls.config import load_yaml
    from swinls.recipes import with_recipe

    table = get_table(args.table)
    settings = with_recipe(load_yaml(args.config))
    synthetic = not args.data
    configured = (settings.get("data") or {}).get("holdout_regions")
    holdout = holdout_regions(args.holdout, synthetic=synthetic)
    # auto leaves a held-out choice of the shared settings (--config) as it is
    overrides = [] if args.holdout == "auto" and configured is not None else [f"data.holdout_regions={json.dumps(list(holdout))}"]
    if args.smoke_test:
        overrides += list(SMOKE_OVERRIDES)
        if synthetic:
            overrides.append(f"data.train_regions={json.dumps(list(SMOKE_SYNTHETIC_REGIONS))}")
    overrides += args.overrides
    if args.workers is not None:
        overrides.append(f"run.num_workers={args.workers}")
    if args.use_gpu:
        overrides.append("run.use_gpu=true")
    storage_uri = args.storage if storage.is_s3(args.storage) else str(Path(args.storage).absolute())
    preflight.check_storage(storage_uri)
    if args.report_only:
        return _report_only(args, storage_uri)
    request = AblationRequest(args.table, settings, overrides, seeds=args.seeds,
                              rows=[r.strip() for r in (args.rows or "").split(",") if r.strip()],
                              models=[m.strip() for m in (args.models or "").split(",") if m.strip()],
                              target_f1s=args.target_f1, max_concurrent=args.max_concurrent)
    configs = check_request(request)  # rows, models and every trial's config, before any data or Ray
    run, count = configs[0].run, len(configs)
    if args.data:
        preflight.check_data(args.data, configs[0])
    preflight.check_devices(run.use_gpu, run.num_workers * run.gpus_per_worker)
    name = args.name or f"ablate-{args.table}-{time.strftime('%Y%m%d-%H%M%S')}"
    held = f"held out: {', '.join(configs[0].data.holdout_regions) or 'no region'}"
    if args.dry_run:
        from dataclasses import replace

        from swinls.dry_run import plan

        data = args.data or (f"the {args.preset} preset" if args.preset else "the built-in synthetic dataset")
        headline = f"dry run: {table.name}, {count} trials on {data} ({held}), under {storage.join(storage_uri, name)}"
        config = replace(configs[0], data=replace(configs[0].data, uri=args.data)) if args.data else configs[0]
        for line in plan(config, headline=headline, storage_uri=storage_uri, trials=count, show_recipe=False):
            print(line)
        return 0
    print(f"{table.name}: {count} trials; {held}", flush=True)
    import os

    from swinls.ablation.run import run_ablation
    from swinls.cli import quiet_bookkeeping
    from swinls.ray_start import check_placeable, init_local_ray
    from swinls.reachable import check_reachable, current_cluster, pretrained_path

    quiet_bookkeeping()
    local = not os.environ.get("RAY_ADDRESS")
    init_local_ray(training_workers=run.num_workers, num_cpus=args.num_cpus, log_to_driver=False)
    check_placeable(run, "each trial")
    cluster = current_cluster()
    check_reachable({"--storage": storage_uri, "--data": args.data or configs[0].data.uri,
                     "model.pretrained": pretrained_path(configs[0].model.pretrained)}, cluster, args.shared_fs)
    publish_to = storage_uri if cluster.multi_node else None  # the preset or built-in data, for every node
    if args.preset:
        from swinls.defaults import preset_dataset

        request.overrides.append(f"data.uri={preset_dataset(args.preset, args.cache, publish_to=publish_to)}")
    elif args.data or not settings.get("data", {}).get("uri"):
        from swinls.defaults import default_dataset

        request.overrides.append(f"data.uri={args.data or default_dataset(args.cache, publish_to=publish_to)}")
    tracker = _tracker(args.mlflow, table.name, name, storage.join(storage_uri, name), count)
    try:
        outputs = run_ablation(request, storage_uri=storage_uri, name=name, local_cores=(os.cpu_count() or 1) if local else None,
                               tracking=(tracker.uri, tracker.run_id) if tracker and tracker.active else None)
    except BaseException:
        if tracker:
            tracker.finish("FAILED")
        raise
    if tracker:
        from swinls.tracking.trials import log_files

        log_files(tracker, outputs.uris)
        tracker.finish()
    print()
    print(outputs.markdown)
    for label, uri in outputs.uris.items():
        print(f"{label}: {uri}")
    incomplete = [r["trial"] for r in outputs.records if r["status"] != "complete"]
    if incomplete:
        print(f"not finished: {', '.join(incomplete)} (rerun with --name {name} to continue them)", file=sys.stderr)
        return 1
    return 0


def _report_only(args, storage_uri: str) -> int:
    from swinls.ablation.run import report_ablation

    outputs = report_ablation(args.table, storage_uri=storage_uri, name=args.name, target_f1s=tuple(args.target_f1))
    print(outputs.markdown)
    for label, uri in outputs.uris.items():
        print(f"{label}: {uri}")
    unfinished = [r["trial"] for r in outputs.records if r["status"] != "complete"]
    if unfinished:
        print(f"not finished, in no mean: {', '.join(unfinished)} (rerun without --report-only to train them)")
    return 0


def _tracker(flag, table: str, name: str, exp_uri: str, trials: int):
    """The table's MLflow run (each trial a child run of it), when a tracking server is given."""
    from swinls.ablation.trial import ABLATION_EXPERIMENT
    from swinls.tracking.mlflow_run import shown, start_tracking

    tracker = start_tracking(flag, ABLATION_EXPERIMENT, name, params={"table": table, "trials": str(trials)},
                             tags={"swinls.job": "ablate", "swinls.experiment_uri": exp_uri})
    if tracker and tracker.active:
        print(f"tracking: MLflow run {tracker.run_id} at {shown(tracker.uri)} (a child run per trial)", flush=True)
    return tracker


if __name__ == "__main__":
    sys.exit(main())
