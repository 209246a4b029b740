"""Real parts for the tests: a moto S3 server on 127.0.0.1 reached through s3fs, real files."""

from __future__ import annotations

import os
import time
import uuid

import pytest

FAKE_KEY_ID = "AKIDTESTONLY0000"
FAKE_SECRET = "test-secret-that-must-never-be-written-anywhere"


def _atomic_conditional_writes() -> None:
    """S3 applies a conditional PUT or DELETE atomically; moto's threaded server checks the condition
    and then writes, so two requests at once can both pass. Serialise its writes, as S3 does,
    so that a race the platform handles correctly is never reported as a violation."""
    import threading

    from moto.s3.responses import S3Response

    if getattr(S3Response, "_swinls_atomic", False):
        return
    lock = threading.Lock()
    for name in ("put_object", "delete_object"):
        original = getattr(S3Response, name)

        def serialised(self, *args, _original=original, **kwargs):
            with lock:
                return _original(self, *args, **kwargs)

        setattr(S3Response, name, serialised)
    S3Response._swinls_atomic = True


# Modules of a minute or more (clusters, submitted jobs, whole searches), longest first: the two
# test processes take the next module as each finishes one (pytest-xdist, --dist loadfile), and a
# long module collected last would leave one process working alone at the end. Sort is stable:
# the other modules, and the tests within each, keep their order.
SLOW_MODULES_FIRST = ("test_multinode", "test_job_submit", "test_retrain", "test_ablation", "test_search",
                      "test_chaos_retrain", "test_training_ray", "test_data_ray", "test_event_story", "test_tracking")


def pytest_collection_modifyitems(items):
    rank = {name: i for i, name in enumerate(SLOW_MODULES_FIRST)}
    items.sort(key=lambda item: rank.get(item.path.stem, len(rank)))


@pytest.fixture(scope="session")
def s3_endpoint():
    """moto's server, the endpoint exported as AWS_ENDPOINT_URL like any real deployment would."""
    from moto.server import ThreadedMotoServer

    _atomic_conditional_writes()
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

    from swinls.ray_start import init_local_ray

    init_local_ray(training_workers=2, num_cpus=4, log_to_driver=False)
    _SESSION_RAY["gcs"] = ray.get_runtime_context().gcs_address
    yield ray
    ray.shutdown()


_SESSION_RAY: dict[str, str] = {}  # the GCS address of the session's Ray, once started
RELEASE_WAIT_S = 30  # Ray Train and Tune release a finished run's resources asynchronously


@pytest.fixture(scope="module", autouse=True)
def session_ray_released(request):
    """After each module that used the session's Ray: every CPU is free again. Something a module
    left holding CPUs (a trial's placement group, an actor) would starve every later module's
    Ray Data of CPUs and hang it; this fails the module that left it, naming what it left, and
    frees it so that the rest of the suite still tests what it says."""
    yield
    import ray

    if not _SESSION_RAY or not ray.is_initialized() or ray.get_runtime_context().gcs_address != _SESSION_RAY["gcs"]:
        return
    deadline = time.time() + RELEASE_WAIT_S
    while ray.available_resources().get("CPU", 0) < ray.cluster_resources().get("CPU", 0):
        if time.time() > deadline:
            pytest.fail(f"{request.module.__name__} left CPUs of the session's Ray held after {RELEASE_WAIT_S} s: "
                        f"{_release_leftovers(ray)}")
        time.sleep(0.5)


def _release_leftovers(ray) -> str:
    """Remove the placement groups still holding resources; say what held them."""
    from ray.util.placement_group import PlacementGroup, remove_placement_group
    from ray.util.state import list_actors

    free, total = ray.available_resources().get("CPU", 0), ray.cluster_resources().get("CPU", 0)
    groups = [(pg_id, pg) for pg_id, pg in ray.util.placement_group_table().items() if pg["state"] != "REMOVED"]
    alive = list_actors(address=_SESSION_RAY["gcs"], filters=[("state", "=", "ALIVE")], raise_on_missing_output=False)
    actors = [f"{a.class_name} ({a.actor_id[:8]})" for a in alive]
    for pg_id, _ in groups:
        remove_placement_group(PlacementGroup(ray.PlacementGroupID(bytes.fromhex(pg_id))))
    held = "; ".join(f"{pg['name'] or pg_id[:8]} {pg['state']} {pg['bundles']}" for pg_id, pg in groups) or "none"
    return (f"{total - free:g} of {total:g} CPUs; placement groups (now removed): {held}; "
            f"actors alive: {', '.join(actors) or 'none'}")


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


@pytest.fixture(scope="session")
def prediction_inputs(tmp_path_factory):
    """Inputs for prediction, from the synthetic generator: a labelled Landslide4Sense split whose
    image numbers are neither 1..n nor in listing order (3, 10, 25, 100, 7), and a folder of
    scenes with their labels: one 512² scene and a 300×417 crop of it, moved by its transform."""
    import shutil
    from types import SimpleNamespace

    import numpy as np
    import rasterio
    from rasterio.windows import Window

    from swinls.patches import read_h5_mask
    from swinls.patches.geotiff import write_geotiff
    from swinls.synthetic import SyntheticSpec, write_synthetic

    root = tmp_path_factory.mktemp("prediction")
    write_synthetic(root / "raw", SyntheticSpec(seed=5, regions=("steep-forest",), scene_size=512))
    region = root / "raw" / "steep-forest"
    split = root / "ValidData"
    (split / "img").mkdir(parents=True)
    (split / "mask").mkdir()
    train = region / "TrainData"
    by_positives = sorted(train.glob("mask/mask_*.h5"), key=lambda p: -int(read_h5_mask(p.read_bytes(), str(p)).sum()))
    chosen = by_positives[:3] + by_positives[-2:]  # some with landslides, some without
    for number, mask in zip((3, 10, 25, 100, 7), chosen):
        image = train / "img" / mask.name.replace("mask_", "image_")
        shutil.copy(image, split / "img" / f"image_{number}.h5")
        shutil.copy(mask, split / "mask" / f"mask_{number}.h5")
    scenes = root / "scenes"
    scenes.mkdir()
    for name in ("scene_0.tif", "scene_0_mask.tif"):
        shutil.copy(region / "scenes" / name, scenes / name)
    crop = Window(50, 100, 417, 300)
    for source, target in (("scene_0.tif", "crop.tif"), ("scene_0_mask.tif", "crop_mask.tif")):
        with rasterio.open(region / "scenes" / source) as dataset:
            data = np.moveaxis(dataset.read(window=crop), 0, -1)
            write_geotiff(scenes / target, data, crs=dataset.crs, transform=dataset.window_transform(crop),
                          band_names=dataset.descriptions)
    return SimpleNamespace(root=root, split=split, scenes=scenes, scene=scenes / "scene_0.tif", crop=scenes / "crop.tif")


@pytest.fixture(scope="session")
def published_model(prediction_inputs):
    """A nano SwinLS in the published-model format, calibrated to call about half the pixels landslide."""
    import numpy as np

    from swinls.patches import read_h5_image
    from tests.helpers import publish_model

    images = np.stack([read_h5_image(p.read_bytes(), str(p)) for p in sorted(prediction_inputs.split.glob("img/*.h5"))])
    history = [{"phase": "stage2", "phase_epoch": 1, "epoch": 1, "valid_f1": 0.5, "valid_best_threshold": 0.62}]
    return publish_model(str(prediction_inputs.root / "model"), calibrate_on=images, history=history)


@pytest.fixture(scope="session")
def mlflow_uri(tmp_path_factory):
    """A real MLflow tracking server on 127.0.0.1 (SQLite backend, artifacts in a temporary folder)."""
    pytest.importorskip("mlflow")
    from swinls.tracking.local_server import start_server, stop_server

    uri, process = start_server(tmp_path_factory.mktemp("mlflow"))
    yield uri
    stop_server(process)
