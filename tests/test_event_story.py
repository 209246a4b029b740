"""The story the platform exists for, end to end on the moto S3 endpoint and the local Ray: an
event's scene and its landslide inventory (polygons in EPSG:4326) are ingested as a new region;
scheduled retraining judges a challenger trained on it with the champion's regions and promotes
it; the new champion predicts a later acquisition given as a Sentinel-2 STAC item, into Cloud-
Optimized GeoTIFFs and STAC that name the model and the acquisition."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest
import rasterio
import shapely
from pystac.validation import validate_dict
from rasterio.features import shapes
from rasterio.transform import from_origin
from rasterio.warp import transform_geom
from rio_cogeo.cogeo import cog_validate

from swinls import storage
from swinls.bands import BANDS
from swinls.patches.geotiff import write_geotiff
from swinls.retraining import ModelRegistry, Recipe, retrain
from swinls.shards import Manifest, ingest
from swinls.synthetic.calibration import to_landslide4sense
from swinls.synthetic.products import write_band_files, write_elevation, write_stac_item
from swinls.synthetic.rng import scene_rng
from swinls.synthetic.scene import generate_scene
from swinls.synthetic.spectra import DEFAULT_REGIONS
from tests.jobs import run_in_process
from tests.test_regions_from_scenes import write_inventory

TINY = ("model.size=nano", "model.decoder_channels=[32, 16, 16, 8, 8]", "model.drop_path=0.0", "data.batch_size=8",
        "stage1.epochs=2", "stage1.lr=0.002", "stage2.epochs=1", "stage2.lr=0.0001", "selftrain.rounds=0",
        "run.keep_checkpoints=1")
EVENT = "volcanic-arc"  # the profile the event's scenes are drawn from
REGION = "event-2026-11"
ITEM_ID = "S2A_54SVE_20261201_0_L2A"


def inventory_of(label: np.ndarray, transform, crs: str, path: Path) -> Path:
    """The scene's landslides as polygons in EPSG:4326, as a mapping team would deliver them."""
    polygons = [shapely.geometry.shape(transform_geom(crs, "EPSG:4326", geometry))
                for geometry, value in shapes(label.astype(np.uint8), mask=label == 1, transform=transform) if value == 1]
    return write_inventory(path, polygons)


@pytest.fixture(scope="module")
def story(ray_local, synthetic_raw, tmp_path_factory):
    root = tmp_path_factory.mktemp("story")
    storage.filesystem("s3://story")[0].mkdir("story")
    data, registry = "s3://story/shards", "s3://story/registry"
    shutil.copytree(synthetic_raw / "steep-forest", root / "before" / "steep-forest", copy_function=os.link)
    ingest(str(root / "before"), data)
    first = retrain(data, registry, Recipe(overrides=TINY), log=lambda line: None)
    assert first.decision == "promoted"

    profile = DEFAULT_REGIONS[EVENT]
    event = generate_scene(profile, scene_rng(11, EVENT, 0), 768)  # 6 × 6 windows in 9 blocks of 2 × 2
    transform = from_origin(*profile.origin, 10, 10)
    (root / "event").mkdir()
    write_geotiff(root / "event" / "S2A_20261118.tif", to_landslide4sense(event.raw), crs=profile.crs,
                  transform=transform, band_names=BANDS)
    inventory = inventory_of(event.label, transform, profile.crs, root / "inventory.geojson")

    later = generate_scene(profile, scene_rng(11, EVENT, 1), 360).raw
    product = root / "product"
    files = write_band_files(later, product, crs=profile.crs, origin=profile.origin, tile="T54SVE")
    elevation = write_elevation(later[..., BANDS.index("DEM")], product / "elevation.tif", crs=profile.crs,
                                origin=profile.origin)
    write_stac_item(files, elevation, product / "item.json", crs=profile.crs, item_id=ITEM_ID)
    for path in product.iterdir():
        storage.write_bytes_atomic(f"s3://story/items/{ITEM_ID}/{path.name}", path.read_bytes())
    return {"root": root, "data": data, "registry": registry, "inventory": inventory, "first": first,
            "item": f"s3://story/items/{ITEM_ID}/item.json"}


def test_an_event_becomes_a_region_a_judged_challenger_then_predictions_a_gis_opens(story, mlflow_uri, tmp_path):
    code, out, err = run_in_process("ingest", "--scenes", str(story["root"] / "event"), "--labels",
                                    str(story["inventory"]), "--region", REGION, "--block", "2", story["data"])
    assert code == 0, err
    counts = Manifest.load(story["data"]).counts()["regions"][REGION]
    assert all(counts[split] for split in ("train", "valid", "test")), counts

    champion = ModelRegistry(story["registry"]).champion()
    code, out, err = run_in_process("retrain", "--data", story["data"], "--registry", story["registry"],
                                    *[a for o in TINY for a in ("--set", o)], "--min-gain", "-1",
                                    "--max-region-drop", "1",  # the verdict's rules are test_retrain's: promote here
                                    "--mlflow", mlflow_uri)
    assert code == 0, err
    assert out.splitlines()[-1].startswith("decision: promoted")
    new = ModelRegistry(story["registry"]).champion()
    assert new.version != champion.version
    # both nights in MLflow's model registry (the first, run without --mlflow, brought in by the sync)
    assert champion_in_mlflow(mlflow_uri, 2) == new.version
    # and in the picture of the champion per region, night by night
    from swinls.retraining.records import DecisionLog
    from swinls.tracking.overviews import CHAMPION_NAME, champion_figure

    assert storage.read_bytes(f"{story['registry']}/{CHAMPION_NAME}").startswith(b"\x89PNG")
    records = DecisionLog(ModelRegistry(story["registry"])).finals()
    lines = {line.get_gid(): line for line in champion_figure(records).axes[0].lines}
    assert set(lines) == {"steep-forest", REGION}
    assert list(lines[REGION].get_xdata()) == [2]  # the region arrived on the second night
    assert lines[REGION].get_ydata()[0] == pytest.approx(records[-1]["scores"]["challenger"]["regions"][REGION]["f1"])
    assert set(new.card.trained_regions or Manifest.load(story["data"]).regions) == {"steep-forest", REGION}
    decisions = storage.list_files(f"{story['registry']}/decisions")
    record = json.loads(storage.read_bytes(f"{story['registry']}/decisions/{max(decisions)}"))
    assert REGION in record["scores"]["champion"]["regions"]  # the old champion judged on the new region too

    out_dir = tmp_path / "predictions"
    code, _, err = run_in_process("predict", story["registry"], story["item"], str(out_dir), "--probability")
    assert code == 0, err
    for name in (f"{ITEM_ID}_prediction.tif", f"{ITEM_ID}_probability.tif"):
        valid, errors, _ = cog_validate(str(out_dir / name), strict=True)
        assert valid, errors
    with rasterio.open(out_dir / f"{ITEM_ID}_prediction.tif") as mask:
        assert mask.crs.to_epsg() == int(DEFAULT_REGIONS[EVENT].crs.split(":")[1]) and mask.shape == (360, 360)
    item = json.loads((out_dir / f"{ITEM_ID}_item.json").read_text())
    validate_dict(item, extensions=[])
    assert item["properties"]["swinls:model_version"] == new.version
    assert item["properties"]["swinls:input"] == story["item"]
    assert item["properties"]["datetime"].startswith("2026-11-20")
    validate_dict(json.loads((out_dir / "collection.json").read_text()), extensions=[])
    assert (out_dir / f"{ITEM_ID}_quicklook.png").stat().st_size > 0

    # an operator rolls back: the registry first, MLflow's alias after it
    code, out, err = run_in_process("retrain", "--registry", story["registry"], "--rollback", champion.version,
                                    "--mlflow", mlflow_uri)
    assert code == 0, err
    assert ModelRegistry(story["registry"]).champion().version == champion.version
    assert champion_in_mlflow(mlflow_uri, 2) == champion.version


def champion_in_mlflow(uri: str, versions: int) -> str:
    """The platform version MLflow's alias `champion` is on, after checking the registered versions."""
    from mlflow import MlflowClient

    client = MlflowClient(uri)
    registered = client.search_model_versions("name='swinls-landslides'")
    assert len(registered) == versions
    assert all(v.tags["swinls.uri"].startswith("s3://story/registry/candidates/") for v in registered)
    assert all(v.tags["swinls.verdict"] == "promoted" and float(v.tags["swinls.f1"]) >= 0 for v in registered)
    for version in registered:  # each candidate's run: its config and every epoch it trained (2 + 1)
        run = client.get_run(version.run_id)
        assert run.data.params["model.size"] == "nano" and run.data.params["stage1.epochs"] == "2"
        assert sorted(m.step for m in client.get_metric_history(version.run_id, "valid_f1")) == [1, 2, 3]
        assert "challenger_f1" in run.data.metrics
    return client.get_model_version_by_alias("swinls-landslides", "champion").tags["swinls.version"]


def test_a_mirror_that_fails_is_a_warning_and_the_next_one_brings_everything(story, mlflow_uri):
    import warnings

    from mlflow import MlflowClient

    from swinls.tracking.registry_mirror import mirror
    from swinls.ports import free_port

    lines = []
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert mirror(story["registry"], f"http://127.0.0.1:{free_port()}", lines.append, name="swinls-retried") is False
    assert any("failed, the next run retries it" in str(w.message) for w in caught) and not lines
    champion = ModelRegistry(story["registry"]).champion()
    assert mirror(story["registry"], mlflow_uri, lines.append, name="swinls-retried")
    client = MlflowClient(mlflow_uri)
    assert len(client.search_model_versions("name='swinls-retried'")) == 2
    assert client.get_model_version_by_alias("swinls-retried", "champion").tags["swinls.version"] == champion.version
    assert lines[-1].startswith("mlflow: swinls-retried in line with the registry (2 new version(s); alias champion on")
