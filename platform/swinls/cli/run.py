"""How a job ends: a user error (`SwinLSError`: a bad file, key, URI, device request) or a storage
failure is one line on stderr and exit status 2; anything else is a bug and keeps its traceback."""

from __future__ import annotations

import sys
from typing import Callable, Sequence

from swinls.errors import SwinLSError

USER_ERROR = 2


def run_job(main: Callable[[Sequence[str] | None], int], argv: Sequence[str] | None = None) -> int:
    try:
        return main(argv)
    except (SwinLSError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return getattr(exc, "exit_status", USER_ERROR)
