"""The one error type of prediction: it names the file, key or option and says what is wrong."""

from __future__ import annotations

from swinls.errors import SourceError


class PredictionError(SourceError):
    pass
