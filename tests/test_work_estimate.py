"""The dry run's estimate of a run's work and time: patch passes counted from the recipe and the
split sizes, time from the measured CPU throughput or, on GPUs, FLOPs over a stated utilisation."""

import pytest

from swinls.experiment_config import load_experiment
from swinls.work_estimate import LANDSLIDE4SENSE_ROWS, MEASURED, MEASURED_GPU, describe, estimate, gpu_rate, passes

ROWS = {"train": 100, "valid": 10, "unlabeled": 20}


def test_passes_count_every_epoch_of_both_stages_and_self_training():
    laptop = load_experiment(None, ["recipe=laptop"])  # 4 + 1 epochs, one round of 1 + 1 epochs
    train, evaluation = passes(laptop, ROWS)
    assert train == 5 * 100 + 2 * (100 + 20)  # self-training trains on labelled + pseudo-labelled rows
    assert evaluation == 5 * 10 + 20 + 2 * 10  # each epoch validates; the round first predicts the unlabelled split
    no_round = load_experiment(None, ["recipe=laptop", "selftrain.rounds=0"])
    assert passes(no_round, ROWS) == (500, 50)


def test_cpu_time_comes_from_the_measured_throughput_and_the_threads_here():
    laptop = load_experiment(None, ["recipe=laptop", "selftrain.rounds=0"])
    two = estimate(laptop, ROWS, threads=2)
    low, high = MEASURED[("swinls", "nano")][1]
    passes_seconds = (3 * 500 + 50) / 3
    assert two.seconds == pytest.approx((passes_seconds / high, passes_seconds / low))
    assert estimate(laptop, ROWS, threads=4).seconds == pytest.approx(tuple(s / 2 for s in two.seconds))
    # trials side by side share the CPU: no faster in all
    assert estimate(laptop, ROWS, trials=4, parallel=4, threads=2).seconds == pytest.approx(tuple(4 * s for s in two.seconds))
    assert describe(two).startswith("work: 500 training and 50 evaluation patch passes; time ")
    assert "measured: swinls nano trains" in two.basis


def test_gpu_time_comes_from_the_measured_step_at_the_recipes_batch_and_scales_with_gpus():
    paper = load_experiment(None, ["recipe=paper"])  # Swin-B, batch 16
    one = estimate(paper, LANDSLIDE4SENSE_ROWS)
    rate = dict(MEASURED_GPU[("swinls", "base")])[16]
    assert one.basis.startswith(f"measured: swinls base trains {rate:.0f} patches/s at batch 16 on one H200")
    seconds = (3 * one.train_passes + one.eval_passes) / 3 / rate
    assert one.seconds == pytest.approx((seconds / 1.25, seconds / 0.8))
    two = estimate(load_experiment(None, ["recipe=paper", "run.num_workers=2"]), LANDSLIDE4SENSE_ROWS)
    assert two.seconds == pytest.approx(tuple(s / 2 for s in one.seconds))
    # the CPU figure for the same recipe is far longer: why train.py refuses it without a GPU
    cpu = estimate(load_experiment(None, ["recipe=paper", "run.use_gpu=false"]), LANDSLIDE4SENSE_ROWS, threads=2)
    assert cpu.seconds[0] > 10 * one.seconds[1]


def test_the_gpu_step_time_is_interpolated_between_measured_batches():
    points = ((16, 160.0), (64, 320.0))  # a step takes 0.1 s at 16 and 0.2 s at 64
    assert gpu_rate(points, 16) == pytest.approx(160.0) and gpu_rate(points, 64) == pytest.approx(320.0)
    assert gpu_rate(points, 40) == pytest.approx(40 / 0.15)
    assert gpu_rate(points, 8) == pytest.approx(80.0)  # below the smallest: no quicker a step
    assert gpu_rate(points, 112) == pytest.approx(112 / 0.3)  # beyond the largest: the trend goes on
    assert gpu_rate(((16, 160.0),), 64) == pytest.approx(640.0)


def test_a_model_without_a_benchmark_figure_has_no_time_and_says_so():
    config = load_experiment(None, ["recipe=laptop", "model.name=unet", "model.encoder=resnet18"])
    work = estimate(config, ROWS, threads=2)
    assert work.seconds is None and "no CPU figure for unet resnet18" in work.basis
    assert "time unknown" in describe(work)


def test_the_dry_run_shows_the_recipe_by_its_headline_keys_and_what_differs():
    from swinls.dry_run import recipe_lines

    lines = recipe_lines(load_experiment(None, ["recipe=paper", "stage2.weight_decay=0.3"]))
    assert '  model.size = "base"' in lines and '  model.pretrained = "swin_base_patch4_window7_224.ms_in22k_ft_in1k"' in lines
    assert "  selftrain.top_percent = 100.0" in lines  # the default, shown: a headline key
    assert "  stage2.weight_decay = 0.3" in lines  # not a headline key, shown because it differs
    assert not any(line.startswith("  model.encoder") for line in lines)  # a Swin has no ResNet encoder
    assert not any(line.startswith("  data.shuffle_buffer") for line in lines)
