"""The model card is one typed, versioned dataclass: every older version upgrades on reading, a
newer one is refused in one line, and what is published reads back equal."""

import json

import pytest

from swinls.model_card import VERSION, CardError, ModelCard, Regions, card_from_data, parse_card

NORMALIZATION = {"band_set": "RGB", "inputs": ["B4", "B3", "B2"], "channels": ["B4", "B3", "B2"],
                 "mean": [0.1, 0.2, 0.3], "std": [1.0, 1.1, 1.2], "source": "dataset"}
CONFIG = {"model": {"name": "swinls", "size": "nano"},
          "data": {"train_regions": ["steep-forest"], "holdout_regions": ["volcanic-arc"]}}


def version_1(**extra) -> dict:
    """A card as `swinls-model/1` wrote it; the oldest lack regions and the manifest's hash."""
    return {"format": "swinls-model/1", "experiment": "smoke", "trial": "t1", "created": "2026-11-20T10:00:00+00:00",
            "objective": {"metric": "valid_f1", "scope": "last", "mode": "max", "value": 0.61}, "config": CONFIG,
            "metrics": {"final": {"valid_f1": 0.61, "valid_best_threshold": 0.4}, "per_phase": {"stage1": {"valid_f1": 0.6}}},
            "bands": ["B4", "B3", "B2"], "normalization": NORMALIZATION,
            "code_version": {"package": "0.1.0", "git": None}, "libraries": {"torch": "2.9.0"}, **extra}


def test_a_version_1_card_with_regions_upgrades_keeping_them():
    card = card_from_data(version_1(regions={"trained": ["a", "b"], "held_out": ["c"]}, data_manifest_sha256="ab12"),
                          "old.json")
    assert isinstance(card, ModelCard) and card.format == f"swinls-model-card/{VERSION}"
    assert card.regions == Regions(("a", "b"), ("c",)) and card.trained_regions == ["a", "b"]
    assert card.data_manifest_sha256 == "ab12" and card.metrics.final["valid_best_threshold"] == 0.4
    assert card.model == {"name": "swinls", "size": "nano"} and card.code_version.package == "0.1.0"


def test_the_oldest_version_1_card_takes_its_regions_from_its_config():
    card = card_from_data(version_1(), "oldest.json")
    assert card.regions == Regions(("steep-forest",), ("volcanic-arc",)) and card.data_manifest_sha256 is None
    everything = card_from_data(version_1(config={"model": {}, "data": {}}), "oldest.json")
    assert everything.regions == Regions(None, ()) and everything.trained_regions == []


def test_the_current_version_round_trips_through_json():
    card = card_from_data(version_1(regions={"trained": ["a"], "held_out": []}), "x")
    again = parse_card(card.to_json(), "again.json")
    assert again == card and json.loads(card.to_json())["format"] == f"swinls-model-card/{VERSION}"


@pytest.mark.parametrize("data, message", [
    ({"format": "swinls-model-card/9"}, "card.json: the model card is version 9, newer than this code reads"),
    ({"format": "something-else/1"}, "card.json: not the model card of a published SwinLS model"),
    ([1, 2], "card.json: not the model card of a published SwinLS model"),
    (dict(version_1(), normalisation={}), "card.json: malformed model card: unknown config key 'normalisation' "
                                          "(did you mean 'normalization'?)"),
    (dict(version_1(), metrics={"final": 3}), "card.json: malformed model card: metrics.final: expected a mapping"),
])
def test_a_card_that_cannot_be_read_is_one_line_naming_the_file(data, message):
    with pytest.raises(CardError) as caught:
        card_from_data(data, "card.json")
    assert str(caught.value).startswith(message)
    with pytest.raises(CardError, match="card.json: the model card is not valid JSON"):
        parse_card(b"{not json", "card.json")


def test_a_published_model_reads_back_as_the_card_it_was_published_with(published_model):
    from swinls.published import read_card

    card, version_uri = read_card(published_model)
    on_disk = json.loads(open(f"{version_uri}/model_card.json").read())
    assert on_disk["format"] == f"swinls-model-card/{VERSION}" and card.to_dict() == on_disk
    assert card.bands == tuple(card.normalization["channels"]) and card.metrics.per_phase
