"""The jobs' entry points, loaded as modules so that a test can call `main(argv)` in-process."""

from __future__ import annotations

import contextlib
import importlib.util
import io
import os
import re
import subprocess
import sys
from functools import lru_cache
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def load_job(name: str):
    spec = importlib.util.spec_from_file_location(f"{name}_job", ROOT / "jobs" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def run_job(name: str, *args: str, timeout: float = 120, cwd: str = "/") -> subprocess.CompletedProcess:
    """The job as a user runs it, from another folder (defaults must not follow the shell's)."""
    env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"}
    return subprocess.run([sys.executable, str(ROOT / "jobs" / f"{name}.py"), *args], capture_output=True, text=True,
                          timeout=timeout, cwd=cwd, env=env)


def help_entries(text: str) -> dict[str, str]:
    """Each `--flag` of a --help text and its help, whitespace joined."""
    options = text.split("options:\n", 1)[1].split("\n\n", 1)[0]
    entries, current = {}, None
    for line in options.splitlines():
        match = re.match(r"^  (-\w, )?(--[\w-]+)(?: [A-Z{][^\s]*)?(?:\s{2,}(.*))?$", line)
        if match:
            current = match.group(2)
            entries[current] = match.group(3) or ""
        elif current:
            entries[current] += " " + line.strip()
    return {k: " ".join(v.split()) for k, v in entries.items()}


def run_in_process(name: str, *args: str) -> tuple[int, str, str]:
    """(exit status, stdout, stderr) of the job's `main` called here: what `python jobs/<name>.py`
    gives, without an interpreter and torch to start per call."""
    module = load_job(name)
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = module.main(list(args))
        except SystemExit as exc:  # argparse: --help, or a bad command line
            code = exc.code
    return code, out.getvalue(), err.getvalue()


@lru_cache(maxsize=None)
def job_flags(name: str) -> dict[str, str]:
    code, out, err = run_in_process(name, "--help")
    assert code == 0, err
    return help_entries(out)
