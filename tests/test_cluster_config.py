"""cluster.yaml against Ray's own launcher schema, offline (no AWS call)."""

import copy
import re
from pathlib import Path

import jsonschema
import pytest
import yaml
from ray.autoscaler._private.util import prepare_config, validate_config

CLUSTER = Path(__file__).resolve().parents[1] / "cluster.yaml"


@pytest.fixture()
def cluster() -> dict:
    return yaml.safe_load(CLUSTER.read_text())


def test_cluster_yaml_passes_rays_launcher_validation(cluster):
    validate_config(prepare_config(cluster))


def test_a_misspelled_key_is_refused_by_the_same_validation(cluster):
    bad = copy.deepcopy(cluster)
    bad["max_worker"] = bad.pop("max_workers")
    with pytest.raises(jsonschema.ValidationError, match="max_worker"):
        validate_config(prepare_config(bad))


def test_head_runs_the_drivers_and_workers_are_gpu_spot(cluster):
    head = cluster["available_node_types"][cluster["head_node_type"]]
    assert head["resources"].get("swinls_driver") and not head["resources"].get("GPU")
    assert head["max_workers"] == 0
    workers = [t for name, t in cluster["available_node_types"].items() if name != cluster["head_node_type"]]
    assert workers and all(t["resources"].get("GPU", 0) >= 1 for t in workers)
    assert all(t["node_config"]["InstanceMarketOptions"]["MarketType"] == "spot" for t in workers)
    assert all(t["min_workers"] < t["max_workers"] for t in workers)  # autoscaling


def test_no_keys_in_the_file_and_s3_through_an_instance_profile(cluster):
    text = CLUSTER.read_text()
    assert not re.search(r"AKIA[0-9A-Z]{12,}|aws_secret_access_key|AWS_SECRET|aws_access_key_id", text, re.I)
    for node_type in cluster["available_node_types"].values():
        assert node_type["node_config"]["IamInstanceProfile"]["Name"]


def test_dashboard_and_job_api_stay_off_the_internet(cluster):
    ingress = cluster["provider"]["security_group"]["IpPermissions"]
    assert [(rule["FromPort"], rule["ToPort"]) for rule in ingress] == [(22, 22)]  # only SSH
    head_start = " ".join(cluster["head_start_ray_commands"])
    assert "--dashboard-host=127.0.0.1" in head_start


def test_setup_installs_this_project(cluster):
    assert cluster["file_mounts"]["~/swinls"] == "."
    assert any("pip install" in c and "~/swinls" in c for c in cluster["setup_commands"])


def test_every_node_starts_with_token_authentication(cluster):
    assert cluster["file_mounts"]["~/.ray/auth_token"] == "~/.ray/auth_token"
    for command in cluster["head_start_ray_commands"] + cluster["worker_start_ray_commands"]:
        if "ray start" in command:
            assert "RAY_AUTH_MODE=token ray start" in command
