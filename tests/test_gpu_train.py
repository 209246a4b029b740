"""benchmarks/gpu_train.py on a CPU: the lines it prints, with figures that add up."""

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LINE = re.compile(r"(?P<label>Swin-\S+ stage 1, batch (?P<batch>\d+)( \(old step\))?)\s+(?P<rate>[\d.]+) patches/s · step\s+(?P<step>[\d.]+) ms = "
                  r"input\s+(?P<input>[\d.]+) ms \(\s*[\d.]+ %\) \+ compute\s+(?P<compute>[\d.]+) ms · (?P<gflop>[\d.]+) GFLOP/patch · (?P<mfu>.+)")


def test_the_cpu_run_prints_a_consistent_line_per_setting():
    out = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "gpu_train.py"), "--device", "cpu", "--sizes", "nano",
                          "--batches", "2,4", "--steps", "3", "--warmup", "1", "--patches", "16", "--reference"],
                         capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert out.returncode == 0, out.stderr[-2000:]
    rows = [m.groupdict() for m in map(LINE.match, out.stdout.splitlines()) if m]
    assert [(r["batch"], "old step" in r["label"]) for r in rows] == [("2", False), ("2", True), ("4", False), ("4", True)]
    for r in rows:
        step, split = float(r["step"]), float(r["input"]) + float(r["compute"])
        assert abs(float(r["rate"]) * step / 1000 - int(r["batch"])) < 0.05 * int(r["batch"])  # patches/s from the step time
        assert 0.7 * step < split <= 1.05 * step  # the split covers the step (on a CPU the host clock is the device's)
        assert float(r["gflop"]) > 0 and r["mfu"].startswith(tuple("0123456789")) and "MFU n/a" in r["mfu"]
