"""The jobs' command line: the job's docstring (with its worked examples) as --help, a bad
command line answered in one line that names the flag and the closest valid one, and the
libraries' bookkeeping lines kept out of a job's output.

argparse's own answer is the usage block plus a message; a user who typed `--use-gpus` wants the
line that says which flag is wrong and what they meant.
"""

from __future__ import annotations

import argparse
import difflib

UNRECOGNIZED = "unrecognized arguments: "


class JobParser(argparse.ArgumentParser):
    def __init__(self, doc: str | None, **kwargs) -> None:
        super().__init__(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter, **kwargs)

    def error(self, message: str) -> None:  # argparse's hook for every bad command line; exits
        if message.startswith(UNRECOGNIZED):
            extra = message[len(UNRECOGNIZED):].split()
            flags = [arg for arg in extra if arg.startswith("-")]
            message = "; ".join(self.unknown_flag(arg) for arg in flags) if flags else \
                f"unexpected argument {' '.join(extra)}"
        self.exit(2, f"error: {message} (see {self.prog} --help)\n")

    def unknown_flag(self, arg: str) -> str:
        flag = arg.split("=", 1)[0]
        valid = [option for option in self._option_string_actions if option.startswith("--")]
        close = difflib.get_close_matches(flag, valid, n=1, cutoff=0.6)
        return f"unknown flag {flag}" + (f" (did you mean {close[0]}?)" if close else "")


def quiet_bookkeeping() -> None:
    """Lines a user cannot act on, kept out of a job's own output (Ray's log files keep them):
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
