"""The paper's four ablation tables and a scaling study, as rows of config overrides.

Every row trains from the shared settings (`jobs/ablate.py --config`, `--set`) with the row's own
overrides, once per model of the table and per seed. The recipes follow the paper's text:

- Table 1 (bands) and Table 2 (augment) are "normal training": one stage, plain cross entropy,
  no self-training; Table 1 with random flips only, Table 2 with flips plus each transform.
- Table 3 (balance) adds rotate+shift (the paper's baseline there is Table 2's best) and varies
  the loss; "balanced" is the two stages: weighted CE + Lovász + image-level loss, then a frozen
  encoder and plain CE.
- Table 4 (selftrain) is balanced training, then one round of self-training at A %.
- The paper's U-Net in Tables 2 and 3 reads all 14 bands; here too.
- scaling: one trial per number of Ray Train workers (those the cluster can hold) and per Swin
  size, reporting training throughput and the time to a fixed validation F1.
"""

from __future__ import annotations

from swinls.errors import SwinLSError

import difflib
from dataclasses import dataclass, field


class AblationError(SwinLSError, ValueError):
    pass


ONE_STAGE_CE = ["stage1.loss.ce=1", "stage1.loss.wce=0", "stage1.loss.lovasz=0", "stage1.loss.image=0",
                "stage2.epochs=0", "selftrain.rounds=0"]
FLIPS_ONLY = ["data.augment.flip=0.5", "data.augment.rotate_shift=0", "data.augment.color=0",
              "data.augment.cutout=0", "data.augment.cutmix=0"]
ROTATE_SHIFT = FLIPS_ONLY[:1] + ["data.augment.rotate_shift=0.5"] + FLIPS_ONLY[2:]
BALANCED = ["stage1.loss.ce=0", "stage1.loss.wce=1", "stage1.loss.lovasz=1", "stage1.loss.image=1"]


@dataclass(frozen=True)
class Row:
    name: str
    label: str
    overrides: tuple[str, ...]
    paper: dict = field(default_factory=dict)  # model -> F1, or metric -> value for Table 4


@dataclass(frozen=True)
class Table:
    name: str
    title: str
    rows: tuple[Row, ...]
    models: tuple[str, ...]
    # F1 at the validation-chosen threshold beside argmax F1: where the two part, the model ranks
    # pixels well but its probabilities sit on the wrong side of 0.5 (see the README's Table 3)
    metrics: tuple[str, ...] = ("valid_f1", "valid_best_f1", "holdout_f1")
    common: tuple[str, ...] = ()
    model_overrides: dict = field(default_factory=dict)  # model -> overrides only that model's trials get
    reference: str = ""  # the row every other is compared with, paired by seed (ablation/differences.py)

    def row(self, name: str) -> Row:
        for row in self.rows:
            if row.name == name:
                return row
        raise AblationError(unknown("row", name, [r.name for r in self.rows], f"table {self.name}"))

    def overrides(self, row: Row, model: str, user: list[str] = ()) -> list[str]:
        """The table's recipe, then the user's `--set` (which may change the recipe), then what
        this trial's model and row vary (which nothing overrides)."""
        return [*self.common, *user, f"model.name={model}", *self.model_overrides.get(model, ()), *row.overrides]


def unknown(kind: str, name: str, valid: list[str], where: str) -> str:
    close = difflib.get_close_matches(name, valid, n=1)
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    return f"{where} has no {kind} {name!r}{hint}; valid: {', '.join(valid)}"


def _bands() -> Table:
    paper = {"RGB": (65.6, 58.0, 59.2), "SWIR": (55.6, 50.2, 52.1), "NGB": (60.8, 59.2, 58.9), "PCA-3": (49.5, 46.8, 52.4),
             "RGB+NIR": (63.3, 57.2, 59.4), "RGB+SWIR": (58.2, 55.9, 59.8), "RGB+NIR+SWIR": (54.8, 57.5, 60.0),
             "ALL": (55.8, 57.8, 61.1)}
    models = ("swinls", "deeplabv3", "unet")
    rows = tuple(Row(name.lower().replace("+", "-"), "All 14 bands" if name == "ALL" else name, (f"data.bands={name}",),
                     dict(zip(models, figures))) for name, figures in paper.items())
    return Table("bands", "Table 1: spectral selection", rows, models, common=tuple(ONE_STAGE_CE + FLIPS_ONLY),
                 reference="rgb")


def _augment() -> Table:
    def row(name, label, extra, swin, unet):
        return Row(name, label, tuple(FLIPS_ONLY + extra), {"swinls": swin, "unet": unet})

    rows = (row("none", "None (flips only)", [], 65.6, 61.1),
            row("color", "Colour", ["data.augment.color=0.5"], 62.1, 60.3),
            row("cutout", "Cutout", ["data.augment.cutout=0.5"], 65.9, 62.1),
            row("cutmix", "Cutmix", ["data.augment.cutmix=0.5"], 66.0, 62.6),
            row("rotate-shift", "Rotate and shift", ["data.augment.rotate_shift=0.5"], 69.8, 63.7))
    return Table("augment", "Table 2: data augmentation", rows, ("swinls", "unet"), common=tuple(ONE_STAGE_CE),
                 model_overrides={"unet": ("data.bands=ALL",)}, reference="none")


def _balance() -> Table:
    one_stage = ["stage2.epochs=0", "selftrain.rounds=0"]
    weights = lambda **w: [f"stage1.loss.{k}={w.get(k, 0)}" for k in ("ce", "wce", "lovasz", "focal", "image")]  # noqa: E731
    rows = (Row("ce", "Normal training (CE)", tuple(one_stage + weights(ce=1)), {"swinls": 69.8, "unet": 63.7}),
            Row("wce", "Weighted CE", tuple(one_stage + weights(wce=1)), {"swinls": 70.8, "unet": 64.9}),
            Row("focal", "Focal loss", tuple(one_stage + weights(focal=1)), {"swinls": 68.2, "unet": 61.8}),
            Row("lovasz", "CE + Lovász", tuple(one_stage + weights(ce=1, lovasz=1)), {"swinls": 72.3, "unet": 66.4}),
            Row("balanced", "Balanced training (two stages)", tuple(BALANCED + ["selftrain.rounds=0"]),
                {"swinls": 73.9, "unet": 67.7}))
    return Table("balance", "Table 3: balanced training", rows, ("swinls", "unet"), common=tuple(ROTATE_SHIFT),
                 model_overrides={"unet": ("data.bands=ALL",)}, reference="ce")


def _selftrain() -> Table:
    rows = [Row("before", "Before self-training", ("selftrain.rounds=0",),
                {"valid_precision": 73.4, "valid_recall": 74.7, "valid_f1": 73.9}),
            # the control (not in the paper): the round's extra steps, with no pseudo-label kept
            # (A = 0 %), so a row's gain over it is what the pseudo-labels add, not more training
            Row("control", "Same extra training, no pseudo-label (A = 0 %)",
                ("selftrain.rounds=1", "selftrain.top_percent=0"), {})]
    for a, (p, r, f1) in {50: (65.2, 80.5, 72.7), 70: (69.3, 79.5, 73.7), 90: (72.4, 77.1, 74.9), 100: (78.2, 74.2, 76.1)}.items():
        rows.append(Row(f"a{a}", f"A = {a} %", ("selftrain.rounds=1", f"selftrain.top_percent={a}"),
                        {"valid_precision": p, "valid_recall": r, "valid_f1": f1}))
    return Table("selftrain", "Table 4: self-training", tuple(rows), ("swinls",),
                 metrics=("valid_precision", "valid_recall", "valid_f1", "holdout_f1"),
                 common=tuple(ROTATE_SHIFT + BALANCED), reference="control")


WORKER_COUNTS = (1, 2, 4, 8)
# the scaling table's time to valid F1, a column each: 0.3 shows the first epochs, 0.65 the last
# ones on --preset small, where the paper's recipe ends at 0.69–0.72
DEFAULT_TARGET_F1S = (0.3, 0.65)


def tables_help(tables: dict) -> str:
    """Every table's rows and models, for --help."""
    lines = ["tables, their rows (--rows) and models (--models):"]
    for table in tables.values():
        lines.append(f"  {table.name}: {table.title}")
        lines.append(f"    rows: {', '.join(row.name for row in table.rows)}")
        lines.append(f"    models: {', '.join(table.models)}")
    return "\n".join(lines)


def target_f1s(text: str) -> tuple[float, ...]:
    """--target-f1's value: comma-separated F1s in (0, 1], sorted, each once."""
    import argparse

    try:
        values = tuple(float(v) for v in text.split(",") if v.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a comma-separated list of F1 values") from None
    if not values or any(not 0 < v <= 1 for v in values):
        raise argparse.ArgumentTypeError(f"{text!r}: each target F1 must be in (0, 1]")
    return tuple(sorted(set(values)))


def _scaling() -> Table:
    rows = [Row(f"workers-{n}", f"{n} Ray Train worker{'s' if n > 1 else ''}", (f"run.num_workers={n}",)) for n in WORKER_COUNTS]
    rows += [Row(f"size-{size}", f"Swin {size}, 1 worker", (f"model.size={size}", "run.num_workers=1"))
             for size in ("proxy", "tiny", "small", "base")]
    return Table("scaling", "Scaling: Ray Train workers and model size", tuple(rows), ("swinls",),
                 metrics=("throughput", "time_to_f1", "valid_f1", "holdout_f1"),
                 common=tuple(ROTATE_SHIFT + BALANCED + ["selftrain.rounds=0"]))


TABLES: dict[str, Table] = {t.name: t for t in (_bands(), _augment(), _balance(), _selftrain(), _scaling())}


def get_table(name: str) -> Table:
    if name not in TABLES:
        raise AblationError(unknown("table", name, list(TABLES), "jobs/ablate.py"))
    return TABLES[name]


def select_rows(table: Table, names: list[str] | None) -> tuple[Row, ...]:
    """The table's rows, or the named ones (each checked), in the table's order."""
    if not names:
        return table.rows
    chosen = {table.row(name).name for name in names}
    return tuple(r for r in table.rows if r.name in chosen)


def grid(table: Table, rows: tuple[Row, ...], seeds: int, models: tuple[str, ...] | None = None) -> list[dict]:
    """Every trial of the table: a row, a model and a seed each, rows first."""
    models = models or table.models
    bad = [m for m in models if m not in table.models]
    if bad:
        raise AblationError(unknown("model", bad[0], list(table.models), f"table {table.name}"))
    return [{"row": r.name, "model": m, "seed": s} for r in rows for m in models for s in range(seeds)]
