"""Keep freed host memory in the process instead of handing it back to the kernel after every
batch.

glibc's malloc serves the tens of megabytes a CPU batch allocates (a 32×14×128×128 float32
image is 29 MiB) from fresh pages and returns them when freed, so every augmentation op and every
layer of a CPU step pays for page faults and zeroing again: on this project's 2-core machine
that was most of the augmenter's time (benchmarks/input_pipeline.py). PyTorch's CPU tuning guide
suggests swapping in jemalloc or tcmalloc; the same effect, without a preloaded library, is two
of glibc's own settings — a fixed mmap threshold above batch sizes and a trim threshold that
keeps what a step freed for the next. Elsewhere (musl, macOS) nothing changes.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import os

log = logging.getLogger(__name__)

# mallopt parameters from glibc's malloc.h
M_TRIM_THRESHOLD = -1
M_MMAP_THRESHOLD = -3

MMAP_THRESHOLD = 512 * 2**20  # allocations above this still get their own mapping (old glibc refuses > 32 MiB)
TRIM_THRESHOLD = 2**30  # freed memory kept up to this much; above it, returned to the system (a C int)
OPT_OUT_ENV = "SWINLS_GLIBC_MALLOC_DEFAULTS"

_done = False


def keep_freed_memory() -> bool:
    """Tune this process's malloc for repeated large batches; True if glibc took the settings.
    Once per process; `SWINLS_GLIBC_MALLOC_DEFAULTS=1` leaves glibc's defaults alone."""
    global _done
    if _done:
        return True
    if os.environ.get(OPT_OUT_ENV) == "1":
        return False
    name = ctypes.util.find_library("c")
    if not name:
        return False
    try:
        libc = ctypes.CDLL(name)
        mallopt = libc.mallopt
    except (OSError, AttributeError):  # not glibc
        return False
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    _done = bool(mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD)) and bool(mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD))
    if not _done:
        log.debug("malloc settings not taken: %s", name)
    return _done
