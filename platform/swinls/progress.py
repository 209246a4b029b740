"""Progress of a long job step (ingest, synth) on standard error: a tqdm bar on a terminal, and
elsewhere (a pipe, `ray job logs`, cron's log file) a plain line every few seconds with what is
done, the rate and the time left, since a redrawn bar is unreadable there."""

from __future__ import annotations

import sys
import time

from swinls.work_estimate import duration


class Progress:
    def __init__(self, what: str, unit: str, total: int = 0, *, every: float = 10.0, stream=None) -> None:
        self.what, self.unit, self.total, self.every = what, unit, total, every
        self.stream = stream if stream is not None else sys.stderr
        self.done = 0
        self.started = self._last = time.perf_counter()
        self._bar = None
        if getattr(self.stream, "isatty", lambda: False)():
            from tqdm import tqdm

            self._bar = tqdm(total=total or None, desc=what, unit=f" {unit}", file=self.stream, dynamic_ncols=True)

    def add(self, count: int = 1) -> None:
        self.done += count
        if self._bar is not None:
            self._bar.update(count)
            return
        now = time.perf_counter()
        if now - self._last >= self.every:
            self._last = now
            print(self.line(), file=self.stream, flush=True)

    def drop(self, count: int) -> None:
        """Work that turned out not to be needed (an unchanged region): out of the total."""
        self.total = max(self.done, self.total - count)
        if self._bar is not None:
            self._bar.total = self.total
            self._bar.refresh()

    def line(self) -> str:
        elapsed = time.perf_counter() - self.started
        rate = self.done / elapsed if elapsed > 0 else 0.0
        share = f" ({100 * self.done / self.total:.0f}%)" if self.total else ""
        left = f", about {duration((self.total - self.done) / rate)} left" if rate and self.total > self.done else ""
        of = f"/{self.total:,}" if self.total else ""
        return f"{self.what}: {self.done:,}{of} {self.unit}{share}, {rate:.1f} {self.unit}/s{left}"

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
