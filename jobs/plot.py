"""Draw a run's learning curves again from what it recorded: loss, F1 and AP per epoch (train,
valid, held out), the phases marked.

    python jobs/plot.py RUN [--out PNG]

RUN     a run folder or s3:// prefix (what `jobs/train.py` printed as the final checkpoint's run;
        a search's trial: <experiment>/trials/<id>)
--out   where to write the PNG (default: RUN/curves.png, which every run writes when it ends)

Examples:
    python jobs/plot.py runs/smoke-20261205-101500
    python jobs/plot.py s3://my-bucket/experiments/paper/trials/3f2a9c0d --out trial.png
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "platform"))  # the package beside this job (ray job submit's copy), not an installed one


def parse_args(argv=None):
    from swinls.cli import JobParser

    parser = JobParser(__doc__, root=ROOT)
    parser.add_argument("run", metavar="RUN")
    parser.add_argument("--out", metavar="PNG", help="where to write the picture (default: RUN/curves.png)")
    return parser.parse_args(argv)


def main(argv=None) -> int:
    """The job; its exit status (a user error is one line on stderr and 2)."""
    from swinls.cli import run_job

    return run_job(_run, argv)


def _run(argv=None) -> int:
    args = parse_args(argv)
    from swinls import storage
    from swinls.checkpoints import RunStore
    from swinls.errors import SourceError
    from swinls.tracking.curves import curves_png, write_curves

    pointer = RunStore(args.run).latest()
    if not pointer or not pointer.get("history"):
        raise SourceError(args.run, "no run with a recorded epoch here (a run folder holds checkpoints/LATEST.json)")
    history = pointer["history"]
    title = args.run.rstrip("/").rsplit("/", 1)[-1]
    if args.out:
        storage.write_bytes_atomic(args.out, curves_png(history, title))
        written = args.out
    else:
        written = write_curves(history, args.run, title)
    print(f"{written}: {len(history)} epochs ({', '.join(dict.fromkeys(h['phase'] for h in history))})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
