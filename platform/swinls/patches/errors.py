"""The one error type for bad raw patches: it always names the file and what is wrong with it."""

from __future__ import annotations

from swinls.errors import SourceError


class PatchError(SourceError):
    pass
