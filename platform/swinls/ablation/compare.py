"""Any two rows of finished ablations compared, paired by seed, from their trials.csv files.

`table.md` compares every row with its table's reference row; a sentence that compares two other
rows (the two stages against CE + Lovász) or rows of two tables (Table 2's flips only against
Table 3's plain CE, whose trials share seeds) needs its own interval:

    python -m swinls.ablation.compare runs/balance/trials.csv --pair balanced:lovasz --pair wce:ce \\
        --metric valid_f1 --metric holdout_f1
    python -m swinls.ablation.compare runs/augment/trials.csv runs/balance/trials.csv --pair ce:none

and a sentence that compares two models on a row (SwinLS against the U-Net) needs `--versus`:

    python -m swinls.ablation.compare runs/balance/trials.csv --versus swinls:unet --metric valid_f1

and two models on rows named differently (Table 1's RGB is SwinLS's flips-only row of Table 2 but
a row of its own for the U-Net) a pair whose sides name their model, ROW@MODEL:

    python -m swinls.ablation.compare runs/augment/trials.csv runs/bands/trials.csv --pair none@swinls:rgb@unet

Each CSV is a path or a URI (s3://…); their trials are pooled, so a row name must mean one
configuration across them. A pair's verdict is `differences.paired`'s: "not resolved" where the
95 % interval spans 0.
"""

from __future__ import annotations

import argparse
import csv
import io
import math
import sys

from swinls import storage
from swinls.ablation import differences
from swinls.ablation.tables import AblationError, unknown

KEYS = ("row", "model", "seed", "status")


def read_trials(uri: str) -> list[dict]:
    """A trials.csv's records with numbers parsed (an empty cell is an undefined score)."""
    text = storage.read_bytes(uri).decode()
    reader = csv.DictReader(io.StringIO(text))
    missing = [k for k in KEYS if k not in (reader.fieldnames or [])]
    if missing:
        raise AblationError(f"{uri}: not an ablation's trials.csv (no column {', '.join(missing)})")
    records = []
    for line, raw in enumerate(reader, start=2):
        record = {k: raw[k] for k in KEYS}
        try:
            record["seed"] = int(raw["seed"])
        except ValueError:
            raise AblationError(f"{uri}, line {line}: seed {raw['seed']!r} is not an integer") from None
        for key, value in raw.items():
            if key not in record and key != "trial":
                record[key] = _number(value)
        records.append(record)
    return records


def _number(value: str):
    if value in ("", None):
        return math.nan
    try:
        return float(value)
    except ValueError:
        return value


def pair(text: str) -> tuple[str, str]:
    row, sep, reference = text.partition(":")
    if not sep or not row or not reference or any(side.startswith("@") or side.endswith("@") for side in (row, reference)):
        raise argparse.ArgumentTypeError(f"{text!r} is not ROW:REFERENCE, ROW@MODEL:REFERENCE@MODEL or "
                                         "MODEL:REFERENCE_MODEL (e.g. balanced:lovasz, none@swinls:rgb@unet, swinls:unet)")
    return row, reference


def _side(text: str) -> tuple[str, str | None]:
    """`ROW@MODEL` → (row, model); a plain `ROW` → (row, None)."""
    row, _, model = text.partition("@")
    return row, model or None


def compare(records: list[dict], pairs: list[tuple[str, str]], metrics: list[str],
            models: list[str] | None = None, versus: list[tuple[str, str]] = ()) -> list[differences.Difference]:
    """Every pair for every model (those the trials hold, unless named) and metric, or for the
    models a pair's sides name (ROW@MODEL; a side without one takes the other side's); then each
    `versus` pair of models on every row both hold."""
    rows = sorted({r["row"] for r in records})
    sides = [(_side(row), _side(reference)) for row, reference in pairs]
    for name in {name for p in sides for name, _ in p}:
        if name not in rows:
            raise AblationError(unknown("row", name, rows, "the trials.csv"))
    held = sorted({r["model"] for r in records})
    named = [model for p in sides for _, model in p if model]
    for model in [*(models or ()), *named, *(m for v in versus for m in v)]:
        if model not in held:
            raise AblationError(unknown("model", model, held, "the trials.csv"))
    columns = sorted({key for record in records for key in record} - set(KEYS))
    for metric in metrics:
        if metric not in columns:
            raise AblationError(unknown("metric", metric, columns, "the trials.csv"))
    found = []
    for metric in metrics:
        for (row, model), (reference, reference_model) in sides:
            if model or reference_model:
                model, reference_model = model or reference_model, reference_model or model
                found.append(differences.paired(records, model, row, reference, metric,
                                                reference_model="" if model == reference_model else reference_model))
            else:
                found += [differences.paired(records, m, row, reference, metric) for m in (models or held)]
    for model, other in versus:
        shared = [row for row in rows if {model, other} <= {r["model"] for r in records if r["row"] == row}]
        if not shared:
            raise AblationError(f"no row of the trials.csv holds both {model} and {other}")
        found += [differences.paired(records, model, row, row, metric, reference_model=other)
                  for metric in metrics for row in shared]
    return found


def markdown(found: list[differences.Difference]) -> str:
    lines = ["| model | comparison | metric | difference | 95 % interval | seeds | resolved? |",
             "| --- | --- | --- | ---: | ---: | ---: | --- |"]
    for d in found:
        mean, interval = d.figures()
        if d.across_models and d.row != d.reference:
            model, rows = f"{d.model} − {d.reference_model}", f"{d.row}@{d.model} − {d.reference}@{d.reference_model}"
        elif d.across_models:
            model, rows = f"{d.model} − {d.reference_model}", d.row
        else:
            model, rows = d.model, f"{d.row} − {d.reference}"
        lines.append(f"| {model} | {rows} | {d.metric} | {mean} | {interval} | {d.pairs} | {d.verdict()} |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m swinls.ablation.compare", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("trials", nargs="+", metavar="TRIALS_CSV", help="an ablation's trials.csv (path or URI)")
    parser.add_argument("--pair", type=pair, action="append", default=[], metavar="ROW:REFERENCE",
                        help="ROW − REFERENCE for each model, paired by seed; ROW@MODEL:REFERENCE@MODEL for the "
                             "models named (repeatable)")
    parser.add_argument("--versus", type=pair, action="append", default=[], metavar="MODEL:REFERENCE_MODEL",
                        help="MODEL − REFERENCE_MODEL on every row both hold, paired by seed (repeatable)")
    parser.add_argument("--metric", action="append", metavar="METRIC",
                        help="a trials.csv column, e.g. valid_f1, holdout_f1 (repeatable; default valid_f1)")
    parser.add_argument("--model", action="append", metavar="MODEL", help="swinls, unet, deeplabv3 (default: all held)")
    args = parser.parse_args(argv)
    if not args.pair and not args.versus:
        parser.error("give at least one --pair ROW:REFERENCE or --versus MODEL:REFERENCE_MODEL")
    try:
        records = [r for uri in args.trials for r in read_trials(uri)]
        found = compare(records, args.pair, args.metric or ["valid_f1"], args.model, args.versus)
    except (AblationError, FileNotFoundError) as exc:
        print(f"compare: {exc}", file=sys.stderr)
        return 2
    print(markdown(found), end="")
    return 0


if __name__ == "__main__":
    sys.exit(main())
