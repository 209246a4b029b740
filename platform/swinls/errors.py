"""The shape of every user-facing error about one thing: it names the file, key or option, then
says what is wrong with it."""

from __future__ import annotations


class SourceError(ValueError):
    def __init__(self, source: str, reason: str) -> None:
        super().__init__(f"{source}: {reason}")
        self.source = source
        self.reason = reason

    def __reduce__(self):  # pickles (to and from Ray workers) by its two parts, not by the joined message
        return type(self), (self.source, self.reason)
