"""Which code ran: a hash of the package's files, with or without git (a cluster node's copy and
a job's working directory carry no .git); retraining keys its runs by it."""

import json
import shutil
import subprocess
import sys
from pathlib import Path

from swinls.published import source_hash

PACKAGE = Path(__file__).resolve().parents[1] / "platform" / "swinls"


def code_version_of(platform_dir: Path) -> dict:
    """code_version() as a process importing the package from `platform_dir` reports it."""
    script = "import json, swinls.published as p; print(json.dumps([p.__file__, p.code_version()]))"
    done = subprocess.run([sys.executable, "-c", script], cwd=platform_dir.parent, capture_output=True, text=True,
                          env={"PYTHONPATH": str(platform_dir), "PATH": "/usr/bin:/bin"}, check=True)
    where, version = json.loads(done.stdout)
    assert Path(where).is_relative_to(platform_dir)
    return version


def test_a_copy_without_git_is_identified_by_its_sources(tmp_path):
    copy = tmp_path / "node" / "platform"
    shutil.copytree(PACKAGE, copy / "swinls", ignore=shutil.ignore_patterns("__pycache__"))
    first = code_version_of(copy)
    assert first["git"] is None and first["source"] == source_hash(PACKAGE)  # same files, same hash

    (copy / "swinls" / "__pycache__").mkdir(exist_ok=True)
    (copy / "swinls" / "__pycache__" / "stale.cpython-311.pyc.py").write_text("x = 1\n")  # never part of it
    assert code_version_of(copy)["source"] == first["source"]

    with open(copy / "swinls" / "recipes" / "paper.yaml", "a") as recipe:
        recipe.write("# edited on the node\n")
    assert code_version_of(copy)["source"] != first["source"]

