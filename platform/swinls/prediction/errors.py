"""The one error type of prediction: it names the file, key or URI and says what is wrong."""

from __future__ import annotations


class PredictionError(ValueError):
    def __init__(self, source: str, reason: str) -> None:
        super().__init__(f"{source}: {reason}")
        self.source = source
        self.reason = reason
