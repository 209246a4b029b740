"""Pretrained weights by timm name (a populated hub cache), local file and s3:// URI (moto): the
same weights whichever way they come, recorded on the card; a missing or corrupt file is one
clear error before anything trains."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import timm
import torch

from swinls import storage
from swinls.config import from_dict
from swinls.models import build_model
from swinls.models.config import ModelConfig
from swinls.models.weights import WeightsError, resolve
from tests.jobs import run_in_process

ARCH = "resnet10t"  # the smallest timm ResNet with pretrained weights: a U-Net encoder in seconds
NAME = "resnet10t.c3_in1k"
CHANNELS = ("B4", "B3", "B2", "B8")


def weights_file(path: Path) -> Path:
    """Seeded 'ImageNet' weights for the architecture, as timm's hub repository holds them."""
    from safetensors.torch import save_file

    torch.manual_seed(7)
    state = timm.create_model(ARCH, pretrained=False).state_dict()
    path.parent.mkdir(parents=True, exist_ok=True)
    save_file({k: v.contiguous() for k, v in state.items()}, str(path))
    return path


@pytest.fixture
def hub_cache(tmp_path, monkeypatch) -> Path:
    """A Hugging Face hub cache holding timm's repository for NAME, laid out as the hub writes it."""
    cache = tmp_path / "hub"
    repo = cache / f"models--timm--{NAME}"
    commit = "0123456789abcdef0123456789abcdef01234567"
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text(commit)
    weights_file(repo / "snapshots" / commit / "model.safetensors")
    monkeypatch.setenv("HF_HUB_CACHE", str(cache))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("SWINLS_WEIGHTS_CACHE", str(tmp_path / "node-cache"))
    return cache


def first_conv(pretrained: str) -> torch.Tensor:
    config = ModelConfig(name="unet", encoder=ARCH, pretrained=pretrained, decoder_channels=(32, 16, 16, 8, 8))
    model = build_model(config, CHANNELS)
    return next(p for n, p in model.encoder.named_parameters() if n.endswith("conv1.0.weight")).detach().clone()


def test_timm_name_file_and_s3_give_the_same_first_layer(hub_cache, tmp_path, bucket):
    from_cache = first_conv(NAME)
    local = weights_file(tmp_path / "weights" / "resnet10t.safetensors")
    from_file = first_conv(str(local))
    # jobs/weights.py copies the cached weights into the bucket, with the sidecar nodes check
    code, out, err = run_in_process("weights", NAME, f"{bucket}/weights")
    assert code == 0, err
    uri = out.strip().split("model.pretrained: ")[1]
    assert uri == f"{bucket}/weights/{NAME}.safetensors"
    sidecar = json.loads(storage.read_bytes(uri + ".json"))
    from_s3 = first_conv(uri)
    assert torch.equal(from_cache, from_file) and torch.equal(from_cache, from_s3)
    # the red/green/blue filters are the pretrained ones, NIR starts from their mean (scaled)
    torch.manual_seed(7)
    rgb = timm.create_model(ARCH, pretrained=False).conv1[0].weight
    assert torch.equal(from_cache[:, 0], rgb[:, 0]) and torch.allclose(from_cache[:, 3], rgb.mean(1) * 3 / 4)
    # every way records the same file
    records = [resolve(v, ARCH).record() for v in (NAME, str(local), uri)]
    assert {r["sha256"] for r in records} == {sidecar["sha256"]}
    assert [r["source"] for r in records] == [f"timm:{NAME}", str(local), uri]
    # downloaded once per node: a second resolve reads the node's copy
    cached = resolve(uri, ARCH).path
    stamp = cached.stat().st_mtime_ns
    assert resolve(uri, ARCH).path == cached and cached.stat().st_mtime_ns == stamp


def test_the_node_cache_is_used_and_a_corrupt_copy_is_fetched_again(hub_cache, tmp_path, bucket):
    uri = f"{bucket}/w/resnet10t.safetensors"
    storage.put_file_atomic(weights_file(tmp_path / "w.safetensors"), uri)
    first = resolve(uri, ARCH)
    assert first.path.is_relative_to(tmp_path / "node-cache")
    first.path.write_bytes(first.path.read_bytes()[:-10] + b"0123456789")  # bit rot in the node's copy
    again = resolve(uri, ARCH)
    assert again.sha256 == first.sha256 and again.path.read_bytes() != b""


def test_a_missing_or_corrupt_weights_file_is_one_error_naming_it(hub_cache, tmp_path, bucket):
    with pytest.raises(WeightsError, match="nowhere.safetensors: no such weights file"):
        first_conv(str(tmp_path / "nowhere.safetensors"))
    truncated = weights_file(tmp_path / "cut.safetensors")
    truncated.write_bytes(truncated.read_bytes()[:1000])
    with pytest.raises(WeightsError, match="cut.safetensors: is not a readable weights file"):
        first_conv(str(truncated))
    # an upload whose bytes differ from what jobs/weights.py recorded
    code, out, _ = run_in_process("weights", NAME, f"{bucket}/weights")
    uri = out.strip().split("model.pretrained: ")[1]
    good = storage.read_bytes(uri)
    storage.write_bytes_atomic(uri, good[:-4] + b"\0\0\0\0")
    with pytest.raises(WeightsError, match="sha256 .* differs from .*: the file is corrupt or was replaced"):
        resolve(uri, ARCH)
    with pytest.raises(WeightsError, match="weights for resnet18, but the model's encoder is resnet10t"):
        resolve("resnet18.a1_in1k", ARCH)
    with pytest.raises(WeightsError, match=r"resnet18.a1_in1k are not in the hub cache .*`python jobs/weights.py resnet18.a1_in1k s3://BUCKET"):
        resolve("timm", "resnet18")  # offline, and nothing cached for it
    with pytest.raises(WeightsError, match="timm has no pretrained weights named resnet10t.bogus"):
        resolve("resnet10t.bogus", ARCH)


def test_a_job_stops_on_bad_weights_before_training(hub_cache, tmp_path, synthetic_shards):
    code, out, err = run_in_process("train", "--recipe", "laptop", "--data", synthetic_shards, "--local",
                                    "--storage", str(tmp_path / "runs"),
                                    "--set", f"model.pretrained={tmp_path / 'missing.safetensors'}")
    assert code == 2
    assert err.strip() == f"error: {tmp_path / 'missing.safetensors'}: no such weights file (model.pretrained takes " \
                          "a timm name, a local file on every node, or an s3:// URI)"
    assert not (tmp_path / "runs").exists()
