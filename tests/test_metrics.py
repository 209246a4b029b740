import numpy as np
import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from sklearn.metrics import jaccard_score, precision_recall_fscore_support

from swinls.metrics import IGNORE, Confusion


def random_case(seed, n=3, size=16):
    rng = np.random.default_rng(seed)
    mask = (rng.random((n, size, size)) < 0.2).astype(np.int64)
    mask[rng.random((n, size, size)) < 0.1] = IGNORE
    prediction = (rng.random((n, size, size)) < 0.25).astype(np.int64)
    return torch.tensor(prediction), torch.tensor(mask)


@pytest.mark.parametrize("seed", range(5))
def test_scores_match_scikit_learn_on_the_labelled_pixels(seed):
    prediction, mask = random_case(seed)
    confusion = Confusion().add(prediction, mask)
    keep = (mask != IGNORE).numpy().ravel()
    y_true, y_pred = mask.numpy().ravel()[keep], prediction.numpy().ravel()[keep]
    p, r, f, _ = precision_recall_fscore_support(y_true, y_pred, average="binary", pos_label=1)
    assert confusion.precision == pytest.approx(p) and confusion.recall == pytest.approx(r)
    assert confusion.f1 == pytest.approx(f) and confusion.iou == pytest.approx(jaccard_score(y_true, y_pred))
    assert confusion.pixels == keep.sum()


def test_the_sum_over_two_shards_equals_the_whole():
    prediction, mask = random_case(11, n=6)
    whole = Confusion().add(prediction, mask)
    parts = Confusion().add(prediction[:2], mask[:2]) + Confusion().add(prediction[2:], mask[2:])
    assert parts == whole and parts.f1 == whole.f1
    # averaging per-shard F1 would not give the global figure
    halves = [Confusion().add(prediction[:1], mask[:1]).f1, Confusion().add(prediction[1:], mask[1:]).f1]
    assert np.mean(halves) != pytest.approx(whole.f1)


def test_defined_behaviour_without_positives():
    nothing = Confusion().add(torch.zeros(1, 4, 4), torch.zeros(1, 4, 4, dtype=torch.long))
    assert nothing.scores() == {"precision": 1.0, "recall": 1.0, "f1": 1.0, "iou": 1.0}
    false_alarm = Confusion().add(torch.ones(1, 4, 4), torch.zeros(1, 4, 4, dtype=torch.long))
    assert false_alarm.scores() == {"precision": 0.0, "recall": 0.0, "f1": 0.0, "iou": 0.0}
    missed = Confusion().add(torch.zeros(1, 4, 4), torch.ones(1, 4, 4, dtype=torch.long))
    assert missed.precision == 0.0 and missed.recall == 0.0 and missed.f1 == 0.0


def _worker(rank, world, port, queue):
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=world)
    prediction, mask = random_case(21, n=4)
    local = Confusion().add(prediction[rank * 2:(rank + 1) * 2], mask[rank * 2:(rank + 1) * 2])
    queue.put((rank, local.all_reduce()))
    dist.destroy_process_group()


def test_counts_are_summed_across_ddp_workers():
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    context = mp.get_context("spawn")
    queue = context.Queue()
    processes = [context.Process(target=_worker, args=(r, 2, port, queue)) for r in range(2)]
    for p in processes:
        p.start()
    results = dict(queue.get(timeout=120) for _ in processes)
    for p in processes:
        p.join(timeout=60)
    prediction, mask = random_case(21, n=4)
    whole = Confusion().add(prediction, mask)
    assert results[0] == whole and results[1] == whole
