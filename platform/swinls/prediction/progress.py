"""Progress on standard error: units done, share, rate, at most every few seconds."""

from __future__ import annotations

import sys
import time


class Progress:
    def __init__(self, total: int, unit: str, every: float = 5.0, stream=None) -> None:
        self.total, self.unit, self.every = total, unit, every
        self.stream = stream if stream is not None else sys.stderr
        self.done = 0
        self.started = time.perf_counter()
        self._last = self.started

    @property
    def elapsed(self) -> float:
        return time.perf_counter() - self.started

    @property
    def rate(self) -> float:
        return self.done / self.elapsed if self.elapsed > 0 else 0.0

    def add(self, count: int) -> None:
        self.done += count
        now = time.perf_counter()
        if now - self._last >= self.every and self.done < self.total:
            self._last = now
            self._print()

    def _print(self) -> None:
        share = 100.0 * self.done / self.total if self.total else 100.0
        print(f"predict: {self.done}/{self.total} {self.unit} ({share:.0f}%), {self.rate:.1f} {self.unit}/s",
              file=self.stream, flush=True)

    def finish(self) -> str:
        return f"{self.done} {self.unit} in {self.elapsed:.1f} s ({self.rate:.1f} {self.unit}/s)"
