"""The jobs' command line: the job's docstring (with its worked examples) as --help, each flag's
default shown beside it, a bad command line answered in one line that names the flag and, when
one is close, the valid flag that was meant.

argparse's own answer is the usage block plus a message; a user who typed `--use-gpus` wants the
line that says which flag is wrong and what they meant, and no suggestion when nothing is close.
"""

from __future__ import annotations

import argparse
import difflib
from pathlib import Path

UNRECOGNIZED = "unrecognized arguments: "
# on the names without their dashes: "use-gpus" -> "use-gpu", but "use-gpu" is not "num-cpus"
SUGGEST_CUTOFF = 0.75


class HelpFormatter(argparse.RawDescriptionHelpFormatter):
    """The docstring as written, and "(default: ...)" after a flag's help when it has a default
    worth showing (not None, not a switch that is off)."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        default = action.default
        if (default in (None, False, [], argparse.SUPPRESS) or "%(default)" in text or not action.option_strings
                or "(default" in text):
            return text
        return f"{text} (default: %(default)s)" if text else "(default: %(default)s)"


class JobParser(argparse.ArgumentParser):
    """`root` is the project folder the job belongs to: the defaults of --storage and --cache are
    under it, whichever folder the job is started from."""

    def __init__(self, doc: str | None, root: str | Path | None = None, **kwargs) -> None:
        super().__init__(description=doc, formatter_class=HelpFormatter, **kwargs)
        self.root = Path(root) if root is not None else Path.cwd()

    def error(self, message: str) -> None:  # argparse's hook for every bad command line; exits
        if message.startswith(UNRECOGNIZED):
            extra = message[len(UNRECOGNIZED):].split()
            flags = [arg for arg in extra if arg.startswith("-")]
            message = "; ".join(self.unknown_flag(arg) for arg in flags) if flags else \
                f"unexpected argument {' '.join(extra)}"
        self.exit(2, f"error: {message} (see {self.prog} --help)\n")

    def unknown_flag(self, arg: str) -> str:
        flag = arg.split("=", 1)[0]
        valid = {option.lstrip("-"): option for option in self._option_string_actions if option.startswith("--")}
        close = difflib.get_close_matches(flag.lstrip("-"), list(valid), n=1, cutoff=SUGGEST_CUTOFF)
        return f"unknown flag {flag}" + (f" (did you mean {valid[close[0]]}?)" if close else "")


def quiet_bookkeeping() -> None:
    """Lines a user cannot act on, kept out of a job's output (Ray's log files keep them):
    Optuna's "new study created", Tune's "wrote the experiment state", Ray Data's progress of
    every dataset it runs in the driver, and Ray Train's deprecation of an option Ray Train itself
    sets. Warnings and errors of the libraries still show."""
    import logging
    import warnings

    import optuna  # set through optuna: its import would reset a level set by hand
    import ray.data  # noqa: F401 - configures its console handler on import: adjusted below

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    logging.getLogger("ray.tune").setLevel(logging.WARNING)
    for handler in logging.getLogger("ray.data").handlers:
        if isinstance(handler, logging.StreamHandler):  # the console; the session's file keeps INFO
            handler.setLevel(logging.WARNING)
    # after `import ray`, which puts its own filter for its deprecation warnings first
    warnings.filterwarnings("ignore", r"`ExecutionOptions\.exclude_resources` is deprecated")
