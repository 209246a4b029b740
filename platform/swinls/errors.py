"""User-facing errors. `SwinLSError` is their root: a job prints one of them as one line and exits
non-zero; anything else is a bug and keeps its traceback."""

from __future__ import annotations


class SwinLSError(Exception):
    """Something the user gave or the world did (a file, a key, a URI, a rival process), said in
    one line that names it."""


class AllTrialsFailed(SwinLSError):
    """A search or an ablation ran and every trial failed: its inputs were fine, its work was not
    (exit status 1, not a user error's 2)."""

    exit_status = 1


class SourceError(SwinLSError, ValueError):
    """The shape of every error about one thing: it names the file, key or option, then says what
    is wrong with it."""

    def __init__(self, source: str, reason: str) -> None:
        super().__init__(f"{source}: {reason}")
        self.source = source
        self.reason = reason

    def __reduce__(self):  # pickles (to and from Ray workers) by its two parts, not by the joined message
        return type(self), (self.source, self.reason)


class NothingToRankOn(SwinLSError):
    """Trials finished but the metric that ranks them is undefined for every one of them (their
    validation split had no labelled pixel): picking one would be picking at random."""

    exit_status = 1
