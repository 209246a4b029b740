"""The waiting notice for a trial that reported epochs and then went quiet: its Train workers
lost with a node and waiting to be placed again. Only a wait much longer than the trial's own
epochs counts; a new epoch ends it. (The notice for a trial never placed: test_tune_job.py.)"""

from __future__ import annotations

import time
from types import SimpleNamespace

from swinls.search.callbacks import WaitingNotice


def running_trial(epoch: int):
    # what the callback reads of a Tune trial: its id, status, config and last result
    return SimpleNamespace(trial_id="t1", status="RUNNING", config={"trial": "a1"}, last_result={"epoch": epoch})


def test_a_trial_quiet_for_three_of_its_epochs_is_said_to_wait_and_an_epoch_ends_it(ray_local):
    lines: list[str] = []
    notice = WaitingNotice({"CPU": 1}, 1, lines.append, after_s=5.0)
    trial = running_trial(4)
    notice.on_trial_result(0, [trial], trial, {"epoch": 4})

    notice.epoch_s["t1"] = 20.0
    notice.last_result_at["t1"] = time.monotonic() - 40  # quiet for two epochs: a slow epoch, not a wait
    notice.on_step_begin(0, [trial])
    assert lines == []

    notice.epoch_s["t1"] = 10.0  # quiet for four of its epochs
    notice.on_step_begin(0, [trial])
    assert len(lines) == 1
    assert lines[0].startswith("waiting 40 s: no epoch since epoch 4 (an epoch took 10 s): its Ray Train workers are restarting")
    assert "(trial a1; 1 worker(s) of 1 CPU each; free now: " in lines[0]
    notice.on_step_begin(0, [trial])
    assert len(lines) == 1  # said once per wait, again only after `every_s`

    trial.last_result = {"epoch": 5}
    notice.on_trial_result(0, [trial], trial, {"epoch": 5})  # the workers are back
    notice.on_step_begin(0, [trial])
    assert len(lines) == 1 and not any(key[1] == "stalled" for key in notice.waiting_since)


def test_a_trial_whose_first_epoch_is_slower_than_the_notice_is_not_said_to_wait_after_it(ray_local, monkeypatch):
    # found running Table 3's U-Net rows: 96 s epochs, and after epoch 1 every trial was said to be
    # "restarting, or waiting for a node" 60 s in, since only one result had come to time an epoch by
    from swinls.search import callbacks

    now = [1000.0]
    monkeypatch.setattr(callbacks, "time", SimpleNamespace(monotonic=lambda: now[0]))  # the callback's clock only
    lines: list[str] = []
    notice = WaitingNotice({"CPU": 1}, 1, lines.append, after_s=60.0)
    trial = running_trial(1)
    trial.last_result = {}
    notice.on_trial_start(0, [trial], trial)
    notice.on_step_begin(0, [trial])
    now[0] += 96  # the first epoch takes 96 s
    trial.last_result = {"epoch": 1}
    notice.on_trial_result(0, [trial], trial, {"epoch": 1})

    now[0] += 70  # a second epoch under way, as slow as the first
    notice.on_step_begin(0, [trial])
    assert lines == []

    now[0] += 230  # three of its epochs with none: a wait
    notice.on_step_begin(0, [trial])
    assert len(lines) == 1 and "no epoch since epoch 1 (an epoch took 2 min)" in lines[0]


def test_a_trial_whose_workers_have_room_is_said_to_be_starting_not_waiting_for_other_work(ray_local):
    # found running Table 3's U-Net rows: "free now: 2 CPU; nothing will add nodes here, so it waits
    # for other work to release them" for a trial that needed 1 CPU and was only starting
    lines: list[str] = []
    starting = SimpleNamespace(trial_id="t1", status="RUNNING", config={"trial": "a1"}, last_result={})
    WaitingNotice({"CPU": 1}, 1, lines.append, after_s=0.0).on_step_begin(0, [starting])
    too_big = SimpleNamespace(trial_id="t2", status="RUNNING", config={"trial": "a2"}, last_result={})
    WaitingNotice({"CPU": 1000}, 1, lines.append, after_s=0.0).on_step_begin(0, [too_big])
    assert len(lines) == 2
    assert lines[0].startswith("waiting 0 s: its Ray Train workers have not started (trial a1;")
    assert lines[0].endswith("; there is room for them now, so they are starting")
    assert "(trial a2; 1 worker(s) of 1000 CPU each; free now: " in lines[1]
    assert lines[1].endswith("nothing will add nodes here, so it waits for other work to release them")
