"""Progress of ingest and synth: plain lines where output is a pipe or a log, a bar on a terminal."""

import fcntl
import io
import os
import re
import select
import struct
import termios

from swinls.progress import Progress
from swinls.shards import ingest
from swinls.synthetic import SyntheticSpec, write_synthetic
from tests.helpers import write_tree


def counts(text: str, what: str) -> list[tuple[int, int]]:
    return [(int(done.replace(",", "")), int(total.replace(",", "")))
            for done, total in re.findall(rf"^{what}: ([\d,]+)/([\d,]+) ", text, re.M)]


def test_ingest_reports_every_patch_to_a_plain_stream_and_nothing_for_unchanged_regions(tmp_path):
    write_tree(tmp_path / "raw" / "north", counts=(5, 2, 1))
    write_tree(tmp_path / "raw" / "south", counts=(3, 1, 0), seed=1)
    out = io.StringIO()
    ingest(str(tmp_path / "raw"), str(tmp_path / "shards"), progress=Progress("ingest", "patches", every=0, stream=out))
    seen = counts(out.getvalue(), "ingest")
    assert seen == [(n, 12) for n in range(1, 13)]  # each patch, of all 12, and no bar codes in a log
    assert "\r" not in out.getvalue() and "100%" in out.getvalue().splitlines()[-1]

    again = io.StringIO()
    progress = Progress("ingest", "patches", every=0, stream=again)
    ingest(str(tmp_path / "raw"), str(tmp_path / "shards"), progress=progress)
    assert again.getvalue() == "" and progress.total == 0  # both regions unchanged: no work, none announced


def test_synth_counts_scenes_and_says_the_time_left(tmp_path):
    out = io.StringIO()
    spec = SyntheticSpec(seed=1, regions=("steep-forest", "volcanic-arc"), scene_size=256, scenes_per_region=2,
                         write_scenes=False)
    write_synthetic(tmp_path / "synthetic", spec, Progress("synth", "scenes", every=0, stream=out))
    lines = out.getvalue().splitlines()
    assert counts(out.getvalue(), "synth") == [(1, 4), (2, 4), (3, 4), (4, 4)]
    assert "left" in lines[0] and "left" not in lines[-1]


def test_a_terminal_gets_a_bar():
    leader, follower = os.openpty()
    fcntl.ioctl(follower, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 100, 0, 0))  # a new pty is 0 wide
    with open(follower, "w") as terminal:
        progress = Progress("ingest", "patches", total=3, stream=terminal)
        for _ in range(3):
            progress.add()
        progress.close()
    drawn = ""
    while select.select([leader], [], [], 0.5)[0]:  # what the terminal received, in pieces
        try:
            drawn += os.read(leader, 65536).decode()
        except OSError:  # the other end is closed and drained
            break
    os.close(leader)
    assert "ingest" in drawn and "3/3" in drawn and "100%" in drawn
