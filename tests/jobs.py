"""The jobs' entry points, loaded as modules so that a test can call `main(argv)` in-process."""

from __future__ import annotations

import importlib.util
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
        match = re.match(r"^  (-\w, )?(--[\w-]+)(?: [A-Z][\w\[\],.=-]*)?(?:\s{2,}(.*))?$", line)
        if match:
            current = match.group(2)
            entries[current] = match.group(3) or ""
        elif current:
            entries[current] += " " + line.strip()
    return {k: " ".join(v.split()) for k, v in entries.items()}


@lru_cache(maxsize=None)
def job_flags(name: str) -> dict[str, str]:
    done = run_job(name, "--help")
    assert done.returncode == 0, done.stderr
    return help_entries(done.stdout)
