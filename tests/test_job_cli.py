"""The jobs' command lines as a new user meets them: --help opens with worked examples, and a
mistyped flag is one line that names it and the flag that was meant."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

from swinls.cli import JobParser

ROOT = Path(__file__).resolve().parents[1]


def run_job(name, *args):
    env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"}
    return subprocess.run([sys.executable, str(ROOT / "jobs" / f"{name}.py"), *args], capture_output=True, text=True,
                          timeout=120, cwd=ROOT, env=env)


@pytest.mark.parametrize("name", ["tune", "train", "ingest", "card"])
def test_help_shows_a_worked_example_of_the_job(name):
    done = run_job(name, "--help")
    assert done.returncode == 0
    examples = done.stdout.split("Examples:\n", 1)[1]
    first = next(line.strip() for line in examples.splitlines() if line.strip() and not line.strip().startswith("#"))
    assert first.startswith(f"python jobs/{name}.py")


@pytest.mark.parametrize("name, typo, meant", [("tune", "--use-gpus", "--use-gpu"), ("train", "--smoke-tset", "--smoke-test"),
                                               ("ingest", "--regoin", "--region"), ("predict", "--overwite", "--overwrite"),
                                               ("card", "--jsn", "--json")])
def test_an_unknown_flag_is_one_line_naming_it_and_the_closest_valid_one(name, typo, meant, tmp_path):
    positionals = {"ingest": ["a", "b"], "predict": ["m", "i", "o"], "card": ["m"]}.get(name, [])
    done = run_job(name, *positionals, typo, "1")
    assert done.returncode == 2 and done.stdout == ""
    assert done.stderr == f"error: unknown flag {typo} (did you mean {meant}?) (see {name}.py --help)\n"


def test_a_typo_in_a_set_key_is_one_line_naming_the_closest_valid_key():
    done = run_job("train", "--set", "stage1.lrr=0.1", "--local")
    assert done.returncode == 2
    [line] = done.stderr.strip().splitlines()
    assert line.startswith("error: unknown config key 'stage1.lrr' (did you mean 'lr'?)")


def test_every_other_command_line_error_is_one_line_too(capsys):
    parser = JobParser("doc", prog="x.py")
    parser.add_argument("src")
    parser.add_argument("--count", type=int)
    assert parser.unknown_flag("--cuont=3") == "unknown flag --cuont (did you mean --count?)"
    assert parser.unknown_flag("--zzz") == "unknown flag --zzz"
    for argv, message in ((["a", "b"], "unexpected argument b"), ([], "the following arguments are required: src"),
                          (["a", "--count", "many"], "argument --count: invalid int value: 'many'")):
        with pytest.raises(SystemExit):
            parser.parse_args(argv)
        assert capsys.readouterr().err == f"error: {message} (see x.py --help)\n"
