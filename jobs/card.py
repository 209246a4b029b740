"""Show a published model's card: bands and their order, normalisation, trained regions, the
data manifest, the decision threshold and the metrics after each phase.

    python jobs/card.py MODEL [--json]

Examples:
    python jobs/card.py runs/smoke-20261124-230707/best
    python jobs/card.py s3://my-bucket/experiments/paper-axes/best/versions/fc7f63bb207a40b8 --json

MODEL is named as jobs/predict.py takes it: an experiment's best/ (or the experiment itself), a
versions/<id>/ folder or its model.pt, a registry's champion/; local or s3://. Only the card is
read, not the weights.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "platform"))  # the package beside this job (ray job submit's copy), not an installed one


def parse_args(argv=None) -> argparse.Namespace:
    from swinls.cli import JobParser

    parser = JobParser(__doc__)
    parser.add_argument("model", metavar="MODEL")
    parser.add_argument("--json", action="store_true", help="print the card as stored (JSON)")
    return parser.parse_args(argv)


def main(argv=None) -> int:
    """The job; its exit status (a user error is one line on stderr and 2)."""
    from swinls.cli import run_job

    return run_job(_run, argv)


def _run(argv=None) -> int:
    args = parse_args(argv)
    from swinls.card_view import describe_card
    from swinls.published import read_card

    card, version_uri = read_card(args.model)
    try:
        lines = [json.dumps(card.to_dict(), indent=1, sort_keys=True)] if args.json else describe_card(card, version_uri)
    except KeyError as exc:
        print(f"error: {args.model}: the model card lacks {exc}", file=sys.stderr)
        return 2
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
