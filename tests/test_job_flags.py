"""The jobs agree: a shared flag has one name and one meaning in every job that takes it, its
default is shown and lies under the project folder, suggestions are for close matches only, and
a wrong input is refused in one line before Ray starts."""

import re
from pathlib import Path

import pytest

from swinls.cli import SHARED_FLAGS
from tests.jobs import job_flags, run_in_process, run_job

ROOT = Path(__file__).resolve().parents[1]
JOBS = sorted(p.stem for p in (ROOT / "jobs").glob("*.py"))
POSITIONALS = {"ingest": ["a", "b"], "predict": ["m", "i", "o"], "card": ["m"], "ablate": ["balance"], "synth": ["out"],
               "retrain": ["--registry", "r"]}
# what each job that trains or searches must take
TRAINING_JOBS = {"train", "tune", "ablate", "retrain"}
TRAINING_FLAGS = ("--data", "--workers", "--use-gpu", "--cache", "--num-cpus", "--dry-run", "--set")


@pytest.fixture(scope="module")
def helps():
    return {name: job_flags(name) for name in JOBS}


def test_every_shared_flag_means_the_same_in_every_job_that_takes_it(helps):
    seen = {flag: [] for flag in SHARED_FLAGS}
    for job, entries in helps.items():
        for flag, text in entries.items():
            if flag in SHARED_FLAGS:
                seen[flag].append(job)
                assert text.startswith(" ".join(SHARED_FLAGS[flag].help.split())), (job, flag, text)
    for job in TRAINING_JOBS:
        missing = [flag for flag in TRAINING_FLAGS if flag not in helps[job]]
        assert not missing, f"jobs/{job}.py lacks {missing}"
    assert set(seen["--use-gpu"]) == TRAINING_JOBS | {"predict"}
    assert set(seen["--local"]) == {"train", "retrain"}


def test_folder_defaults_are_under_the_project_and_shown(helps):
    for job, entries in helps.items():
        for flag, folder in (("--storage", "runs"), ("--cache", ".cache")):
            if flag in entries:
                assert entries[flag].endswith(f"(default: {ROOT / folder})"), (job, flag, entries[flag])
    assert helps["tune"]["--space"].endswith(f"(default: {ROOT / 'search_spaces' / 'smoke.yaml'})")


def test_ablate_help_lists_every_table_with_its_rows_and_models():
    from swinls.ablation.tables import TABLES

    text = run_job("ablate", "--help").stdout
    for table in TABLES.values():
        assert f"  {table.name}: {table.title}" in text
        assert "rows: " + ", ".join(r.name for r in table.rows) in text


@pytest.mark.parametrize("job, typo, answer", [
    ("ablate", "--use-gpus", "unknown flag --use-gpus (did you mean --use-gpu?)"),
    ("ablate", "--gpu-count", "unknown flag --gpu-count"),  # was "did you mean --num-cpus?"
    ("retrain", "--rollbak", "unknown flag --rollbak (did you mean --rollback?)"),
    ("tune", "--storge", "unknown flag --storge (did you mean --storage?)"),
])
def test_suggestions_are_only_for_close_matches(job, typo, answer):
    code, out, err = run_in_process(job, *POSITIONALS.get(job, []), typo)
    assert code == 2 and err.startswith(f"error: {answer} (see ") and err.count("\n") == 1


@pytest.mark.parametrize("job, args, message", [
    ("tune", ["--data", "/nonexistent"], "error: /nonexistent/manifest.json: no shard dataset here (make one with jobs/ingest.py)"),
    ("ablate", ["balance", "--data", "/nonexistent"], "error: /nonexistent/manifest.json: no shard dataset here"),
    ("train", ["--recipe", "laptop", "--data", "/nonexistent"], "error: /nonexistent/manifest.json: no shard dataset here"),
    ("train", ["--recipe", "papr"], "error: recipe 'papr' is not one of the shipped recipes (did you mean paper?)"),
    ("retrain", ["--data", "/nonexistent", "--registry", "/tmp/reg"], "error: /nonexistent/manifest.json: no shard dataset here"),
    ("ingest", ["/nonexistent", "/tmp/out"], "error: /nonexistent: no such directory or prefix"),
    ("predict", ["/nonexistent/model", "/tmp/in", "/tmp/out", "--ray"], "error: /nonexistent/model: no published model here"),
    ("train", ["--local", "--use-gpu", "--smoke-test"], "error: --use-gpu (run.use_gpu) asks for 1 GPU(s) but this machine has 0"),
    ("tune", ["--use-gpu"], "error: --use-gpu (run.use_gpu) asks for 1 GPU(s) but this machine has 0"),
    ("ablate", ["balance", "--use-gpu"], "error: --use-gpu (run.use_gpu) asks for 1 GPU(s) but this machine has 0"),
    ("tune", ["--storage", "/etc/hostname"], "error: /etc/hostname: is a file"),
    ("tune", ["--set", "stage1.lrr=0.1"], "overrides: base: unknown config key 'stage1.lrr' (did you mean 'lr'?)"),
    ("ablate", ["balance", "--rows", "ce,lovaz"], "lovaz"),
])
def test_a_wrong_input_is_one_line_before_ray_starts(job, args, message, monkeypatch):
    import torch

    import swinls.ray_start

    if "--use-gpu" in args and torch.cuda.is_available():
        pytest.skip("this machine has a GPU")

    def no_ray(*_, **__):
        raise AssertionError("Ray was started for an input that could be checked before")

    monkeypatch.setattr(swinls.ray_start, "init_local_ray", no_ray)
    monkeypatch.chdir("/")
    code, out, err = run_in_process(job, *args)
    assert code == 2 and out == "", err
    [line] = err.strip().splitlines()
    assert message in line


def test_dry_run_checks_the_inputs_and_starts_nothing(tmp_path, monkeypatch):
    from swinls.shards import IngestOptions, ingest
    from tests.helpers import write_tree

    write_tree(tmp_path / "raw", counts=(3, 2, 1))
    ingest(str(tmp_path / "raw"), str(tmp_path / "shards"), IngestOptions(region="hills"))
    # the smoke space holds out a built-in region this dataset lacks: said before anything starts
    code, out, err = run_in_process("tune", "--data", str(tmp_path / "shards"), "--dry-run")
    assert code == 2 and "has no region volcanic-arc (it has hills)" in err
    code, out, err = run_in_process("tune", "--data", str(tmp_path / "shards"), "--storage", str(tmp_path / "runs"),
                                    "--name", "x", "--dry-run", "--set", "data.holdout_regions=[]")
    assert code == 0, err
    assert out.startswith("dry run: 4 trials of ") and "validation: ValidData of hills" in out
    assert re.search(r"hills +train +3 +3 +3,072 +32\n", out) and "every check passed" in out
    assert not (tmp_path / "runs").exists()
    # an ablation on the user's data holds nothing out unless asked
    code, out, err = run_in_process("ablate", "balance", "--seeds", "2", "--data", str(tmp_path / "shards"),
                                    "--storage", str(tmp_path / "runs"), "--dry-run")
    assert code == 0 and "balance, 20 trials on" in out and "held out: no region" in out
    code, out, err = run_in_process("ablate", "balance", "--seeds", "2", "--data", str(tmp_path / "shards"),
                                    "--storage", str(tmp_path / "runs"), "--dry-run", "--holdout", "plains")
    assert code == 2 and "has no region plains (it has hills)" in err
    assert not (tmp_path / "runs").exists()


def test_train_without_a_recipe_on_a_cpu_says_what_it_would_run_and_starts_nothing(tmp_path, monkeypatch):
    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    code, out, err = run_in_process("train", "--storage", str(tmp_path / "runs"))
    assert code == 2 and "no recipe chosen and this machine has no GPU" in err
    assert "Swin-B" in err and "--recipe laptop" in err and not (tmp_path / "runs").exists()


def test_a_search_whose_every_trial_failed_exits_non_zero_and_says_why(ray_local, tmp_path):
    from swinls.shards import IngestOptions, Manifest, ingest
    from tests.helpers import write_tree

    write_tree(tmp_path / "raw", counts=(4, 2, 1))
    ingest(str(tmp_path / "raw"), str(tmp_path / "shards"), IngestOptions(region="hills"))
    for shard in Manifest.load(str(tmp_path / "shards")).shards():  # the manifest stays: the check passes, training cannot
        (tmp_path / "shards" / shard.path).unlink()
    # in this process, on the suite's Ray (the job joins a Ray it finds running)
    code, out, err = run_in_process("tune", "--data", str(tmp_path / "shards"), "--storage", str(tmp_path / "runs"),
                                    "--name", "doomed", "--samples", "1", "--set", "run.max_failures=0",
                                    "--set", "data.holdout_regions=[]")
    assert code == 1, err[-2000:]
    last = err.strip().splitlines()[-1]
    assert last.startswith("error: all 1 trials failed: ") and ".parquet" in last, last
    # with run.max_failures=0 it trained once: Tune's restart of the trial did not train it again
    assert last.startswith("error: all 1 trials failed: FileNotFoundError: "), last
    assert "(not trained again: its training gave up earlier in this run" in last, last
    assert "no trial finished its whole run, so no model was published" in out


def test_the_same_name_resumes_a_search_and_another_space_under_it_is_refused(tmp_path):
    from swinls.search.space import override_space

    space = (ROOT / "search_spaces" / "smoke.yaml").read_text()
    saved = tmp_path / "runs" / "mine" / "space.yaml"
    saved.parent.mkdir(parents=True)
    saved.write_text(override_space(space, samples=2))  # what `--samples 2` ran with
    args = ["--storage", str(tmp_path / "runs"), "--name", "mine", "--dry-run"]
    code, out, err = run_in_process("tune", *args, "--samples", "2")
    assert code == 0 and out.startswith("resuming mine: finished trials are kept\ndry run: 2 trials"), err
    code, out, err = run_in_process("tune", *args, "--samples", "3")
    assert code == 2 and err.strip() == (f"error: {tmp_path / 'runs' / 'mine'} holds a search of another space (or other "
                                         "command-line overrides); rerun it as it was, or choose another --name")
