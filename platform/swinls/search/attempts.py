"""A trial's training runs once per attempt of its search or grid.

Tune restarts a failed trial once (`FailureConfig(max_failures=1)`): that is for a trial lost
with its node, whose trial process dies with it. A trial whose training raised has already been
retried by Ray Train `run.max_failures` times, from its last checkpoint; training it again from
the start repeats the same error at the cost of a whole run (a deterministic error cost
2 × (max_failures + 1) runs, and `run.max_failures=0` still trained twice). So a trial whose
training gave up records that in its run folder, and Tune's restart of it within the same attempt
fails at once with the recorded reason. The record names the attempt — one invocation of the
search or grid — so a `--resume`, which restarts errored trials on purpose, trains them again.
"""

from __future__ import annotations

import contextlib
import time
import uuid
from typing import Callable, TypeVar

from swinls import storage
from swinls.errors import SwinLSError

T = TypeVar("T")
GAVE_UP = "gave_up.json"


class TrainingGaveUp(SwinLSError, RuntimeError):
    pass


def new_attempt() -> str:
    return uuid.uuid4().hex


def train_once_per_attempt(run_uri: str, attempt: str, fit: Callable[[], T]) -> T:
    """`fit()`, unless the trial's training already gave up in this attempt: then raise at once."""
    record_uri = storage.join(run_uri, GAVE_UP)
    try:
        earlier = storage.read_json(record_uri)  # one request, not a check and then a read, at every trial start
    except (FileNotFoundError, NotADirectoryError):
        earlier = None
    if earlier and earlier.get("attempt") == attempt:
        raise TrainingGaveUp(f"{earlier.get('error')} (not trained again: its training gave up earlier in this run, "
                             f"{record_uri})")
    try:
        result = fit()
    except Exception as exc:
        with contextlib.suppress(OSError):  # storage unreachable: the restart trains again, and the error raised is the training's
            storage.write_json_atomic(record_uri, {"attempt": attempt, "error": error_line(f"{type(exc).__name__}: {exc}"),
                                                    "time": time.time()})
        raise
    if earlier:  # an earlier attempt's, trained again by a resume
        storage.remove(record_uri)
    return result


def error_line(error: BaseException | str | None) -> str | None:
    """A failed trial's reason in one line: the last `Name: message` line of what Tune kept (the
    worker's traceback, wrapped by Ray Train and Tune), which is the original exception's."""
    if error is None:
        return None
    lines = [line.strip() for line in str(error).strip().splitlines() if line.strip()]
    named = [line for line in lines if ": " in line and line.split(": ", 1)[0].replace(".", "").isidentifier()]
    line = (named or lines or [type(error).__name__])[-1]
    name, _, rest = line.partition(": ")
    return rest if name.rsplit(".", 1)[-1] == TrainingGaveUp.__name__ else line  # the recorded reason is the reason
