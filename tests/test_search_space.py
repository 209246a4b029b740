import optuna
import pytest

from swinls.search import SpaceError, load_space, parse_space

GOOD = """\
metric: valid_f1
mode: max
budget: {samples: 3}
base:
  model: {size: nano}
  stage1: {epochs: 2}
parameters:
  data.bands: {choices: [RGB, NGB, "B8,B4,B3"]}
  stage1.lr: {low: 1.0e-4, high: 1.0e-2, log: true}
  stage1.epochs: {low: 1, high: 3}
  selftrain.rounds: {choices: [0, 1]}
  selftrain.top_percent: {low: 50.0, high: 100.0, when: {selftrain.rounds: [1]}}
"""


def sample(space, seed):
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=seed))
    trial = study.ask()
    space.define_by_run(trial)
    return trial.params


def test_a_space_round_trips_to_trial_configs_with_conditional_parameters():
    space = parse_space(GOOD)
    assert space.samples == 3 and [p.key for p in space.parameters][:2] == ["data.bands", "stage1.lr"]
    seen_rounds = set()
    for seed in range(12):
        params = sample(space, seed)
        seen_rounds.add(params["selftrain.rounds"])
        assert ("selftrain.top_percent" in params) == (params["selftrain.rounds"] == 1)
        assert isinstance(params["stage1.epochs"], int) and 1e-4 <= params["stage1.lr"] <= 1e-2
        config = space.experiment(params)
        assert config.model.size == "nano" and config.stage1.lr == params["stage1.lr"]
        assert config.selftrain.rounds == params["selftrain.rounds"]
    assert seen_rounds == {0, 1}


def test_shipped_spaces_are_valid():
    smoke, paper = load_space("search_spaces/smoke.yaml"), load_space("search_spaces/paper.yaml")
    assert smoke.experiment({}).model.size == "nano"
    bands = next(p for p in paper.parameters if p.key == "data.bands").choices
    assert set(bands) == {"RGB", "SWIR", "NGB", "PCA-3", "RGB+NIR", "RGB+SWIR", "RGB+NIR+SWIR", "ALL"}  # Table 1
    kinds = next(p for p in paper.parameters if p.key == "stage1.loss.lovasz_kind").choices
    assert [paper.experiment({"stage1.loss.lovasz_kind": k}).stage1.loss.lovasz_kind for k in kinds] == ["softmax", "hinge"]


@pytest.mark.parametrize("line, message", [
    ('  stage1.lerning_rate: {low: 0.1, high: 0.2}', r"my.yaml, line 13: parameter 'stage1.lerning_rate': unknown parameter: unknown config key 'stage1.lerning_rate'"),
    ('  stage2.lr: {low: 0.1, high: 0.01}', r"my.yaml, line 13: parameter 'stage2.lr': bad range, low \(0.1\) must be below high \(0.01\)"),
    ('  stage2.lr: {low: 0.0, high: 0.01, log: true}', r"my.yaml, line 13: parameter 'stage2.lr': a log range must start above 0"),
    ('  model.size: {choices: [tiny, huge]}', r"my.yaml, line 13: parameter 'model.size': .*'huge' is not one of"),
    ('  stage2.lr: {low: 0.1, high: 0.2, when: {stage1.momentum: [1]}}', r"'when' refers to 'stage1.momentum'"),
    ('  stage2.lr: {min: 0.1, max: 0.2}', r"my.yaml, line 13: unknown config key 'parameters.stage2.lr.min'; valid keys here: choices, low, high"),
    ('  data.augment.flip: {low: 0.5, high: 1.5}', r"my.yaml, line 13: parameter 'data.augment.flip': .*augment.flip is a probability, got 1.5"),
])
def test_each_malformed_parameter_is_an_error_naming_its_key_and_line(line, message):
    with pytest.raises(SpaceError, match=message):
        parse_space(GOOD + line + "\n", "my.yaml")


def test_an_unknown_band_set_is_an_error_naming_the_parameter_and_line():
    bad = GOOD.replace('data.bands: {choices: [RGB, NGB, "B8,B4,B3"]}', "data.bands: {choices: [RGB, RBG]}")
    with pytest.raises(SpaceError, match=r"my.yaml, line 8: parameter 'data.bands': unknown band set 'RBG'; valid sets: RGB"):
        parse_space(bad, "my.yaml")


def test_a_parameter_given_twice_is_an_error():
    with pytest.raises(SpaceError, match=r"line 13: 'parameters.stage1.lr' is written twice \(first on line 9\)"):
        parse_space(GOOD + "  stage1.lr: {low: 0.1, high: 0.2}\n")


def test_malformed_top_level_settings_are_errors():
    with pytest.raises(SpaceError, match="line 1: unknown config key 'paramters' \\(did you mean 'parameters'\\?\\)"):
        parse_space("paramters: {}\n")
    with pytest.raises(SpaceError, match="line 1: mode: 'maximum' is not one of 'max', 'min'"):
        parse_space("mode: maximum\n")
    with pytest.raises(SpaceError, match="line 1: base: unknown config key 'modle' \\(did you mean 'model'\\?\\)"):
        parse_space("base: {modle: {size: nano}}\n")
    with pytest.raises(SpaceError, match="unknown config key 'resources.gpus'"):
        parse_space("resources: {gpus: 1}\n")
    with pytest.raises(SpaceError, match="line 1: sampler: 'grid' is not one of 'tpe', 'random'"):
        parse_space("sampler: grid\n")
    assert parse_space("sampler: random\n").sampler == "random" and parse_space("").sampler == "tpe"


def test_a_trial_id_of_digits_stays_a_name():
    from swinls.search.experiment import trial_experiment

    space = parse_space(GOOD)
    experiment = trial_experiment(space, {"stage1.lr": 0.001}, "s3://b/shards", "s3://b/exp/x", "21866242")
    assert experiment.name == "21866242" and experiment.storage == "s3://b/exp/x/trials"
    assert experiment.data.uri == "s3://b/shards" and experiment.stage1.lr == 0.001


def test_sampler_settings_are_checked_and_tpe_models_results_after_its_startup_trials():
    from swinls.search.experiment import make_sampler

    for text, message in (("sampler: {type: tpe, startup: 4}\n", "unknown config key 'sampler.startup'"),
                          ("sampler: {type: random, startup_trials: 4}\n", "only applies to tpe"),
                          ("sampler: {type: tpe, startup_trials: 0}\n", "at least 1, got 0"),
                          ("sampler: [tpe]\n", "sampler: \\['tpe'\\] fits none of 'tpe' or 'random' or a mapping")):
        with pytest.raises(SpaceError, match=message):
            parse_space(text)
    space_text = "parameters:\n  stage1.lr: {low: 1.0e-4, high: 1.0e-2, log: true}\n"

    def draws(sampler_text):
        space = parse_space(sampler_text + space_text)
        study = optuna.create_study(direction="maximize", sampler=make_sampler(space, seed=3))
        for _ in range(4):
            trial = study.ask()
            space.define_by_run(trial)
            study.tell(trial, -abs(trial.params["stage1.lr"] - 1e-3))
        return [t.params["stage1.lr"] for t in study.trials]

    random, tpe_default, tpe_two = draws("sampler: random\n"), draws("sampler: tpe\n"), draws("sampler: {startup_trials: 2}\n")
    assert parse_space("sampler: {startup_trials: 2}\n").sampler == "tpe"
    assert tpe_default == random  # 10 startup trials: still drawing at random
    assert tpe_two[:2] == random[:2] and tpe_two[2:] != random[2:]  # modelling from the third trial on


def test_metrics_must_be_reported_and_the_scheduler_may_stop_trials_by_its_own():
    with pytest.raises(SpaceError, match="metric 'valid_f2' is not reported by the training loop"):
        parse_space("metric: valid_f2\n")
    with pytest.raises(SpaceError, match="scheduler.metric 'valid_auc' is not reported"):
        parse_space("scheduler: {type: asha, metric: valid_auc}\n")
    with pytest.raises(SpaceError, match="line 1: scheduler.mode: 'up' is not one of 'max', 'min'"):
        parse_space("scheduler: {metric: valid_ap, mode: up}\n")
    default = parse_space("metric: train_loss\nmode: min\n")
    assert default.scheduler["metric"] == "score" and default.scheduler["mode"] == "min"  # the trial's score
    assert parse_space("scheduler: {metric: score}\n").scheduler == {"metric": "score", "mode": "max"}
    assert parse_space("metric: train_loss\nmode: min\nscheduler: {metric: score}\n").scheduler["mode"] == "min"
    with pytest.raises(SpaceError, match="metric 'score' is not reported"):
        parse_space("metric: score\n")  # the score is made from the metric, it cannot be the metric
    by_ap = parse_space("scheduler: {type: asha, grace_period: 1, metric: valid_ap}\n")
    assert (by_ap.metric, by_ap.mode) == ("valid_f1", "max") and by_ap.scheduler["metric"] == "valid_ap"
    assert by_ap.scheduler["mode"] == "max" and parse_space("scheduler: {metric: train_loss}\n").scheduler["mode"] == "min"


@pytest.mark.parametrize("scope, epochs", [(None, 1), ("last", 1), ("last-1-avg", 1), ("last-3-avg", 3), ("last-12-avg", 12)])
def test_scope_names_the_epochs_a_trial_is_scored_over(scope, epochs):
    space = parse_space(GOOD if scope is None else f"scope: {scope}\n{GOOD}")
    assert space.score_epochs == epochs and space.scope == ("last" if epochs == 1 else scope)


@pytest.mark.parametrize("scope", ["best", "last-0-avg", "last-3", "last--2-avg", "last-x-avg", "3", "avg"])
def test_a_malformed_scope_is_an_error_that_says_what_is_allowed(scope):
    with pytest.raises(SpaceError, match=f"scope must be last or last-N-avg .* got {scope!r}"):
        parse_space(f"scope: {scope!r}\n{GOOD}")


def test_every_section_of_a_space_is_read_by_the_strict_loader_with_lines():
    text = "metric: valid_f1\nbudget:\n  samples: 0\n"
    with pytest.raises(SpaceError, match=r"^s.yaml, line 2: budget: samples must be at least 1"):
        parse_space(text, "s.yaml")
    with pytest.raises(SpaceError, match=r"^s.yaml, line 3: unknown config key 'scheduler.grace_perod' \(did you mean 'grace_period'\?\)"):
        parse_space("mode: max\nscheduler:\n  grace_perod: 2\n", "s.yaml")
    with pytest.raises(SpaceError, match=r"^s.yaml, line 4: parameters.stage1.lr.log: expected true or false, got 'yes please'"):
        parse_space("parameters:\n  stage1.lr:\n    low: 0.1\n    log: yes please\n", "s.yaml")
    # resources are RunConfig's fields, checked by RunConfig
    with pytest.raises(SpaceError, match=r"^s.yaml, line 1: resources: .*gpus_per_worker must be a fraction"):
        parse_space("resources:\n  gpus_per_worker: 1.5\n", "s.yaml")
    space = parse_space("resources: {num_workers: 2, driver_cpus: 0.5}\nbase: {run: {seed: 7}}\n")
    assert (space.run.num_workers, space.run.seed, space.driver_cpus) == (2, 7, 0.5)
