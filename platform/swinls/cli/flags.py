"""Flags that mean the same in every job that takes them. A job names the ones it takes; their
spelling, help and defaults come from here, so `--use-gpu` or `--storage` cannot drift apart
between jobs (tests/test_job_flags.py reads every job's --help to hold them to it).

Defaults that are folders live under the project folder (the parser's `root`: the checkout the
job was started from), not under whatever folder the shell happened to be in.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

from swinls.cli.parser import JobParser


@dataclass(frozen=True)
class SharedFlag:
    name: str
    help: str
    kwargs: dict = field(default_factory=dict)
    default: Callable[[JobParser], Any] | None = None  # from the parser (its root), when the flag has one


SHARED_FLAGS: dict[str, SharedFlag] = {flag.name: flag for flag in (
    SharedFlag("--config", "experiment config YAML (its keys: docs/config.md)", {"metavar": "YAML"}),
    SharedFlag("--recipe", "a shipped recipe by name, e.g. paper or laptop (all of them: docs/recipes.md), "
               "under --config and --set", {"metavar": "NAME"}),
    SharedFlag("--set", "override one experiment config key, e.g. --set model.size=tiny (repeatable)",
               {"dest": "overrides", "action": "append", "default": [], "metavar": "KEY=VALUE"}),
    SharedFlag("--data", "shard dataset: a folder or s3://bucket/prefix holding manifest.json "
               "(default: the built-in synthetic dataset, made under --cache on first use)", {"metavar": "URI"}),
    SharedFlag("--storage", "where runs and experiments are kept: a folder or s3://bucket/prefix", {"metavar": "URI"},
               default=lambda parser: str(parser.root / "runs")),
    SharedFlag("--name", "the run's or experiment's name; the same name again resumes it", {"metavar": "NAME"}),
    SharedFlag("--cache", "where the built-in synthetic dataset is generated and kept", {"metavar": "DIR"},
               default=lambda parser: str(parser.root / ".cache")),
    SharedFlag("--workers", "Ray Train workers per training run (DDP)", {"type": int, "metavar": "N"}),
    SharedFlag("--use-gpu", "train or predict on CUDA GPUs (one per worker unless a share is set)", {"action": "store_true"}),
    SharedFlag("--local", "train in this process, without Ray", {"action": "store_true"}),
    SharedFlag("--dry-run", "check every input (data, config, space, storage, devices), print the plan, start nothing",
               {"action": "store_true"}),
    SharedFlag("--num-cpus", "logical CPUs of a local Ray (default: cores + 2, room for Ray Data beside training)",
               {"type": int, "metavar": "N"}),
    SharedFlag("--shared-fs", "a folder every node of the cluster mounts (NFS, EFS): local paths under it are allowed "
               "on a multi-node cluster, where any other local path is refused", {"metavar": "PATH"}),
    SharedFlag("--mlflow", "an MLflow tracking server to log to (default: $MLFLOW_TRACKING_URI; off when neither is "
               "set; needs pip install -e '.[tracking]')", {"metavar": "URI"}),
    SharedFlag("--smoke-test", "the tiny recipe: a nano Swin, an epoch or two per stage (minutes on a laptop)",
               {"action": "store_true"}),
)}


def add_shared(parser: JobParser, *names: str, **defaults: Any) -> None:
    """Add the shared flags `names` to `parser`; `defaults` (by dest, e.g. config=...) replace a
    flag's default for this job without changing what it means."""
    for name in names:
        flag = SHARED_FLAGS[name]
        kwargs = dict(flag.kwargs)
        dest = kwargs.get("dest", name.lstrip("-").replace("-", "_"))
        if dest in defaults:
            kwargs["default"] = defaults[dest]
        elif flag.default is not None:
            kwargs["default"] = flag.default(parser)
        parser.add_argument(name, help=flag.help, **kwargs)

