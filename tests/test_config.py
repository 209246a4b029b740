import pytest
import yaml

from swinls.config import ConfigError, from_dict, to_dict
from swinls.experiment_config import ExperimentConfig, config_yaml, load_experiment


def test_defaults_are_the_papers_recipe():
    config = ExperimentConfig()
    assert config.data.bands == "RGB" and config.model.name == "swinls" and config.model.size == "base"
    assert config.data.augment.flip > 0 and config.data.augment.rotate_shift > 0 and config.data.augment.color == 0
    s1, s2 = config.stage1.loss, config.stage2.loss
    assert (s1.wce, s1.lovasz, s1.image, s1.ce) == (1.0, 1.0, 1.0, 0.0) and not config.stage1.freeze_encoder
    assert (s2.ce, s2.wce, s2.lovasz, s2.image) == (1.0, 0.0, 0.0, 0.0) and config.stage2.freeze_encoder
    assert config.selftrain.rounds == 1 and config.selftrain.top_percent == 100.0


def test_yaml_and_overrides_layer_over_the_defaults_section_by_section(tmp_path):
    (tmp_path / "e.yaml").write_text("model: {size: tiny}\nstage1: {epochs: 7, loss: {lovasz: 0.5}}\n")
    config = load_experiment(str(tmp_path / "e.yaml"), ["stage1.lr=0.003", "data.bands=[B8, B4]", "selftrain.top_percent=70"])
    assert config.model.size == "tiny" and config.model.name == "swinls"
    assert config.stage1.epochs == 7 and config.stage1.lr == 0.003
    assert config.stage1.loss.lovasz == 0.5 and config.stage1.loss.wce == 1.0  # untouched keys keep their defaults
    assert config.data.bands == ("B8", "B4") and config.data.augment.rotate_shift > 0
    assert config.selftrain.top_percent == 70.0


def test_the_saved_config_loads_back_to_the_same_config():
    config = load_experiment(overrides=["model.size=nano", "stage2.epochs=2", "data.holdout_regions=[volcanic-arc]"])
    assert from_dict(ExperimentConfig, yaml.safe_load(config_yaml(config))) == config
    assert to_dict(config)["data"]["holdout_regions"] == ["volcanic-arc"]


@pytest.mark.parametrize("overrides, message", [
    (["stage1.los.wce=1"], r"unknown config key 'stage1.los' \(did you mean 'loss'\?\)"),
    (["modle.size=tiny"], r"unknown config key 'modle' \(did you mean 'model'\?\)"),
    (["model.size=huge"], "model.size: 'huge' is not one of"),
    (["run.num_workers=two"], "run.num_workers: expected an integer"),
    (["data.augment.flip=1.5"], "augment.flip is a probability"),
    (["selftrain.top_percent=-5"], "top_percent"),
    (["stage1.epochs"], "must look like key.sub=value"),
])
def test_unknown_misspelled_or_invalid_keys_are_errors_naming_them(overrides, message):
    with pytest.raises(ConfigError, match=message):
        load_experiment(overrides=overrides)


def test_a_yaml_file_that_is_not_a_mapping_is_refused(tmp_path):
    (tmp_path / "bad.yaml").write_text("- just\n- a list\n")
    with pytest.raises(ConfigError, match="bad.yaml: expected a mapping"):
        load_experiment(str(tmp_path / "bad.yaml"))


def test_an_error_in_an_experiment_file_says_its_line(tmp_path):
    path = tmp_path / "exp.yaml"
    path.write_text("name: a\nmodel:\n  size: nano\n  decoder_chanels: [8, 8]\nstage1:\n  epochs: two\n")
    with pytest.raises(ConfigError, match=rf"^{path}, line 4: unknown config key 'model.decoder_chanels' "
                                          r"\(did you mean 'decoder_channels'\?\)"):
        load_experiment(str(path))
    path.write_text("name: a\nstage1:\n  epochs: two\n")
    with pytest.raises(ConfigError, match=rf"^{path}, line 3: stage1.epochs: expected an integer, got 'two'"):
        load_experiment(str(path))
    path.write_text("stage1: {epochs: 2}\nstage1: {epochs: 3}\n")
    with pytest.raises(ConfigError, match=r"line 2: 'stage1' is written twice \(first on line 1\)"):
        load_experiment(str(path))
    # a bad value given by --set is the override's, not the file's: no line
    path.write_text("stage1: {epochs: 2}\n")
    with pytest.raises(ConfigError, match=r"^stage1.epochs: expected an integer"):
        load_experiment(str(path), ["stage1.epochs=x"])


def test_a_recipe_is_the_base_a_config_starts_from(tmp_path):
    from swinls.recipes import recipe_data

    tiny = recipe_data("tiny")
    assert tiny["model"] == {"size": "nano", "decoder_channels": [64, 32, 16, 16, 8], "drop_path": 0.0}
    config = load_experiment(None, ["recipe=smoke", "stage1.epochs=2"])
    assert config.model.size == "nano" and config.model.decoder_channels == (64, 32, 16, 16, 8)
    assert config.stage1.epochs == 2 and config.stage1.loss.lovasz == 0.25  # the override over the recipe's 4
    mine = tmp_path / "mine.yaml"
    mine.write_text("recipe: tiny\nmodel: {decoder_channels: [32, 16, 16, 8, 8]}\n")
    config = load_experiment(str(mine))
    assert config.model.size == "nano" and config.model.decoder_channels == (32, 16, 16, 8, 8)
    loop = tmp_path / "loop.yaml"
    loop.write_text(f"recipe: {loop}\n")
    with pytest.raises(ConfigError, match="names itself"):
        load_experiment(str(loop))
    with pytest.raises(ConfigError, match=r"recipe 'tinyy' is not one of the shipped recipes \(did you mean tiny\?\): deeplabv3-resnet34, laptop, .*, tiny, unet-resnet34;"):
        load_experiment(None, ["recipe=tinyy"])
    from swinls.search.space import load_space

    smoke = load_space("search_spaces/smoke.yaml").experiment({})
    assert (smoke.model.size, smoke.model.decoder_channels, smoke.data.batch_size) == ("nano", (64, 32, 16, 16, 8), 8)


@pytest.mark.parametrize("name", ["deeplabv3-resnet34", "laptop", "nightly", "paper", "paper-ablation", "smoke", "tiny",
                                  "unet-resnet34"])
def test_every_shipped_recipe_loads_and_names_weights_timm_has(name):
    from swinls.models.encoders import encoder_arch
    from swinls.models.weights import kind_of, timm_weights_name
    from swinls.recipes import shipped

    assert name in shipped()
    config = load_experiment(None, [f"recipe={name}"])
    if config.model.pretrained is not None:
        assert kind_of(config.model.pretrained) == "timm"
        # a real timm name with weights, for the recipe's own architecture (no download needed)
        timm_weights_name(config.model.pretrained, encoder_arch(config.model))
    if name == "paper":
        assert (config.model.name, config.model.size) == ("swinls", "base")
        assert config.model.pretrained == "swin_base_patch4_window7_224.ms_in22k_ft_in1k"
        assert config.data.bands == "RGB" and config.data.augment.flip > 0 and config.data.augment.rotate_shift > 0
        assert (config.stage1.loss.wce, config.stage1.loss.lovasz, config.stage1.loss.image, config.stage1.loss.ce) == (1, 1, 1, 0)
        assert config.stage2.freeze_encoder and config.stage2.loss.ce == 1 and config.stage2.loss.wce == 0
        assert config.selftrain.rounds == 1 and config.selftrain.top_percent == 100.0
        assert config.run.use_gpu
    if name in ("unet-resnet34", "deeplabv3-resnet34"):
        assert config.model.name == name.split("-")[0] and config.model.encoder == "resnet34"
    if name == "laptop":
        assert config.model.size == "nano" and not config.run.use_gpu and config.model.pretrained is None
