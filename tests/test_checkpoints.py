import pickle

import pytest
import torch

from swinls.checkpoints import CheckpointError, RunStore, load_checkpoint
from tests.conftest import FAKE_SECRET


@pytest.fixture(params=["local", "s3"])
def store(request, tmp_path):
    root = str(tmp_path / "run") if request.param == "local" else request.getfixturevalue("bucket") + "/run"
    return RunStore(root)


def state(value: float) -> dict:
    return {"model": {"w": torch.full((3,), value)}, "optimizer": {"state": {}, "param_groups": [{"lr": 0.1}]},
            "config": {"name": "x", "bands": ["B4"]}}


def test_checkpoints_round_trip_and_the_pointer_moves_last(store):
    store.save(state(1.0), phase="stage1", epoch=1, phase_done=False, history=[{"epoch": 1}])
    store.save(state(2.0), phase="stage1", epoch=2, phase_done=True, history=[{"epoch": 1}, {"epoch": 2}])
    pointer = store.latest()
    assert (pointer["phase"], pointer["epoch"], pointer["phase_done"]) == ("stage1", 2, True)
    loaded = store.load()
    assert torch.equal(loaded["model"]["w"], torch.full((3,), 2.0)) and loaded["phase"] == "stage1"


def test_old_checkpoints_are_pruned_but_the_last_of_each_phase_is_kept(store):
    store.save(state(1.0), phase="stage1", epoch=1, phase_done=True, history=[])
    for epoch in range(1, 4):
        store.save(state(float(epoch)), phase="stage2", epoch=epoch, phase_done=epoch == 3, history=[], keep=1)
    from swinls import storage

    names = sorted(storage.list_files(storage.join(store.uri, "checkpoints")))
    assert names == ["LATEST.json", "stage1-e0001.pt", "stage2-e0003.pt"]


def test_a_corrupt_or_foreign_checkpoint_is_a_clear_error_naming_it(store, tmp_path):
    from swinls import storage

    uri = store.save(state(1.0), phase="stage1", epoch=1, phase_done=False, history=[])
    good = storage.read_bytes(uri)
    storage.write_bytes_atomic(uri, good[: len(good) // 2])
    with pytest.raises(CheckpointError, match="stage1-e0001.pt: content does not match"):
        store.load()
    with pytest.raises(CheckpointError, match="stage1-e0001.pt: not a loadable checkpoint"):
        load_checkpoint(uri)

    foreign = storage.join(store.uri, "foreign.pt")
    buffer = tmp_path / "f.pt"
    torch.save({"weights": torch.ones(2)}, buffer)
    storage.write_bytes_atomic(foreign, buffer.read_bytes())
    with pytest.raises(CheckpointError, match="foreign.pt: not a SwinLS checkpoint"):
        load_checkpoint(foreign)

    class Evil:
        def __reduce__(self):
            return (print, ("this must never run",))

    malicious = storage.join(store.uri, "evil.pt")
    torch.save({"format": "swinls-checkpoint/1", "x": Evil()}, buffer, pickle_protocol=pickle.DEFAULT_PROTOCOL)
    storage.write_bytes_atomic(malicious, buffer.read_bytes())
    with pytest.raises(CheckpointError, match="evil.pt: not a loadable checkpoint"):
        load_checkpoint(malicious)  # weights_only=True refuses to run code


def test_a_run_refuses_a_different_config_under_the_same_name(store):
    store.write_config("name: a\nstage1: {epochs: 2}\n")
    store.write_config("name: a\nstage1: {epochs: 2}\n")  # same: a resume
    with pytest.raises(CheckpointError, match="different config"):
        store.write_config("name: a\nstage1: {epochs: 3}\n")


def test_a_moved_run_resumes_but_a_changed_one_is_still_refused(store):
    store.write_config("name: a\nstorage: /old/place\nstage1: {epochs: 2}\n")
    store.write_config("name: a\nstorage: s3://bucket/new-place\nstage1: {epochs: 2}\n")  # moved: where it lives only
    from swinls import storage

    assert "/old/place" in storage.read_bytes(store.config_uri).decode()  # the first wording is kept
    with pytest.raises(CheckpointError, match=r"different config(.|\n)*-  epochs: 2\n\+  epochs: 3") as refused:
        store.write_config("name: a\nstorage: s3://bucket/new-place\nstage1: {epochs: 3}\n")
    assert "storage" not in str(refused.value)  # the diff shows what differs, not where the runs live
    with pytest.raises(CheckpointError, match="given config: not a config mapping"):
        store.write_config("- just a list\n")


def test_checkpoints_carry_no_credentials(bucket):
    store = RunStore(bucket + "/run")
    uri = store.save(state(1.0), phase="stage1", epoch=1, phase_done=True, history=[])
    from swinls import storage

    assert FAKE_SECRET.encode() not in storage.read_bytes(uri)


class SlowStore(RunStore):
    """A real store whose upload takes a while, as a large checkpoint to S3 does."""

    def __init__(self, uri, delay: float) -> None:
        super().__init__(uri)
        self.delay = delay

    def save(self, state, **kwargs):
        import time

        time.sleep(self.delay)
        return super().save(state, **kwargs)


def test_a_background_save_returns_at_once_and_keeps_the_state_it_was_given(store):
    import time

    from swinls.checkpoints import BackgroundSaver

    slow = SlowStore(store.uri, delay=1.0)
    saver = BackgroundSaver(slow)
    weights = torch.zeros(4)
    history = [{"epoch": 1}]
    started = time.perf_counter()
    uri = saver.submit({"model": {"w": weights}}, phase="stage1", epoch=1, phase_done=False, history=history)
    assert time.perf_counter() - started < 0.5  # the next epoch is not held up by the upload
    weights += 7.0  # training moves on: the next step changes the weights in place
    history.append({"epoch": 2})
    assert slow.latest() is None  # the pointer moves only once the checkpoint is complete
    saver.wait()
    pointer = slow.latest()
    assert pointer["checkpoint"] == "stage1-e0001.pt" and uri.endswith(pointer["checkpoint"])
    assert pointer["history"] == [{"epoch": 1}]
    assert torch.equal(slow.load()["model"]["w"], torch.zeros(4))  # what was submitted, not what followed


def test_a_failed_background_save_is_raised_on_the_training_thread(store, tmp_path):
    from swinls.checkpoints import BackgroundSaver

    blocked = tmp_path / "not-a-folder"
    blocked.write_text("a file where the run's folder should be")
    saver = BackgroundSaver(RunStore(str(blocked)))
    saver.submit({"model": {}}, phase="stage1", epoch=1, phase_done=False, history=[])
    with pytest.raises(CheckpointError, match="saving a checkpoint failed"):
        saver.wait()
    saver.wait()  # raised once, then the saver is usable again
