import numpy as np
import pytest

from swinls.selftrain import IGNORE, PseudoLabeler, keep_top_percent, kept_fractions, write_manifest, write_rank


def hand_made_map():
    """4×5 pixels: predicted classes and their confidences, all different."""
    predicted = np.array([[0, 0, 1, 1, 0], [1, 0, 0, 1, 0], [0, 0, 1, 0, 1], [0, 1, 0, 0, 0]], np.uint8)
    confidence = np.linspace(0.5, 0.99, predicted.size).reshape(predicted.shape)[::-1].copy()
    return predicted, confidence


@pytest.mark.parametrize("top_percent", [50.0, 70.0, 90.0, 100.0])
def test_keeps_exactly_the_top_a_percent_of_each_predicted_class(top_percent):
    predicted, confidence = hand_made_map()
    (labels,) = keep_top_percent([predicted], [confidence], top_percent)
    for c in (0, 1):
        where = predicted == c
        k = int(np.ceil(where.sum() * top_percent / 100 - 1e-9))
        expected_kept = np.sort(confidence[where])[::-1][:k]
        kept = confidence[where & (labels == c)]
        assert sorted(kept.tolist(), reverse=True) == expected_kept.tolist()
    assert ((labels == IGNORE) | (labels == predicted)).all()
    if top_percent == 100.0:
        assert (labels == predicted).all()  # A = 100% keeps every pixel


def test_the_ranking_is_global_across_images_and_ties_follow_the_order():
    a, b = np.zeros((2, 2), np.uint8), np.zeros((2, 2), np.uint8)
    conf_a, conf_b = np.full((2, 2), 0.9), np.array([[0.95, 0.1], [0.1, 0.1]])
    labels = keep_top_percent([a, b], [conf_a, conf_b], 50.0)
    assert (labels[0] == 0).sum() + (labels[1] == 0).sum() == 4
    assert labels[1][0, 0] == 0 and (labels[1].ravel()[1:] == IGNORE).all()
    assert (labels[0] == 0).sum() == 3  # four 0.9 ties, three places left: the first three in order


def test_pseudo_labels_written_beside_the_run_replace_unlabeled_masks(tmp_path):
    run = str(tmp_path / "run")
    masks = [np.full((4, 4), 1, np.uint8), np.full((4, 4), IGNORE, np.uint8)]
    write_rank(run, 1, 0, np.array([7, 9]), masks)
    write_manifest(run, 1, ["rank-0.parquet"], kept_fractions(masks))
    rows = {"image": np.zeros((2, 3, 4, 4), np.float16), "mask": np.full((2, 4, 4), IGNORE, np.uint8), "key": np.array([9, 7])}
    out = PseudoLabeler(run, 1)(rows)
    assert (out["mask"][0] == IGNORE).all() and (out["mask"][1] == 1).all()
    with pytest.raises(KeyError, match="no pseudo-label for rows"):
        PseudoLabeler(run, 1)(dict(rows, key=np.array([5, 7])))
