"""Real parts for the tests: a moto S3 server on 127.0.0.1 reached through s3fs, real files."""

from __future__ import annotations

import os
import uuid

import pytest

FAKE_KEY_ID = "AKIDTESTONLY0000"
FAKE_SECRET = "test-secret-that-must-never-be-written-anywhere"


@pytest.fixture(scope="session")
def s3_endpoint():
    """moto's server, the endpoint exported as AWS_ENDPOINT_URL like any real deployment would."""
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    saved = {k: os.environ.get(k) for k in ("AWS_ENDPOINT_URL", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_DEFAULT_REGION")}
    os.environ.update(AWS_ENDPOINT_URL=endpoint, AWS_ACCESS_KEY_ID=FAKE_KEY_ID,
                      AWS_SECRET_ACCESS_KEY=FAKE_SECRET, AWS_DEFAULT_REGION="us-east-1")
    yield endpoint
    server.stop()
    for key, value in saved.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value


@pytest.fixture
def bucket(s3_endpoint) -> str:
    """A fresh bucket; returns its s3:// URI."""
    from swinls import storage

    name = f"test-{uuid.uuid4().hex[:12]}"
    fs, _ = storage.filesystem(f"s3://{name}")
    fs.mkdir(name)
    return f"s3://{name}"


@pytest.fixture(scope="session")
def ray_local(s3_endpoint):
    """One real local Ray instance for the session, with more logical CPUs than training takes.

    Started after the S3 endpoint so its workers inherit AWS_ENDPOINT_URL like any process.
    """
    import ray

    from swinls.data.ray_data import init_local_ray

    init_local_ray(training_workers=2, num_cpus=4, log_to_driver=False)
    yield ray
    ray.shutdown()


@pytest.fixture(scope="session")
def synthetic_raw(tmp_path_factory):
    """A small built-in synthetic dataset: two training regions and a held-out one, 512² scenes."""
    from swinls.synthetic import SyntheticSpec, write_synthetic

    root = tmp_path_factory.mktemp("synthetic-medium") / "raw"
    write_synthetic(root, SyntheticSpec(seed=2, regions=("steep-forest", "terraced-farmland", "volcanic-arc"),
                                        scene_size=512, write_scenes=False))
    return root


@pytest.fixture(scope="session")
def synthetic_shards(synthetic_raw):
    from swinls.shards import ingest

    target = synthetic_raw.parent / "shards"
    ingest(str(synthetic_raw), str(target))
    return str(target)
