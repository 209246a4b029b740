"""Two rows of finished ablations compared from their trials.csv files, paired by seed, the files
written as the job writes them."""

import math

import pytest

from swinls.ablation import compare
from swinls.ablation.report import csv_text
from swinls.ablation.tables import AblationError


def trials(values: dict[str, list[float]], holdout: dict[str, list[float]] | None = None,
           model: str = "swinls") -> list[dict]:
    out = []
    for row, scores in values.items():
        for seed, score in enumerate(scores):
            record = {"trial": f"{row}--{model}--s{seed}", "row": row, "model": model, "seed": seed,
                      "status": "complete", "epochs": 12, "valid_f1": score}
            if holdout:
                record["holdout_f1"] = holdout[row][seed]
            out.append(record)
    return out


def write(path, records):
    path.write_text(csv_text(records))
    return str(path)


def test_rows_of_two_tables_pair_by_seed_and_an_undefined_score_drops_its_pair(tmp_path, capsys):
    balance = write(tmp_path / "balance.csv", trials({"ce": [0.60, 0.70, 0.65], "balanced": [0.70, 0.76, 0.73]},
                                                     holdout={"ce": [0.1, 0.2, math.nan], "balanced": [0.2, 0.1, 0.3]}))
    augment = write(tmp_path / "augment.csv", trials({"none": [0.50, 0.66, 0.55]}))
    records = [r for uri in (balance, augment) for r in compare.read_trials(uri)]
    assert {type(r["seed"]) for r in records} == {int} and math.isnan(records[2]["holdout_f1"])

    found = compare.compare(records, [("balanced", "ce"), ("ce", "none")], ["valid_f1"])
    by_pair = {(d.row, d.reference): d for d in found}
    assert by_pair["balanced", "ce"].mean == pytest.approx(0.08) and by_pair["balanced", "ce"].pairs == 3
    assert by_pair["ce", "none"].mean == pytest.approx(0.08)
    # gains 0.10, 0.06, 0.08: mean 0.08, sd 0.02, the interval 0.030 to 0.130
    assert by_pair["balanced", "ce"].verdict() == "higher"

    held_out = compare.compare(records, [("balanced", "ce")], ["holdout_f1"])[0]
    assert held_out.pairs == 2 and held_out.mean == pytest.approx(0.0)

    assert compare.main([balance, augment, "--pair", "balanced:ce", "--metric", "valid_f1", "--metric", "holdout_f1"]) == 0
    out = capsys.readouterr().out
    assert "| swinls | balanced − ce | valid_f1 | +0.080 | +0.030 to +0.130 | 3 | higher |" in out
    assert "| swinls | balanced − ce | holdout_f1 | +0.000 |" in out and "not resolved" in out


def test_an_unknown_row_model_or_metric_and_a_foreign_csv_are_named(tmp_path, capsys):
    balance = write(tmp_path / "balance.csv", trials({"ce": [0.6, 0.7], "focal": [0.6, 0.6]}))
    records = compare.read_trials(balance)
    with pytest.raises(AblationError, match=r"no row 'focl' \(did you mean 'focal'\?\); valid: ce, focal"):
        compare.compare(records, [("focl", "ce")], ["valid_f1"])
    with pytest.raises(AblationError, match="no model 'unet'"):
        compare.compare(records, [("focal", "ce")], ["valid_f1"], ["unet"])
    with pytest.raises(AblationError, match=r"no metric 'holdout_f1'.*valid: epochs, valid_f1"):
        compare.compare(records, [("focal", "ce")], ["holdout_f1"])
    with pytest.raises(AblationError, match=r"no metric 'valid_f2' \(did you mean 'valid_f1'\?\)"):
        compare.compare(records, [("focal", "ce")], ["valid_f2"])

    other = tmp_path / "metrics.csv"
    other.write_text("epoch,valid_f1\n1,0.5\n")
    assert compare.main([str(other), "--pair", "focal:ce"]) == 2
    assert f"{other}: not an ablation's trials.csv (no column row, model, seed, status)" in capsys.readouterr().err
    assert compare.main([str(tmp_path / "gone.csv"), "--pair", "focal:ce"]) == 2
    assert "gone.csv: no such file or object" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        compare.main([balance, "--pair", "focal"])
    assert "'focal' is not ROW:REFERENCE" in capsys.readouterr().err


def test_two_models_on_each_row_both_hold_pair_by_seed(tmp_path, capsys):
    records = trials({"ce": [0.70, 0.72, 0.00], "wce": [0.66, 0.65, 0.64], "focal": [0.6, 0.6, 0.6]})
    records += trials({"ce": [0.60, 0.61, 0.50], "wce": [0.60, 0.58, 0.59]}, model="unet")
    uri = write(tmp_path / "balance.csv", records)

    found = compare.compare(compare.read_trials(uri), [], ["valid_f1"], versus=[("swinls", "unet")])
    by_row = {d.row: d for d in found}
    assert set(by_row) == {"ce", "wce"}  # focal has no U-Net trial: no pair to make
    assert by_row["wce"].mean == pytest.approx(0.06) and by_row["wce"].verdict() == "higher"  # +0.06, +0.07, +0.05
    assert by_row["ce"].mean == pytest.approx(-0.29 / 3) and not by_row["ce"].resolved  # seed 2 collapsed

    assert compare.main([uri, "--versus", "swinls:unet", "--pair", "wce:ce", "--model", "unet"]) == 0
    out = capsys.readouterr().out
    assert "| unet | wce − ce | valid_f1 | +0.020 |" in out and "| swinls | wce − ce |" not in out
    assert "| swinls − unet | wce | valid_f1 | +0.060 | +0.035 to +0.085 | 3 | higher |" in out

    with pytest.raises(AblationError, match=r"no model 'deeplabv3'.*valid: swinls, unet"):
        compare.compare(compare.read_trials(uri), [], ["valid_f1"], versus=[("swinls", "deeplabv3")])
    with pytest.raises(AblationError, match="no row of the trials.csv holds both swinls and unet"):
        compare.compare(trials({"ce": [0.7]}) + trials({"wce": [0.6]}, model="unet"), [], ["valid_f1"],
                        versus=[("swinls", "unet")])
    with pytest.raises(SystemExit):
        compare.main([uri])
    assert "give at least one --pair ROW:REFERENCE or --versus MODEL:REFERENCE_MODEL" in capsys.readouterr().err


def test_a_pair_whose_sides_name_their_models_pairs_differently_named_rows_by_seed(tmp_path, capsys):
    """Table 1's RGB is SwinLS's flips-only row of Table 2 (`none`) but a row of its own for the
    U-Net: the two models on RGB are `none@swinls:rgb@unet`; `none@unet` is another band set."""
    augment = write(tmp_path / "augment.csv", trials({"none": [0.70, 0.66, 0.68]})
                    + trials({"none": [0.90, 0.90, 0.90]}, model="unet"))
    bands = write(tmp_path / "bands.csv", trials({"rgb": [0.60, 0.60, 0.62]}, model="unet"))
    records = [r for uri in (augment, bands) for r in compare.read_trials(uri)]

    across, = compare.compare(records, [("none@swinls", "rgb@unet")], ["valid_f1"])
    assert (across.model, across.row, across.reference, across.reference_model) == ("swinls", "none", "rgb", "unet")
    assert across.mean == pytest.approx(0.0733, abs=1e-4) and across.pairs == 3 and across.verdict() == "higher"
    one_side, = compare.compare(records, [("none@unet", "rgb")], ["valid_f1"])  # the plain side takes the named model
    assert (one_side.model, one_side.reference_model, one_side.mean) == ("unet", "", pytest.approx(0.2933, abs=1e-4))
    assert len(compare.compare(records, [("none", "rgb")], ["valid_f1"])) == 2  # unqualified: each model held

    assert compare.main([augment, bands, "--pair", "none@swinls:rgb@unet"]) == 0
    assert "| swinls − unet | none@swinls − rgb@unet | valid_f1 | +0.073 |" in capsys.readouterr().out
    with pytest.raises(AblationError, match="no model 'deeplabv3'"):
        compare.compare(records, [("none@deeplabv3", "rgb@unet")], ["valid_f1"])
    with pytest.raises(SystemExit):
        compare.main([augment, "--pair", "none@:rgb"])
    assert "ROW@MODEL:REFERENCE@MODEL" in capsys.readouterr().err
