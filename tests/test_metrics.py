import math
import numpy as np
import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from sklearn.metrics import jaccard_score, precision_recall_fscore_support

from swinls.metrics import IGNORE, Confusion, DeviceCounts, ScoreHistogram, defined, json_safe


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


def test_nothing_to_find_and_nothing_found_scores_zero_as_the_official_evaluation():
    # labelled pixels, no landslide, none predicted: the official P/R/F1 (with their epsilon) give 0
    nothing = Confusion().add(torch.zeros(1, 4, 4), torch.zeros(1, 4, 4, dtype=torch.long))
    assert nothing.scores() == {"precision": 0.0, "recall": 0.0, "f1": 0.0, "iou": 0.0}
    false_alarm = Confusion().add(torch.ones(1, 4, 4), torch.zeros(1, 4, 4, dtype=torch.long))
    assert false_alarm.scores() == {"precision": 0.0, "recall": 0.0, "f1": 0.0, "iou": 0.0}
    missed = Confusion().add(torch.zeros(1, 4, 4), torch.ones(1, 4, 4, dtype=torch.long))
    assert missed.precision == 0.0 and missed.recall == 0.0 and missed.f1 == 0.0


def test_a_split_without_labelled_pixels_has_undefined_scores_not_one():
    # the 2022 release's ValidData: every pixel ignored
    unlabelled = torch.full((2, 4, 4), IGNORE, dtype=torch.long)
    confusion = Confusion().add(torch.ones(2, 4, 4), unlabelled)
    assert confusion.pixels == 0
    assert all(math.isnan(v) for v in confusion.scores().values())
    assert not defined(confusion.f1) and defined(0.0) and not defined(None)
    assert json_safe(confusion.scores()) == {"precision": None, "recall": None, "f1": None, "iou": None}
    histogram = ScoreHistogram().add(torch.rand(2, 4, 4), unlabelled)
    assert math.isnan(histogram.average_precision()) and math.isnan(histogram.best_f1())
    # the device counts the training loop reads agree
    counts = DeviceCounts().add(torch.randn(2, 2, 4, 4), unlabelled)
    read_confusion, read_histogram = DeviceCounts.read(counts.counts)
    assert math.isnan(read_confusion.f1) and math.isnan(read_histogram.average_precision())


def test_labelled_without_a_landslide_has_f1_zero_but_no_ranking_curve():
    background = torch.zeros(2, 4, 4, dtype=torch.long)
    confusion = Confusion().add(torch.zeros(2, 4, 4), background)
    assert confusion.f1 == 0.0
    histogram = ScoreHistogram().add(torch.rand(2, 4, 4), background)
    # no landslide pixel: precision-recall is undefined, and so is its best point
    assert math.isnan(histogram.average_precision())
    assert all(math.isnan(v) for v in histogram.best_operating_point())


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


def scored_case(seed, n=3, size=16, bins=1000):
    """Probabilities at bin centres, correlated with the mask, so each distinct score is a bin."""
    rng = np.random.default_rng(seed)
    mask = (rng.random((n, size, size)) < 0.2).astype(np.int64)
    mask[rng.random((n, size, size)) < 0.1] = IGNORE
    raw = np.clip(0.3 * (mask == 1) + rng.random((n, size, size)) * 0.7, 0, 0.999)
    probability = (np.floor(raw * bins) + 0.5) / bins
    return torch.tensor(probability, dtype=torch.float32), torch.tensor(mask)


@pytest.mark.parametrize("seed", range(4))
def test_average_precision_and_best_f1_match_scikit_learn(seed):
    from sklearn.metrics import average_precision_score, precision_recall_curve

    from swinls.metrics import ScoreHistogram

    probability, mask = scored_case(seed)
    histogram = ScoreHistogram().add(probability, mask)
    keep = (mask != IGNORE).numpy().ravel()
    y_true, y_score = mask.numpy().ravel()[keep], probability.numpy().ravel()[keep]
    assert histogram.average_precision() == pytest.approx(average_precision_score(y_true, y_score), abs=1e-9)
    precision, recall, _ = precision_recall_curve(y_true, y_score)
    f1 = np.where(precision + recall > 0, 2 * precision * recall / np.maximum(precision + recall, 1e-12), 0)
    assert histogram.best_f1() == pytest.approx(f1.max(), abs=1e-9)
    halves = ScoreHistogram.from_list([a + b for a, b in zip(ScoreHistogram().add(probability[:1], mask[:1]).to_list(),
                                                             ScoreHistogram().add(probability[1:], mask[1:]).to_list())])
    assert halves.average_precision() == histogram.average_precision()  # counts add up across workers


@pytest.mark.parametrize("seed", range(3))
def test_the_best_threshold_applied_to_the_pixels_gives_the_best_f1(seed):
    from swinls.metrics import ScoreHistogram

    probability, mask = scored_case(seed)
    histogram = ScoreHistogram().add(probability, mask)
    threshold = histogram.best_threshold()
    assert 0.0 <= threshold < 1.0
    at_threshold = Confusion().add(probability >= threshold, mask).f1
    assert at_threshold == pytest.approx(histogram.best_f1(), abs=1e-12)
    for other in np.linspace(0.0, 0.999, 37):  # no other threshold does better
        assert Confusion().add(probability >= other, mask).f1 <= at_threshold + 1e-12


def test_average_precision_sees_a_good_ranking_that_argmax_f1_misses():
    from swinls.metrics import ScoreHistogram

    mask = torch.tensor([[[1, 1, 0, 0], [0, 0, 0, IGNORE]]])
    probability = torch.tensor([[[0.40, 0.35, 0.10, 0.20], [0.05, 0.30, 0.01, 0.99]]])  # below 0.5, ranked right
    assert Confusion().add(probability > 0.5, mask).f1 == 0.0
    histogram = ScoreHistogram().add(probability, mask)
    assert histogram.average_precision() == 1.0 and histogram.best_f1() == 1.0
    worse = ScoreHistogram().add(torch.tensor([[[0.40, 0.05, 0.10, 0.20], [0.05, 0.30, 0.01, 0.99]]]), mask)
    assert 0.0 < worse.average_precision() < 1.0
    assert np.isnan(ScoreHistogram().add(probability, torch.zeros_like(mask)).average_precision())
