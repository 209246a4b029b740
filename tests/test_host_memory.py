"""Freed host memory kept for the next batch: an augmentation step stops faulting fresh pages in."""

import os
import subprocess
import sys

import pytest

from swinls.host_memory import keep_freed_memory

# minor page faults of ten CPU augmentation steps on 14-band batches, after five to warm up (the
# rotated rows' count varies by step, and so the sizes a step asks for)
FAULTS = """
import resource, sys
import numpy as np, torch
from swinls.augment import AugmentConfig
from swinls.augment.ops import Augmenter
from swinls.host_memory import keep_freed_memory
took = keep_freed_memory() if sys.argv[1] == "kept" else False
torch.set_num_threads(1)
augment = Augmenter(AugmentConfig(flip=0.5, rotate_shift=0.5))
image, mask = torch.randn(16, 14, 128, 128), torch.randint(0, 2, (16, 128, 128))
for epoch in range(-5, 0):
    augment(image, mask, np.arange(16), epoch)
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for epoch in range(1, 11):
    augment(image, mask, np.arange(16), epoch)
print(took, resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
"""


BATCH_PAGES = 16 * 14 * 128 * 128 * 4 // 4096


def faults(mode: str) -> tuple[bool, int]:
    # glibc's default mmap threshold moves up as large blocks are freed, after which a process may
    # fault in nothing (a full run saw 0 pages): "default" fixes it at glibc's initial 128 KiB, the
    # case where every batch is a fresh mapping, which kept memory must prevent
    env = dict(os.environ, MALLOC_MMAP_THRESHOLD_="131072") if mode == "default" else dict(os.environ)
    out = subprocess.run([sys.executable, "-c", FAULTS, mode], check=True, capture_output=True, text=True,
                         env=env).stdout.split()
    return out[0] == "True", int(out[1])


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's malloc settings")
def test_kept_memory_stops_an_augmentation_step_from_faulting_in_fresh_pages():
    took, kept = faults("kept")
    _, default = faults("default")
    assert took
    # one 16×14×128×128 float32 batch is 3,584 pages of 4 KiB: with glibc's threshold held at its
    # start, ten steps fault in several batches; kept memory faults in almost nothing
    assert default > 3 * BATCH_PAGES, default
    assert kept < BATCH_PAGES / 10, (kept, default)


def test_it_can_be_turned_off(monkeypatch):
    monkeypatch.setenv("SWINLS_GLIBC_MALLOC_DEFAULTS", "1")
    monkeypatch.setattr("swinls.host_memory._done", False)
    assert keep_freed_memory() is False
