"""Ingest streams: peak memory must not grow with the number of patches."""

import subprocess
import sys

from tests.helpers import write_tree

# VmHWM, not ru_maxrss: ru_maxrss survives exec and would count the forking test process
MEASURE = """
import sys
from swinls.shards import IngestOptions, ingest
report = ingest(sys.argv[1], sys.argv[2], IngestOptions(region="r", rows_per_shard=64))
peak_kib = next(int(line.split()[1]) for line in open("/proc/self/status") if line.startswith("VmHWM:"))
print(report.patches, peak_kib // 1024)
"""


def peak_rss_mib(tmp_path, n):
    write_tree(tmp_path / f"src{n}", counts=(n, 0, 0), size=48)
    out = subprocess.run([sys.executable, "-c", MEASURE, str(tmp_path / f"src{n}"), str(tmp_path / f"dst{n}")],
                         check=True, capture_output=True, text=True).stdout.split()
    assert int(out[0]) == n
    return int(out[1])


def test_ingest_peak_memory_is_flat_in_the_number_of_patches(tmp_path):
    small, large = peak_rss_mib(tmp_path, 400), peak_rss_mib(tmp_path, 4000)
    # 4,000 patches of 48×48×14 are ~250 MiB as float16 (~500 MiB as read); holding them would show
    assert large - small < 40, f"peak RSS grew from {small} MiB to {large} MiB"
