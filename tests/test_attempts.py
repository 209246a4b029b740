"""A trial's training runs once per attempt: Tune's restart of a trial whose training gave up
fails at once; a resume (another attempt) trains it again."""

import pytest

from swinls import storage
from swinls.search.attempts import GAVE_UP, TrainingGaveUp, error_line, new_attempt, train_once_per_attempt


def test_training_that_gave_up_is_not_repeated_in_its_attempt_and_is_in_the_next(bucket):
    run_uri = f"{bucket}/search/trials/t1"
    calls = []

    def failing():
        calls.append("fit")
        raise FileNotFoundError(f"{bucket}/shards/hills-0000.parquet: no such object")

    attempt = new_attempt()
    with pytest.raises(FileNotFoundError):
        train_once_per_attempt(run_uri, attempt, failing)
    record = storage.read_json(f"{run_uri}/{GAVE_UP}")
    assert record["attempt"] == attempt and record["error"].startswith("FileNotFoundError: ")
    assert "hills-0000.parquet" in record["error"]

    with pytest.raises(TrainingGaveUp, match=r"^FileNotFoundError: .*hills-0000\.parquet.*\(not trained again") as raised:
        train_once_per_attempt(run_uri, attempt, failing)  # Tune's restart, same attempt
    assert calls == ["fit"]
    # the one line a failed search shows is the recorded reason, whatever wraps it
    wrapped = f"Traceback ...\n  raise\nswinls.search.attempts.TrainingGaveUp: {raised.value}"
    assert error_line(wrapped) == str(raised.value)

    # a resume is another attempt: trained again, and a success clears the old record
    assert train_once_per_attempt(run_uri, new_attempt(), lambda: "trained") == "trained"
    assert not storage.exists(f"{run_uri}/{GAVE_UP}")


def test_a_training_that_succeeds_leaves_no_record(tmp_path):
    assert train_once_per_attempt(str(tmp_path / "run"), new_attempt(), lambda: 7) == 7
    assert not (tmp_path / "run" / GAVE_UP).exists()


def test_a_record_that_cannot_be_written_leaves_the_trainings_own_error(tmp_path):
    (tmp_path / "run").write_text("a file where the run folder should be")  # the record cannot be written under it

    def failing():
        raise ValueError("bands ['B99'] are not Sentinel-2 bands")

    with pytest.raises(ValueError, match="B99"):
        train_once_per_attempt(str(tmp_path / "run"), new_attempt(), failing)
