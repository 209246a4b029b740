"""What every job shares: the parser, the flags that mean the same in every job, the checks run
before Ray starts, and the one-line answer to a user error."""

from swinls.cli.flags import SHARED_FLAGS, add_shared
from swinls.cli.parser import JobParser, quiet_bookkeeping
from swinls.cli.run import run_job

__all__ = ["JobParser", "SHARED_FLAGS", "add_shared", "quiet_bookkeeping", "run_job"]
