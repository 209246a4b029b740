"""jobs/predict.py as users run it, and the lines jobs/tune.py ends with that lead to it."""

import json
import os
import shlex
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

from tests.jobs import load_job

ROOT = Path(__file__).resolve().parents[1]


def run_job(*args, cwd=ROOT):
    env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"}  # in this process, not on a cluster
    return subprocess.run([sys.executable, str(ROOT / "jobs" / "predict.py"), *args], capture_output=True, text=True,
                          timeout=300, cwd=cwd, env=env)


def test_the_command_line_writes_a_submission_and_prints_its_metrics(prediction_inputs, published_model, tmp_path):
    done = run_job(published_model, str(prediction_inputs.split), str(tmp_path / "out"))
    assert done.returncode == 0, done.stderr
    metrics = json.loads((tmp_path / "out" / "metrics.json").read_text())
    assert (f"metrics over 5 images, 81920 pixels: precision {metrics['precision']:.4f}, recall {metrics['recall']:.4f}, "
            f"F1 {metrics['f1']:.4f}, IoU {metrics['iou']:.4f}") in done.stdout
    assert (f"wrote {tmp_path / 'out'}: mask_3.h5, mask_7.h5, mask_10.h5, mask_25.h5, mask_100.h5, metrics.json "
            "and 2 more") in done.stdout
    again = run_job(published_model, str(prediction_inputs.split), str(tmp_path / "out"), "--threshold", "card")
    assert again.returncode == 2 and again.stdout == ""
    assert again.stderr.strip() == (f"error: {tmp_path / 'out'}: already exists; choose another OUTPUT or pass "
                                    "--overwrite to replace it")


def test_a_search_ends_with_prediction_commands_that_run_on_the_built_in_data(published_model, tmp_path):
    from swinls.search.space import parse_space
    from swinls.synthetic import SyntheticSpec, write_synthetic

    from swinls.search.summary import predict_commands

    predict_job = load_job("predict")
    cache = tmp_path / "cache"
    write_synthetic(cache / "synthetic", SyntheticSpec(seed=1, regions=("volcanic-arc",), scene_size=512))
    space = parse_space((ROOT / "search_spaces" / "smoke.yaml").read_text())
    result = SimpleNamespace(best_uri=published_model, experiment_uri=str(tmp_path / "runs" / "smoke"))
    commands = predict_commands(result, space, data=None, cache=str(cache), root=ROOT)
    assert [c.split()[2:] for c in commands] == [
        [published_model, f"{cache}/synthetic/volcanic-arc/TestData", f"{tmp_path}/runs/smoke/predictions/volcanic-arc-test"],
        [published_model, f"{cache}/synthetic/volcanic-arc/scenes", f"{tmp_path}/runs/smoke/predictions/volcanic-arc-scenes",
         "--probability"]]
    for command in commands:  # as printed, minus the interpreter and the script (run here, not in a subprocess)
        assert predict_job.main(shlex.split(command)[2:]) == 0
    assert (tmp_path / "runs/smoke/predictions/volcanic-arc-test/submission.zip").exists()
    assert (tmp_path / "runs/smoke/predictions/volcanic-arc-scenes/scene_0_prediction.tif").exists()
    assert predict_commands(result, space, data="s3://b/shards", cache=str(cache), root=ROOT)[0].split()[3] \
        == "<split"
