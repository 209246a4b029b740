"""The histogram threshold of self-training against the exact global sort, on one process and
under 2-worker DDP (gloo, real processes)."""

import os
import socket

import numpy as np
import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from swinls.selftrain import IGNORE, keep_top_percent
from swinls.top_percent import keep_top_percent_distributed, margin_bits


def rank_data(rank: int, seed: int):
    """Logits of a few patches, with margins rounded so that many pixels tie, including at 0."""
    g = torch.Generator().manual_seed(seed * 10 + rank)
    logits = torch.randn(3 + rank, 2, 9, 7, generator=g) * 4
    logits[:, 1] = logits[:, 0] + torch.round((logits[:, 1] - logits[:, 0]) * 2) / 2  # ties
    logits[0, :, :2] = 30.0  # margin exactly 0: ties where both logits agree
    return margin_bits(logits)


def exact(predictions, bits, top_percent):
    margins = [b.view(torch.float32).numpy() for b in bits]
    return keep_top_percent([p.numpy() for p in predictions], margins, top_percent)


def all_sum_single(t):
    return t.cpu()


@pytest.mark.parametrize("top_percent", [0.5, 37.0, 50.0, 70.0, 90.0, 100.0])
def test_one_rank_equals_the_exact_sort(top_percent):
    predicted, bits = rank_data(0, 1)
    got = keep_top_percent_distributed(predicted, bits, top_percent, all_sum_single)
    (want,) = exact([predicted], [bits], top_percent)
    np.testing.assert_array_equal(got.numpy(), want)
    kept = got != IGNORE
    for c in (0, 1):
        n = int((predicted == c).sum())
        assert int((kept & (predicted == c)).sum()) == int(np.ceil(n * top_percent / 100 - 1e-9))


def test_margins_are_ranked_through_their_bits():
    """float32 bit patterns of non-negative margins order like the margins, near certainty too
    (where float16 confidences all round to 1)."""
    margins = torch.tensor([0.0, 1e-30, 1e-3, 0.5, 7.6, 8.4, 17.5, 18.0, 80.0, 1e30])
    logits = torch.stack([torch.zeros_like(margins), margins], 1).view(-1, 2, 1, 1)
    _, bits = margin_bits(logits)
    assert torch.all(bits.view(-1)[1:] > bits.view(-1)[:-1])
    assert len(set(torch.softmax(logits, 1)[:, 1].half().view(-1).tolist()[6:])) == 1  # what the old ranking saw


def _worker(rank: int, world: int, port: int, seed: int, top_percent: float, out: str) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    dist.init_process_group("gloo", rank=rank, world_size=world)
    try:
        def all_sum(t):
            t = t.clone()
            dist.all_reduce(t)
            return t

        predicted, bits = rank_data(rank, seed)
        labels = keep_top_percent_distributed(predicted, bits, top_percent, all_sum, rank, world)
        torch.save({"predicted": predicted, "bits": bits, "labels": labels}, f"{out}-{rank}.pt")
    finally:
        dist.destroy_process_group()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.parametrize("top_percent, seed", [(50.0, 0), (70.0, 1), (90.0, 2)])
def test_two_ddp_workers_equal_the_exact_global_sort(tmp_path, top_percent, seed):
    out = str(tmp_path / "rank")
    mp.start_processes(_worker, args=(2, _free_port(), seed, top_percent, out), nprocs=2, start_method="spawn")
    parts = [torch.load(f"{out}-{r}.pt", weights_only=True) for r in range(2)]
    predictions = [row for p in parts for row in p["predicted"]]
    bits = [row for p in parts for row in p["bits"]]
    want = exact(predictions, bits, top_percent)
    got = [row.numpy() for p in parts for row in p["labels"]]
    for g, w in zip(got, want):
        np.testing.assert_array_equal(g, w)
    # ties at the threshold were split between the ranks, not only kept or dropped whole
    assert any((p["labels"] != IGNORE).any() for p in parts)


def test_a_negative_zero_margin_ranks_as_zero():
    """-0.0 - 0.0 is -0.0; its sign bit used to index below the histogram (a device assert on a GPU)."""
    logits = torch.zeros(1, 2, 2, 2)
    logits[0, 0, 0, 0], logits[0, 1, 0, 0] = -0.0, 0.0
    logits[0, 0, 1] = torch.tensor([3.0, 1.0])
    predicted, bits = margin_bits(logits)
    assert (bits >= 0).all()
    labels = keep_top_percent_distributed(predicted, bits, 50.0, lambda t: t)
    assert labels.shape == predicted.shape and (labels != IGNORE).sum() == 2


def test_non_finite_logits_are_refused_not_ranked_most_confident():
    from swinls.top_percent import NonFiniteLogits

    logits = torch.randn(1, 2, 4, 4)
    logits[0, 0, 0, 0] = float("nan")
    predicted, bits = margin_bits(logits)
    with pytest.raises(NonFiniteLogits, match="1 pixels have a non-finite logit margin"):
        keep_top_percent_distributed(predicted, bits, 50.0, lambda t: t)
    logits[0, 0, 0, 0] = float("inf")
    with pytest.raises(NonFiniteLogits):
        keep_top_percent_distributed(*margin_bits(logits), 100.0, lambda t: t)


def test_a_of_zero_keeps_no_pseudo_label_for_table_4s_control():
    predicted, bits = rank_data(0, seed=3)
    labels = keep_top_percent_distributed(predicted, bits, 0.0, lambda t: t)
    assert (labels == IGNORE).all()
    assert all((e == IGNORE).all() for e in exact([predicted], [bits], 0.0))
