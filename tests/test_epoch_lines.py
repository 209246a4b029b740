"""The per-epoch line a driver prints: the epoch table's row, throughput and the time left."""

from swinls.training.progress import LiveLines, TimeLeft, line_fields
from swinls.training.report import epoch_row, epoch_table_header


def report(epoch: int, seconds: float, total: int = 10) -> dict:
    return {"phase": "stage1", "phase_epoch": epoch, "epoch": epoch, "epochs_total": total, "train_loss": 0.5,
            "train_patches": 800, "train_seconds": seconds - 1.0, "seconds": seconds, "valid_f1": 0.61, "valid_ap": 0.7,
            "checkpoint": "s3://b/run/checkpoints/stage1-e0001.pt"}


def test_time_left_is_the_remaining_epochs_at_the_mean_epoch_so_far():
    left = TimeLeft()
    assert left(report(1, 30.0)) == "4 min"  # 9 epochs × 30 s
    assert left(report(2, 50.0)) == "5 min"  # 8 × mean(30, 50) = 320 s
    assert left(report(10, 40.0)) == "0 s"
    assert TimeLeft()({"phase": "stage1"}) is None  # a report without the run's size has no estimate


def test_a_live_line_carries_throughput_and_time_left_under_the_live_header():
    printed: list[str] = []
    LiveLines(printed.append, prefix="t0 ")(report(1, 21.0))
    header = epoch_table_header(live=True).split()
    assert header[-3:] == ["patches/s", "s", "left"]
    cells = printed[0].split()
    assert cells[0] == "t0" and cells[1:3] == ["stage1", "1"]
    assert cells[-4:] == ["40.0", "21.0", "3", "min"]  # 800 patches / 20 s; 9 epochs × 21 s


def test_only_what_a_line_shows_is_forwarded():
    fields = line_fields(report(1, 21.0))
    assert "checkpoint" not in fields and fields["valid_f1"] == 0.61
    assert epoch_row(fields, live=True).split()[:2] == ["stage1", "1"]
