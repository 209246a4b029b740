"""Epoch lines a report never brought (a worker killed after its checkpoint and before every rank
reported; a fit's last report not passed on) are printed from the run's checkpoint history, in
order, as soon as a later epoch arrives or the fit ends."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from swinls.training.forwarding import InOrderEpochs


def entry(epoch: int, attempt: str = "a") -> dict:
    return {"phase": "stage1", "phase_epoch": epoch, "epoch": epoch, "valid_f1": epoch / 10, "attempt": attempt}


def test_lost_reports_are_filled_from_the_history_in_order_and_repeats_pass():
    recorded = [entry(1)]  # the run's history as its checkpoint pointer holds it, growing
    printed: list[dict] = []
    lines = InOrderEpochs(printed.append, lambda: recorded)
    recorded += [entry(2), entry(3)]  # epoch 2's report lost, 3 arrives
    lines(entry(3))
    recorded.append(entry(4))
    lines(entry(3, attempt="b"))  # a restarted attempt repeats an epoch: printed as it comes
    lines(entry(4))
    recorded.append(entry(5))  # the fit's last report never arrives
    lines.finish()
    assert [(p["epoch"], p.get("attempt", "history")) for p in printed] == [
        (2, "history"), (3, "a"), (3, "b"), (4, "a"), (5, "history")]
    assert printed[0] == {"phase": "stage1", "phase_epoch": 2, "epoch": 2, "valid_f1": 0.2}  # what a line shows


def test_an_unreachable_history_loses_no_line_that_came():
    def broken():
        raise OSError("storage down")

    printed: list[dict] = []
    lines = InOrderEpochs(printed.append, broken)
    lines(entry(3))
    lines.finish()
    assert [p["epoch"] for p in printed] == [3]


@pytest.mark.timeout(400)
def test_a_report_queue_lands_on_the_node_of_the_process_that_reads_it():
    """On a cluster, a trial's report queue on another node dies when that node is reclaimed and
    fails the trial (CI: a search lost a trial twice, its queue put on the lost node and then,
    retried, on the node being declared dead). tests/queue_placement.py runs the cluster."""
    done = subprocess.run([sys.executable, str(Path(__file__).with_name("queue_placement.py"))],
                          capture_output=True, text=True, timeout=300, env=dict(os.environ, RAY_ADDRESS=""))
    assert done.returncode == 0, done.stderr[-3000:]
    placed = json.loads(done.stdout.strip().splitlines()[-1])
    assert placed == [True] * len(placed)
