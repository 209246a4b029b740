"""jobs/ablate.py: the paper's tables as grids, a tiny run's outputs and its rerun, the presets."""

import csv
import hashlib
import math
import statistics
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from swinls.ablation.tables import TABLES, AblationError, get_table, grid, select_rows
from swinls.ablation.trial import trial_config
from swinls.checkpoints import RunStore
from swinls.bands import NAMED_SETS

ROOT = Path(__file__).resolve().parents[1]


def test_each_tables_grid_is_what_the_paper_lists():
    bands = TABLES["bands"]
    assert [r.label for r in bands.rows] == ["RGB", "SWIR", "NGB", "PCA-3", "RGB+NIR", "RGB+SWIR", "RGB+NIR+SWIR", "All 14 bands"]
    assert bands.models == ("swinls", "deeplabv3", "unet")
    assert len(grid(bands, bands.rows, 3)) == 8 * 3 * 3
    assert bands.row("rgb").paper == {"swinls": 65.6, "deeplabv3": 58.0, "unet": 59.2}
    assert bands.row("all").paper["unet"] == 61.1
    assert [r.name for r in TABLES["augment"].rows] == ["none", "color", "cutout", "cutmix", "rotate-shift"]
    assert [r.name for r in TABLES["balance"].rows] == ["ce", "wce", "focal", "lovasz", "balanced"]
    assert TABLES["augment"].models == TABLES["balance"].models == ("swinls", "unet")
    for name in ("bands", "augment", "balance"):  # argmax F1, F1 at valid's own threshold, the held-out region
        assert TABLES[name].metrics == ("valid_f1", "valid_best_f1", "holdout_f1")
    selftrain = TABLES["selftrain"]
    assert [r.name for r in selftrain.rows] == ["before", "control", "a50", "a70", "a90", "a100"]
    assert selftrain.row("a90").paper == {"valid_precision": 72.4, "valid_recall": 77.1, "valid_f1": 74.9}
    assert set(selftrain.metrics) >= {"valid_precision", "valid_recall", "valid_f1"}
    trials = grid(TABLES["balance"], TABLES["balance"].rows, 2)
    assert len(trials) == 5 * 2 * 2 and trials[0] == {"row": "ce", "model": "swinls", "seed": 0}


def test_a_trials_config_is_the_settings_then_the_table_row_model_and_seed():
    settings = {"data": {"uri": "/nowhere"}, "stage1": {"epochs": 7}}
    config = trial_config(TABLES["balance"], settings, "/exp", "ce", "unet", 2)
    assert config.model.name == "unet" and config.data.bands == "ALL"  # the paper's U-Net reads all bands
    assert (config.stage1.loss.ce, config.stage1.loss.wce, config.stage1.loss.lovasz, config.stage2.epochs) == (1, 0, 0, 0)
    assert config.data.augment.rotate_shift == 0.5 and config.stage1.epochs == 7
    assert config.run.seed == 2 and config.data.augment.seed == 2 and config.name == "ce--unet--s2"
    balanced = trial_config(TABLES["balance"], settings, "/exp", "balanced", "swinls", 0)
    assert (balanced.stage1.loss.wce, balanced.stage1.loss.lovasz, balanced.stage1.loss.image) == (1, 1, 1)
    assert balanced.stage2.epochs > 0 and balanced.stage2.freeze_encoder
    for row in TABLES["bands"].rows:  # every band set exists
        band_set = trial_config(TABLES["bands"], settings, "/exp", row.name, "swinls", 0).data.bands
        assert band_set in NAMED_SETS or band_set == "PCA-3"
    assert trial_config(TABLES["selftrain"], settings, "/exp", "a70", "swinls", 0).selftrain.top_percent == 70
    # the YAML yields to the table's recipe, --set may change the recipe, nothing changes what a row varies
    shared = {"data": {"uri": "/nowhere"}, "stage2": {"epochs": 3}}
    assert trial_config(TABLES["bands"], shared, "/exp", "rgb", "unet", 0).stage2.epochs == 0
    user = ["stage2.epochs=2", "data.bands=ALL", "stage1.loss.lovasz=0"]
    changed = trial_config(TABLES["bands"], shared, "/exp", "rgb", "unet", 0, user)
    assert changed.stage2.epochs == 2 and changed.data.bands == "RGB"
    assert trial_config(TABLES["selftrain"], shared, "/exp", "a90", "swinls", 0, user).stage1.loss.lovasz == 0
    # the Lovász rows set the term's weight, not its kind: --set chooses the surrogate they test
    assert balanced.stage1.loss.lovasz_kind == "softmax"
    hinge = trial_config(TABLES["balance"], shared, "/exp", "lovasz", "swinls", 0, ["stage1.loss.lovasz_kind=hinge"])
    assert (hinge.stage1.loss.ce, hinge.stage1.loss.lovasz, hinge.stage1.loss.lovasz_kind) == (1, 1, "hinge")


def test_an_unknown_table_row_or_model_is_an_error_listing_the_valid_ones():
    with pytest.raises(AblationError, match=r"no table 'balanse' \(did you mean 'balance'\?\); valid: bands, augment, balance, selftrain, scaling"):
        get_table("balanse")
    with pytest.raises(AblationError, match=r"table bands has no row 'rgbb' \(did you mean 'rgb'\?\); valid: rgb, swir, ngb"):
        select_rows(TABLES["bands"], ["rgb", "rgbb"])
    with pytest.raises(AblationError, match="table balance has no model 'deeplabv3'; valid: swinls, unet"):
        grid(TABLES["balance"], TABLES["balance"].rows, 1, ("deeplabv3",))
    out = subprocess.run([sys.executable, str(ROOT / "jobs" / "ablate.py"), "balanse"], capture_output=True, text=True, timeout=120)
    assert out.returncode == 2 and out.stderr.strip().splitlines()[-1].startswith("error: jobs/ablate.py has no table 'balanse'")
    bad = subprocess.run([sys.executable, str(ROOT / "jobs" / "ablate.py"), "scaling", "--target-f1", "0.3,65"],
                         capture_output=True, text=True, timeout=120)
    assert bad.returncode == 2 and "argument --target-f1: '0.3,65': each target F1 must be in (0, 1]" in bad.stderr


def test_the_presets_have_the_benchmarks_sizes_over_six_regions():
    from swinls.synthetic.presets import PRESET_HOLDOUT, PRESETS, preset_spec

    for name, (train, valid, test) in {"l4s": (3799, 245, 800), "small": (950, 62, 200)}.items():
        spec = preset_spec(name)
        assert len(spec.regions) >= 6 and PRESET_HOLDOUT in spec.regions and spec.test_masks
        assert [sum(c[i] for c in spec.split_counts) for i in (1, 2, 3)] == [train, valid, test]
        assert PRESETS[name].train == train


def tree_digest(root: Path) -> str:
    digest = hashlib.sha256()
    for path in sorted(p for p in root.rglob("*") if p.is_file() and p.suffix == ".h5"):
        digest.update(str(path.relative_to(root)).encode() + path.read_bytes())
    return digest.hexdigest()


def test_exact_counts_are_written_with_test_masks_and_the_same_seed_gives_the_same_bytes(tmp_path):
    from swinls.shards import ingest
    from swinls.synthetic import SyntheticSpec, write_synthetic
    from swinls.synthetic.presets import PRESET_REGIONS

    counts = tuple((r, 3 + i % 2, 1, 2) for i, r in enumerate(PRESET_REGIONS))
    spec = SyntheticSpec(seed=5, regions=PRESET_REGIONS, scene_size=256, write_scenes=False, split_counts=counts, test_masks=True)
    summary = write_synthetic(tmp_path / "a", spec)
    for region, train, valid, test in counts:
        assert summary["regions"][region]["counts"] == {"train": train, "valid": valid, "test": test}
        assert len(list((tmp_path / "a" / region / "TestData" / "mask").glob("*.h5"))) == test
    write_synthetic(tmp_path / "b", spec)
    assert tree_digest(tmp_path / "a") == tree_digest(tmp_path / "b")
    report = ingest(str(tmp_path / "a"), str(tmp_path / "shards"))
    assert report.patches == sum(sum(c[1:]) for c in counts)


@pytest.fixture(scope="module")
def tiny_ablation(ray_local, synthetic_shards, mlflow_uri, tmp_path_factory):
    """A two-row, two-seed table, tracked in MLflow as jobs/ablate.py --mlflow tracks it."""
    from swinls.ablation.run import AblationRequest, run_ablation
    from swinls.tracking.mlflow_run import Tracker
    from swinls.tracking.trials import log_files

    settings = {"data": {"uri": synthetic_shards, "holdout_regions": ["volcanic-arc"], "train_regions": ["steep-forest"],
                         "batch_size": 8},
                "model": {"size": "nano", "decoder_channels": [16, 16, 8, 8, 8], "drop_path": 0.0},
                "stage1": {"epochs": 1, "lr": 0.001}, "stage2": {"epochs": 1, "lr": 0.00001}, "run": {"keep_checkpoints": 1}}
    request = AblationRequest("balance", settings, seeds=2, rows=["ce", "balanced"], models=["swinls"])
    storage_uri = str(tmp_path_factory.mktemp("ablations"))
    parent = Tracker(mlflow_uri, "swinls-ablation", "tiny", params={"table": "balance"})
    outputs = run_ablation(request, storage_uri=storage_uri, name="tiny", verbose=0, local_cores=2,
                           tracking=(parent.uri, parent.run_id))
    log_files(parent, outputs.uris)
    parent.finish()
    return request, storage_uri, outputs, (mlflow_uri, parent.run_id)


def test_a_tiny_table_writes_csv_markdown_and_png_from_its_trials(tiny_ablation):
    _, storage_uri, outputs, _ = tiny_ablation
    exp = Path(storage_uri) / "tiny"
    with open(exp / "trials.csv") as f:
        trials = list(csv.DictReader(f))
    assert sorted((t["row"], t["seed"], t["status"]) for t in trials) == [
        ("balanced", "0", "complete"), ("balanced", "1", "complete"), ("ce", "0", "complete"), ("ce", "1", "complete")]
    assert {t["epochs"] for t in trials if t["row"] == "balanced"} == {"2"} and {t["epochs"] for t in trials if t["row"] == "ce"} == {"1"}
    table = (exp / "table.md").read_text()
    assert table == outputs.markdown
    for row, label, paper in (("ce", "Normal training (CE)", "0.698"), ("balanced", "Balanced training (two stages)", "0.739")):
        cells = []
        for metric in ("valid_f1", "valid_best_f1", "holdout_f1"):
            values = [float(t[metric]) for t in trials if t["row"] == row]
            cells.append(f"{statistics.fmean(values):.3f} ± {statistics.stdev(values):.3f}")
        line = next(line for line in table.splitlines() if line.startswith(f"| {label} |"))
        expected = f"| {label} | SwinLS | {' | '.join(cells)} | {paper} | 2/2 |"
        assert line == expected
    assert (exp / "table.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert all(math.isfinite(float(t["valid_f1"])) for t in trials)


def test_a_tracked_table_is_a_parent_run_with_its_tables_and_a_child_run_per_trial(tiny_ablation):
    from mlflow import MlflowClient

    _, storage_uri, _, (uri, parent_id) = tiny_ablation
    client = MlflowClient(uri)
    assert sorted(a.path for a in client.list_artifacts(parent_id)) == ["table.md", "table.png", "trials.csv"]
    experiment = client.get_experiment_by_name("swinls-ablation")
    children = client.search_runs([experiment.experiment_id], f"tags.mlflow.parentRunId = '{parent_id}'")
    assert sorted(c.info.run_name for c in children) == ["balanced--swinls--s0", "balanced--swinls--s1",
                                                          "ce--swinls--s0", "ce--swinls--s1"]
    for child in children:
        assert child.info.status == "FINISHED" and child.data.tags["swinls.row"] in ("ce", "balanced")
        history = RunStore(str(Path(storage_uri) / "tiny" / "trials" / child.info.run_name)).latest()["history"]
        logged = sorted((m.step, m.value) for m in client.get_metric_history(child.info.run_id, "valid_f1"))
        assert logged == [(h["epoch"], pytest.approx(h["valid_f1"])) for h in history]
        assert [a.path for a in client.list_artifacts(child.info.run_id)] == ["curves.png"]


def test_a_rerun_keeps_the_finished_trials_and_refuses_a_different_request(tiny_ablation):
    from dataclasses import replace

    import yaml

    from swinls.ablation.run import AblationRequest, run_ablation
    from swinls.checkpoints import RunStore

    request, storage_uri, first, _ = tiny_ablation
    trials = Path(storage_uri) / "tiny" / "trials"
    before = {p.name: RunStore(str(p)).latest()["history"] for p in trials.iterdir()}
    again = run_ablation(request, storage_uri=storage_uri, name="tiny", verbose=0, local_cores=2)
    after = {p.name: RunStore(str(p)).latest()["history"] for p in trials.iterdir()}
    assert after == before  # nothing retrained: the same epochs, attempts and seconds
    assert again.markdown == first.markdown
    for other in (AblationRequest("balance", {**request.settings, "stage1": {"epochs": 2, "lr": 0.001}}, seeds=2,
                                  rows=request.rows, models=request.models),
                  AblationRequest("balance", request.settings, ["stage2.lr=0.0001"], seeds=2, rows=request.rows,
                                  models=request.models)):
        with pytest.raises(AblationError, match="other shared settings"):
            run_ablation(other, storage_uri=storage_uri, name="tiny", verbose=0, local_cores=2)
    assert sorted(p.name for p in trials.iterdir()) == sorted(before)  # a refused request starts nothing
    # the target F1s are the report's: other targets rewrite the outputs and train nothing, and a record
    # from when the target was part of the request still matches
    record = Path(storage_uri) / "tiny" / "ablation.yaml"
    saved = yaml.safe_load(record.read_text())
    record.write_text(yaml.safe_dump({**saved, "target_f1": 0.3}, sort_keys=False))
    other_targets = run_ablation(replace(request, target_f1s=(0.05, 0.99)), storage_uri=storage_uri, name="tiny",
                                 verbose=0, local_cores=2)
    assert {p.name: RunStore(str(p)).latest()["history"] for p in trials.iterdir()} == before
    times = {r["trial"]: (r["time_to_f1_0.05"], r["time_to_f1_0.99"]) for r in other_targets.records}
    for name, history in before.items():
        reached = [i for i, h in enumerate(history) if h["valid_f1"] >= 0.05]
        expected = sum(h["seconds"] for h in history[:reached[0] + 1]) if reached else math.nan
        assert times[name][0] == pytest.approx(expected, nan_ok=True) and math.isnan(times[name][1])
    with open(Path(storage_uri) / "tiny" / "trials.csv") as f:
        assert {"time_to_f1_0.05", "time_to_f1_0.99"} <= set(next(csv.reader(f)))


RUN_FACTS = {"seconds", "train_seconds", "node", "attempt"}  # where and when a trial ran


def figures(history: list[dict]) -> list[dict]:
    return [{k: v for k, v in epoch.items() if k not in RUN_FACTS} for epoch in history]


def test_a_rerun_asking_for_more_seeds_or_rows_grows_the_table(tiny_ablation, tmp_path):
    import yaml

    from swinls.ablation.run import AblationRequest, run_ablation
    from swinls.checkpoints import RunStore

    settings = tiny_ablation[0].settings
    storage_uri = str(tmp_path)
    first = run_ablation(AblationRequest("balance", settings, seeds=1, rows=["ce"], models=["swinls"]),
                         storage_uri=storage_uri, name="grown", verbose=0, local_cores=2)
    trials = tmp_path / "grown" / "trials"
    before = {p.name: RunStore(str(p)).latest()["history"] for p in trials.iterdir()}
    assert list(before) == ["ce--swinls--s0"]
    more = AblationRequest("balance", settings, seeds=2, rows=["ce", "wce"], models=["swinls"])
    grown = run_ablation(more, storage_uri=storage_uri, name="grown", verbose=0, local_cores=2)
    after = {p.name: RunStore(str(p)).latest()["history"] for p in trials.iterdir()}
    assert after["ce--swinls--s0"] == before["ce--swinls--s0"]  # not retrained
    assert sorted(after) == ["ce--swinls--s0", "ce--swinls--s1", "wce--swinls--s0", "wce--swinls--s1"]
    assert [(r["row"], r["seed"], r["status"]) for r in grown.records] == [
        ("ce", 0, "complete"), ("ce", 1, "complete"), ("wce", 0, "complete"), ("wce", 1, "complete")]
    # the same trials as the tiny table's CE row, trained again elsewhere: the same figures, bit for
    # bit (what lets two tables share a row's trials); only where and when they ran differ
    tiny_trials = Path(tiny_ablation[1]) / "tiny" / "trials"
    for seed in (0, 1):
        trial = f"ce--swinls--s{seed}"
        assert figures(after[trial]) == figures(RunStore(str(tiny_trials / trial)).latest()["history"])
    ce = [r["valid_f1"] for r in grown.records if r["row"] == "ce"]
    line = next(line for line in grown.markdown.splitlines() if line.startswith("| Normal training (CE) |"))
    assert line.split(" | ")[2] == f"{statistics.fmean(ce):.3f} ± {statistics.stdev(ce):.3f}"  # over both seeds
    assert line.endswith("| 2/2 |") and first.markdown != grown.markdown
    # asking again for a part of it changes nothing and still reports the whole
    again = run_ablation(AblationRequest("balance", settings, seeds=1, rows=["ce"], models=["swinls"]),
                         storage_uri=storage_uri, name="grown", verbose=0, local_cores=2)
    assert again.markdown == grown.markdown
    assert {p.name: RunStore(str(p)).latest()["history"] for p in trials.iterdir()} == after
    record = yaml.safe_load((tmp_path / "grown" / "ablation.yaml").read_text())
    assert record["grids"] == [{"rows": ["ce"], "models": ["swinls"], "seeds": 1},  # a grid asked again is not added
                               {"rows": ["ce", "wce"], "models": ["swinls"], "seeds": 2}]


def test_report_only_writes_the_outputs_of_what_finished_and_trains_nothing(tiny_ablation, tmp_path):
    # a long ablation stopped part-way (or still running elsewhere): its outputs from the trials that finished
    import shutil

    import yaml

    from tests.jobs import run_in_process
    from swinls.ablation.run import report_ablation

    _, storage_uri, first, _ = tiny_ablation
    exp = tmp_path / "stopped"
    shutil.copytree(Path(storage_uri) / "tiny", exp)
    for name in ("trials.csv", "table.md", "table.png"):
        (exp / name).unlink()
    shutil.rmtree(exp / "trials" / "balanced--swinls--s1")  # never started
    record = yaml.safe_load((exp / "ablation.yaml").read_text())
    record["grids"].append({"rows": ["wce"], "models": ["swinls"], "seeds": 1})  # asked, stopped before it ran
    (exp / "ablation.yaml").write_text(yaml.safe_dump(record, sort_keys=False))

    code, out, err = run_in_process("ablate", "balance", "--storage", str(tmp_path), "--name", "stopped", "--report-only")
    assert code == 0, err
    with open(exp / "trials.csv") as f:
        trials = [(t["row"], t["seed"], t["status"]) for t in csv.DictReader(f)]
    assert trials == [("ce", "0", "complete"), ("ce", "1", "complete"), ("wce", "0", "missing"),
                      ("balanced", "0", "complete"), ("balanced", "1", "missing")]
    assert sorted(p.name for p in (exp / "trials").iterdir()) == ["balanced--swinls--s0", "ce--swinls--s0",
                                                                  "ce--swinls--s1"]  # nothing trained
    table = (exp / "table.md").read_text()
    ce = "| Normal training (CE) |"
    assert next(line for line in table.splitlines() if line.startswith(ce)) == \
        next(line for line in first.markdown.splitlines() if line.startswith(ce))
    assert next(line for line in table.splitlines() if line.startswith("| Balanced training")).endswith("| 1/2 |")
    assert "not finished, in no mean: wce--swinls--s0, balanced--swinls--s1" in out

    with pytest.raises(AblationError, match=r"stopped/ablation.yaml holds table 'balance', not 'augment'"):
        report_ablation("augment", storage_uri=str(tmp_path), name="stopped")
    with pytest.raises(AblationError, match="no ablation has run under --name gone here"):
        report_ablation("balance", storage_uri=str(tmp_path), name="gone")
    code, _, err = run_in_process("ablate", "balance", "--storage", str(tmp_path), "--report-only")
    assert code == 2 and "--report-only reports an ablation that has run: give its --name" in err


def test_the_scaling_table_reads_throughput_and_a_time_per_target_f1_off_each_history():
    from swinls.ablation.report import history_figures, markdown, summarise

    def epoch(valid_f1, seconds, train_seconds, patches=100):
        return {"valid_f1": valid_f1, "seconds": seconds, "train_seconds": train_seconds, "train_patches": patches}

    # the first epoch pays the start-up and is left out of the throughput; times add whole epochs
    history = [epoch(0.2, 30.0, 25.0), epoch(0.5, 10.0, 4.0), epoch(0.4, 11.0, 6.0), epoch(0.7, 12.0, 5.0)]
    figures = history_figures(history, (0.3, 0.65, 0.9))
    assert figures["throughput"] == pytest.approx(300 / 15)
    assert figures["time_to_f1_0.3"] == 40.0 and figures["time_to_f1_0.65"] == 63.0
    assert math.isnan(figures["time_to_f1_0.9"])  # never reached: no time, not the run's length
    assert set(history_figures(history)) == {"throughput"}

    table = get_table("scaling")
    rows = select_rows(table, ["workers-1", "workers-2"])
    records = []
    for row, scale in (("workers-1", 1.0), ("workers-2", 0.5)):
        for seed, jitter in ((0, 1.0), (1, 1.2)):
            timed = [dict(h, seconds=h["seconds"] * scale * jitter, train_seconds=h["train_seconds"] * scale * jitter)
                     for h in history]
            records.append({"row": row, "model": "swinls", "seed": seed, "status": "complete", "valid_f1": 0.7,
                            "holdout_f1": 0.2, **history_figures(timed, (0.3, 0.65))})
    summary = summarise(table, rows, records, ("swinls",), (0.3, 0.65))
    text = markdown(table, summary, (0.3, 0.65))
    header = next(line for line in text.splitlines() if line.startswith("| row |"))
    assert header == ("| row | model | patches/s | s to valid F1 0.3 | s to valid F1 0.65 | valid F1 | held-out F1 "
                      "| seeds |")
    two = next(line for line in text.splitlines() if line.startswith("| 2 Ray Train workers |")).split(" | ")
    times = [63.0 * 0.5, 63.0 * 0.5 * 1.2]
    assert two[4] == f"{statistics.fmean(times):.1f} ± {statistics.stdev(times):.1f}"
    rates = [20.0 / 0.5, 20.0 / 0.5 / 1.2]
    assert two[2] == f"{statistics.fmean(rates):.1f} ± {statistics.stdev(rates):.1f}"
    # time to each target against workers, as time_to_f1.png draws it
    from swinls.ablation.report import time_to_f1_points
    from swinls.tracking.overviews import time_to_f1_figure

    points = time_to_f1_points(table, summary, (0.3, 0.65))
    lines = {line.get_gid(): line for line in time_to_f1_figure(points).axes[0].lines}
    assert list(lines["0.65"].get_xdata()) == [1, 2]
    np.testing.assert_allclose(lines["0.65"].get_ydata(), [statistics.fmean([63.0, 63.0 * 1.2]), statistics.fmean(times)])


def test_rank_agreement_is_spearmans_rho_of_the_row_means_against_the_paper():
    import random

    from swinls.ablation.report import markdown, rank_agreement, spearman

    def brute(xs, ys):  # average ranks by counting, then Pearson's r of them
        def ranks(v):
            return [sum(u < x for u in v) + (sum(u == x for u in v) + 1) / 2 for x in v]

        rx, ry = ranks(xs), ranks(ys)
        mx, my = statistics.fmean(rx), statistics.fmean(ry)
        num = sum((a - mx) * (b - my) for a, b in zip(rx, ry))
        return num / math.sqrt(sum((a - mx) ** 2 for a in rx) * sum((b - my) ** 2 for b in ry))

    rng = random.Random(0)
    for _ in range(50):
        n = rng.randint(3, 9)
        xs, ys = [rng.choice([0.1, 0.2, 0.3, rng.random()]) for _ in range(n)], [rng.random() for _ in range(n)]
        if len(set(xs)) > 1:
            assert spearman(xs, ys) == pytest.approx(brute(xs, ys))
    assert math.isnan(spearman([0.1, 0.2], [0.3, 0.4]))  # two rows order nothing

    table = get_table("bands")
    rows = select_rows(table, ["rgb", "swir", "ngb", "pca-3"])
    summary = []
    for row in rows:  # SwinLS in the paper's order, U-Net in the reverse one
        for model, sign in (("swinls", 1), ("unet", -1)):
            summary.append({"row": row.name, "label": row.label, "model": model, "seeds": 3, "of": 3,
                            "valid_f1": (0.5 + sign * row.paper[model] / 1000, 0.01), "valid_best_f1": (math.nan, math.nan),
                            "holdout_f1": (0.1, 0.01), "paper": row.paper[model] / 100})
    assert rank_agreement(summary, "valid_f1") == {"swinls": pytest.approx(1.0), "unet": pytest.approx(-1.0)}
    assert rank_agreement(summary, "valid_best_f1") == {}
    text = markdown(table, summary)
    assert text.rstrip().splitlines()[-1] == ("Rank agreement with the paper's F1 (Spearman's rho over the rows): "
                                              "valid F1: SwinLS +1.00, U-Net -1.00")
    assert "Rank agreement" not in markdown(table, summary[:4])  # two rows a model: no ordering to compare
