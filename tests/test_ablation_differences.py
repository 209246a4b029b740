"""Conclusions no stronger than the seeds: each row against the table's reference, paired by seed,
with a 95 % interval, and "not resolved" where it spans 0."""

import math

import pytest

from swinls.ablation.differences import differences, markdown, paired
from swinls.ablation.tables import get_table


def records(values: dict[str, list[float]], model: str = "swinls") -> list[dict]:
    return [{"row": row, "model": model, "seed": seed, "status": "complete", "valid_f1": v}
            for row, vs in values.items() for seed, v in enumerate(vs)]


def test_a_consistent_gain_is_resolved_with_students_interval():
    found = paired(records({"control": [0.50, 0.60, 0.40], "a100": [0.54, 0.65, 0.46]}), "swinls", "a100", "control")
    # per-seed gains 0.04, 0.05, 0.06: mean 0.05, sd 0.01, t(0.975, 2) = 4.303
    half = 4.302653 * 0.01 / math.sqrt(3)
    assert found.mean == pytest.approx(0.05) and (found.low, found.high) == pytest.approx((0.05 - half, 0.05 + half))
    assert found.resolved and found.verdict() == "higher" and found.pairs == 3


def test_means_a_std_apart_are_not_resolved_and_unpaired_seeds_do_not_count():
    # means differ by 0.02 with differences of both signs: the interval spans 0
    data = records({"ce": [0.60, 0.50, 0.70], "wce": [0.65, 0.48, 0.73]})
    data.append({"row": "wce", "model": "swinls", "seed": 7, "status": "complete", "valid_f1": 0.99})  # no partner
    data.append({"row": "ce", "model": "swinls", "seed": 2, "status": "incomplete", "valid_f1": 0.1})
    found = paired(data, "swinls", "wce", "ce")
    assert found.pairs == 3 and found.low < 0 < found.high
    assert found.verdict() == "not resolved (the interval spans 0)"
    one = paired(records({"ce": [0.6], "wce": [0.7]}), "swinls", "wce", "ce")
    assert one.pairs == 1 and not one.resolved and "fewer than 2 seeds" in one.verdict()


def test_every_table_but_scaling_names_a_reference_row_it_holds():
    for name in ("bands", "augment", "balance", "selftrain"):
        table = get_table(name)
        assert table.reference in [row.name for row in table.rows], name
    selftrain = get_table("selftrain")
    assert ("selftrain.top_percent=0" in selftrain.row("control").overrides
            and "selftrain.rounds=1" in selftrain.row("control").overrides)


def test_the_page_shows_each_comparison_and_its_verdict():
    data = records({"control": [0.50, 0.60, 0.40], "a100": [0.54, 0.65, 0.46], "a50": [0.45, 0.66, 0.41]})
    text = markdown(differences(data, ["control", "a50", "a100"], ["swinls"], "control"),
                    {"control": "Same extra training", "a100": "A = 100 %", "a50": "A = 50 %"}, {"swinls": "SwinLS"})
    assert "**Against Same extra training, paired by seed**" in text
    assert "| SwinLS | A = 100 % | +0.050 | +0.025 to +0.075 | 3 | higher |" in text
    assert "| SwinLS | A = 50 % |" in text and "not resolved" in text


def test_a_row_asked_only_for_another_model_is_not_listed_for_this_one():
    # the U-Net asked for CE and weighted CE only, SwinLS for focal loss too, one U-Net trial not finished
    data = records({"ce": [0.5, 0.6], "wce": [0.55, 0.62], "focal": [0.5, 0.6]})
    data += records({"ce": [0.7, 0.8], "wce": [0.72, 0.81]}, model="unet")
    data.append({"row": "wce", "model": "unet", "seed": 2, "status": "missing", "valid_f1": ""})
    found = differences(data, ["ce", "wce", "focal"], ["swinls", "unet"], "ce")
    assert [(d.model, d.row) for d in found] == [("swinls", "wce"), ("swinls", "focal"), ("unet", "wce")]
    assert found[-1].pairs == 2
