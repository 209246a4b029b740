"""What a multi-node cluster refuses (a path other nodes cannot read) and where it puts the data
it makes itself (the run's storage). The refusal on a real cluster: tests/test_multinode.py."""

import pytest

from swinls.defaults import default_dataset
from swinls.reachable import Cluster, UnreachablePath, check_reachable, pretrained_path
from swinls.shards import Manifest
from swinls.synthetic import SyntheticSpec

ONE_NODE, THREE_NODES, AUTOSCALING = Cluster(1, False), Cluster(3, False), Cluster(1, True)


def test_one_node_takes_any_path():
    check_reachable({"--data": "/home/me/shards", "--storage": "runs"}, ONE_NODE)


@pytest.mark.parametrize("cluster", [THREE_NODES, AUTOSCALING])
def test_a_local_path_is_refused_naming_the_flag_and_the_fix(cluster):
    with pytest.raises(UnreachablePath) as caught:
        check_reachable({"--data": "s3://b/shards", "--storage": "/home/me/runs"}, cluster)
    message = str(caught.value)
    assert message.startswith("--storage /home/me/runs is a local path")
    assert cluster.describe() in message and "s3://" in message and "--shared-fs PATH" in message


def test_a_declared_shared_filesystem_is_allowed_and_only_it(tmp_path):
    shared = tmp_path / "efs"
    check_reachable({"--storage": str(shared / "runs"), "--data": "s3://b/shards"}, THREE_NODES, str(shared))
    with pytest.raises(UnreachablePath, match=r"^model\.pretrained /opt/swin\.pth is a local path.*a path under it"):
        check_reachable({"--storage": str(shared / "runs"), "model.pretrained": "/opt/swin.pth"}, THREE_NODES, str(shared))


def test_only_a_weights_file_is_a_path_a_timm_name_is_fetched_per_node():
    assert pretrained_path("swin_base_patch4_window7_224.ms_in22k_ft_in1k") is None
    assert pretrained_path("/weights/swin_b.safetensors") == "/weights/swin_b.safetensors"
    assert pretrained_path("s3://b/w.safetensors") is None  # a URI: fine anywhere, and not a local path


def test_the_built_in_data_is_published_to_storage_every_node_reads(tmp_path):
    spec = SyntheticSpec(seed=4, regions=("steep-forest",), scene_size=256, write_scenes=False)
    uri = default_dataset(tmp_path / "cache", spec, publish_to=str(tmp_path / "shared-storage"))
    assert uri == str(tmp_path / "shared-storage" / "datasets" / "builtin")
    assert Manifest.load(uri).regions and not (tmp_path / "cache" / "shards").exists()
    assert default_dataset(tmp_path / "cache", spec, publish_to=str(tmp_path / "shared-storage")) == uri  # kept
