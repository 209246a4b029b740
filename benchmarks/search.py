"""Search efficiency: Optuna (TPE) with ASHA early stopping against random search, in trial-epochs.

    python benchmarks/search.py [--seeds 0 1 … 9] [--random-samples 8] [--max-samples 24] [--startup-trials 4]
                                [--scheduler-metric valid_ap] [--scope last-3-avg]
                                [--stage1-epochs 11]

On the built-in synthetic dataset (volcanic-arc held out), with the same space and the real
`run_search` (Ray Tune, one Ray Train run per trial), for each seed:

1. random search: `--random-samples` trials, every one trained whole (no early stopping); its
   budget is samples × epochs per trial and its best score is the target;
2. Optuna + ASHA, trials run one after another, until a complete trial reaches the target (or
   `--max-samples` trials). Its cost is the trial-epochs spent until then, stopped trials included.
   ASHA stops trials by `--scheduler-metric` (average precision by default; `valid_f1` is 0 for
   most trials after one epoch), Optuna optimises the score.

A trial's score is valid F1 over `--scope`: `last` is the final epoch's, `last-3-avg` (default)
the mean of the final three, which one lucky epoch cannot decide (both searches use the same).

The two samplers draw from independent seeds (TPE's startup draws would otherwise replay random
search's first trials), and trials are deterministic (`data.deterministic`, one `run.seed`): a
configuration scores the same in both searches, so "reached" means found, not re-rolled.

Prints both per seed and the ratio of trial-epochs (target: at most 0.5), and the null it is
measured against: a second random search reaches the best of n draws within n/2 trials with
probability 1/3 (the best of all 1.5 n draws is equally likely to be any of them), so it prints
how likely that many seeds at or under 0.5 would be by chance. Trials run one at a time
so "until then" is well defined; on more cores the same holds per scheduler decision.
"""

from __future__ import annotations

import argparse
import math
import statistics
import tempfile
import time
from pathlib import Path

import yaml

from swinls.ray_start import init_local_ray
from swinls.defaults import default_dataset
from swinls.search.experiment import run_search

SPACE = {
    "metric": "valid_f1",
    "mode": "max",
    "resources": {"num_workers": 1, "cpus_per_worker": 1, "driver_cpus": 1},
    "base": {
        "data": {"batch_size": 8, "holdout_regions": ["volcanic-arc"]},
        "recipe": "tiny",  # the nano Swin (platform/swinls/recipes/tiny.yaml)
        "stage1": {"epochs": 11},  # 12-epoch trials: ASHA (grace 1, factor 3) gets rungs at 1, 3 and 9
        "stage2": {"epochs": 1, "lr": 1.0e-5},
        "selftrain": {"rounds": 0},
        "run": {"keep_checkpoints": 1},
    },
    "parameters": {
        "stage1.lr": {"low": 1.0e-5, "high": 1.0e-2, "log": True},
        "data.bands": {"choices": ["RGB", "NGB", "RGB+NIR", "SWIR", "ALL"]},
        "stage1.loss.lovasz": {"low": 0.0, "high": 1.0},
        "stage1.loss.image": {"low": 0.0, "high": 1.0},
    },
}


def space_text(samples: int, sampler, scheduler: dict, scope: str, stage1_epochs: int) -> str:
    base = dict(SPACE["base"], stage1={"epochs": stage1_epochs})
    space = dict(SPACE, base=base, scope=scope, budget={"samples": samples, "max_concurrent": 1}, sampler=sampler,
                 scheduler=scheduler)
    return yaml.safe_dump(space, sort_keys=False)


def chronological(trials: list[dict]) -> list[dict]:
    return sorted(trials, key=lambda t: t["started"])


def search(work: Path, name: str, text: str, data: str, seed: int, stop_at: float | None = None) -> list[dict]:
    """The ranked trials of a finished search in `work`, or of a new one (a cut-short benchmark
    run keeps the seeds it finished)."""
    import ray.tune

    from swinls.search.experiment import rank_trials, run_trial
    from swinls.search.space import parse_space

    state = work / name / "tune" / name
    if state.exists():
        space = parse_space(text)
        results = ray.tune.Tuner.restore(str(state), trainable=run_trial).get_results()
        return rank_trials(results, space)
    return run_search(text, data_uri=data, storage_uri=str(work), name=name, seed=seed, verbose=0, stop_at=stop_at).trials


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, nargs="+", default=list(range(10)))
    parser.add_argument("--random-samples", type=int, default=8)
    parser.add_argument("--max-samples", type=int, default=24, help="Optuna's cap if it never reaches the target")
    parser.add_argument("--grace-period", type=int, default=1)
    parser.add_argument("--reduction-factor", type=int, default=3)
    parser.add_argument("--startup-trials", type=int, default=4, help="TPE's random draws before it models")
    parser.add_argument("--scheduler-metric", default="valid_ap", help="what ASHA compares trials by")
    parser.add_argument("--scope", default="last-3-avg", help="a trial's score: last, or last-N-avg epochs of valid F1")
    parser.add_argument("--stage1-epochs", type=int, default=SPACE["base"]["stage1"]["epochs"],
                        help="epochs of stage 1 per trial (stage 2 adds one); longer trials give ASHA more rungs")
    parser.add_argument("--workdir", help="keeps finished searches: a rerun reuses them")
    args = parser.parse_args()
    work = Path(args.workdir or tempfile.mkdtemp(prefix="search-bench-"))
    data = default_dataset()
    init_local_ray(training_workers=1, log_to_driver=False)
    epochs_per_trial = args.stage1_epochs + SPACE["base"]["stage2"]["epochs"]
    tag = f"e{epochs_per_trial}-{args.scope}"
    rows = []
    for seed in args.seeds:
        start = time.perf_counter()
        random = search(work, f"random-{tag}-{seed}",
                        space_text(args.random_samples, "random", {"type": "none"}, args.scope, args.stage1_epochs),
                        data, seed)
        complete = [t for t in random if t["status"] == "complete"]
        target = max(t["value"] for t in complete)
        budget = sum(t["epochs"] or 0 for t in random)
        random_minutes = (time.perf_counter() - start) / 60
        start = time.perf_counter()
        scheduler = {"type": "asha", "grace_period": args.grace_period, "reduction_factor": args.reduction_factor,
                     "metric": args.scheduler_metric}
        tpe = {"type": "tpe", "startup_trials": args.startup_trials}
        tuned = search(work, f"optuna-asha-g{args.grace_period}r{args.reduction_factor}-{args.scheduler_metric}-{tag}-{seed}",
                       space_text(args.max_samples, tpe, scheduler, args.scope, args.stage1_epochs), data, seed + 1000, target)
        spent, reached_at = 0, None
        for i, trial in enumerate(chronological(tuned), start=1):
            spent += trial["epochs"] or 0
            if trial["status"] == "complete" and trial["value"] >= target:
                reached_at = (i, spent)
                break
        pruned = sum(t["status"] == "pruned" for t in tuned)
        rows.append((seed, budget, target, reached_at, spent, len(tuned), pruned))
        print(f"seed {seed}: random {len(random)} trials × {epochs_per_trial} epochs = {budget} trial-epochs, "
              f"best score ({args.scope} valid F1) {target:.4f} ({random_minutes:.1f} min); Optuna+ASHA "
              + (f"reached it at trial {reached_at[0]} after {reached_at[1]} trial-epochs" if reached_at
                 else f"did not reach it in {len(tuned)} trials / {spent} trial-epochs")
              + f", {pruned} trials stopped early ({(time.perf_counter() - start) / 60:.1f} min)", flush=True)
    print(f"\nscore: {args.scope} valid F1; ASHA stops by {args.scheduler_metric}, grace period {args.grace_period}, "
          f"reduction factor {args.reduction_factor}")
    print("\n| seed | random: trial-epochs | random: best score | Optuna+ASHA: trial-epochs to reach it | ratio |")
    print("|---:|---:|---:|---:|---:|")
    ratios = []
    for seed, budget, target, reached_at, spent, _, _ in rows:
        ratio = (reached_at[1] if reached_at else spent) / budget
        ratios.append(ratio)
        print(f"| {seed} | {budget} | {target:.4f} | {reached_at[1] if reached_at else f'not reached ({spent})'} | "
              f"{ratio:.2f}{'' if reached_at else ' (lower bound)'} |")
    reached = [row[3] is not None for row in rows]
    hits = sum(r <= 0.5 and found for r, found in zip(ratios, reached))
    bound = "" if all(reached) else "≥ "
    print(f"\nratio: mean {bound}{statistics.mean(ratios):.2f}, median {statistics.median(ratios):.2f} (target ≤ 0.5); "
          f"at most 0.5 on {hits} of {len(rows)} seeds; Optuna+ASHA reached random search's "
          f"best on {sum(reached)} of {len(rows)}")
    half = args.random_samples // 2
    chance = fresh_random_reaches(args.random_samples, half)
    print(f"null: a second random search reaches the best of {args.random_samples} draws within {half} trials "
          f"(ratio {half / args.random_samples:.2f}) with probability {chance:.2f}, "
          f"so {hits} or more of {len(rows)} seeds by chance: p = {at_least(hits, len(rows), chance):.4f}")


def fresh_random_reaches(best_of: int, within: int) -> float:
    """Chance that the best of `within` new draws beats the best of `best_of` earlier ones, for
    exchangeable draws without ties: the overall best is equally likely to be any of them."""
    return within / (best_of + within)


def at_least(hits: int, trials: int, chance: float) -> float:
    """Binomial upper tail P(X >= hits)."""
    return sum(math.comb(trials, k) * chance**k * (1 - chance) ** (trials - k) for k in range(hits, trials + 1))


if __name__ == "__main__":
    main()
