"""A new labelled region from a UTM scene and a landslide inventory in EPSG:4326: the masks equal
an independent rasterisation, no two splits touch, bad inventories are named, and the job
ingests the region into a bucket."""

import json
import re
from pathlib import Path

import numpy as np
import pytest
import rasterio
import shapely
from pyproj import Transformer
from rasterio.transform import from_origin

from swinls.bands import BANDS
from swinls.patches.geotiff import write_geotiff
from swinls.regions import SceneCutOptions, cut_region
from swinls.regions.inventory import InventoryError
from tests.jobs import run_in_process

UTM = "EPSG:32645"  # central Nepal
ORIGIN = (300_000.0, 3_100_000.0)
H, W, PATCH = 224, 256, 32
OPTIONS = SceneCutOptions(patch=PATCH, stride=PATCH, block=2, seed=1)
SCARS_UTM = [  # landslide polygons, drawn in the scene's CRS (metres)
    shapely.Polygon([(300_205, 3_099_795), (300_612, 3_099_740), (300_540, 3_099_402), (300_251, 3_099_455)]),
    shapely.Point(301_700, 3_098_900).buffer(180),
    shapely.box(302_000, 3_098_100, 302_390, 3_098_420),
]


def to_lonlat(geometry):
    to_wgs84 = Transformer.from_crs(UTM, "EPSG:4326", always_xy=True)
    return shapely.transform(shapely.segmentize(geometry, 5.0), lambda xy: np.column_stack(to_wgs84.transform(xy[:, 0], xy[:, 1])))


def write_inventory(path: Path, geometries, crs="EPSG:4326", driver="GeoJSON"):
    from pyogrio.raw import write  # no geopandas needed

    write(str(path), geometry=np.array([shapely.to_wkb(g) for g in geometries], dtype=object),
          field_data=[np.array([f"slide-{i}" for i in range(len(geometries))], dtype=object)], fields=["id"],
          geometry_type="Polygon" if all(g.geom_type == "Polygon" for g in geometries) else "Unknown",
          crs=crs, driver=driver)
    return path


@pytest.fixture(scope="module")
def event(tmp_path_factory):
    root = tmp_path_factory.mktemp("event")
    rng = np.random.default_rng(0)
    image = rng.normal(1000, 200, (H, W, len(BANDS))).astype(np.float32)
    image[:, -20:] = -9999  # a strip outside the swath: nodata
    (root / "scenes").mkdir()
    write_geotiff(root / "scenes" / "S2_20261014.tif", image, crs=UTM, transform=from_origin(*ORIGIN, 10, 10),
                  nodata=-9999, band_names=BANDS)
    inventory = write_inventory(root / "inventory.geojson", [to_lonlat(g) for g in SCARS_UTM])
    return root, inventory


def independent_mask() -> np.ndarray:
    """Pixel centres of the scene tested against the EPSG:4326 polygons, point by point."""
    rows, cols = np.mgrid[0:H, 0:W]
    x, y = ORIGIN[0] + (cols + 0.5) * 10, ORIGIN[1] - (rows + 0.5) * 10
    lon, lat = Transformer.from_crs(UTM, "EPSG:4326", always_xy=True).transform(x, y)
    inside = np.zeros((H, W), dtype=bool)
    for scar in SCARS_UTM:
        inside |= shapely.contains_xy(to_lonlat(scar), lon, lat)
    return inside


def read_patches(tree: Path):
    out = {}
    for split in ("TrainData", "ValidData", "TestData"):
        for path in sorted((tree / split / "mask").glob("*.tif")):
            row, col = map(int, re.search(r"_r(\d+)_c(\d+)", path.stem).groups())
            with rasterio.open(path) as src:
                out[(row, col)] = (split, src.read(1), src.transform)
    return out


def test_patch_masks_equal_an_independent_rasterisation_and_no_two_splits_touch(event, tmp_path):
    root, inventory = event
    report = cut_region(str(root / "scenes"), str(inventory), tmp_path / "tree", OPTIONS)
    patches = read_patches(tmp_path / "tree")
    assert set(report.windows) == {"train", "valid", "test"} and all(report.windows.values())
    assert sum(report.windows.values()) == len(patches) and report.dropped_at_split_borders > 0
    expected = independent_mask()
    disagree = total = 0
    for (row, col), (split, mask, transform) in patches.items():
        assert transform.c == ORIGIN[0] + col * 10 and transform.f == ORIGIN[1] - row * 10  # georeferenced
        want = expected[row:row + PATCH, col:col + PATCH].astype(np.uint8)
        nodata = np.zeros_like(want, dtype=bool)
        nodata[:, max(0, W - 20 - col):] = True
        assert (mask[nodata] == 255).all() and (mask[~nodata] != 255).all()
        disagree += int((mask[~nodata] != want[~nodata]).sum())
        total += int((~nodata).sum())
    positives = sum(int((m == 1).sum()) for _, m, _ in patches.values())
    assert positives > 500 and disagree <= 0.002 * total, (disagree, total)  # only where an edge grazes a centre
    # windows of different splits share no pixel and no border (corners included)
    corners = list(patches)
    for i, a in enumerate(corners):
        for b in corners[i + 1:]:
            if patches[a][0] != patches[b][0]:
                assert abs(a[0] - b[0]) > PATCH or abs(a[1] - b[1]) > PATCH, (a, b)


def test_the_ignore_layer_and_bad_inventories(event, tmp_path):
    root, inventory = event
    not_surveyed = write_inventory(tmp_path / "not-surveyed.geojson", [to_lonlat(shapely.box(300_000, 3_098_500, 301_000, 3_100_000))])
    cut_region(str(root / "scenes"), str(inventory), tmp_path / "tree", OPTIONS, ignore=str(not_surveyed))
    for (row, col), (_, mask, _) in read_patches(tmp_path / "tree").items():
        if row + PATCH <= 140 and col + PATCH <= 95:  # wholly inside the unsurveyed box (1 km × 1.5 km)
            assert (mask == 255).all()
    far = write_inventory(tmp_path / "far.geojson", [shapely.box(10, 10, 10.01, 10.01)])
    with pytest.raises(InventoryError, match=r"far\.geojson: overlaps none of the 1 scene"):
        cut_region(str(root / "scenes"), str(far), tmp_path / "t2", OPTIONS)
    no_crs = write_inventory(tmp_path / "no-crs.shp", [SCARS_UTM[2]], crs=None, driver="ESRI Shapefile")
    with pytest.raises(InventoryError, match=r"no-crs\.shp: has no CRS"):
        cut_region(str(root / "scenes"), str(no_crs), tmp_path / "t3", OPTIONS)
    bowtie = shapely.Polygon([(85.0, 28.0), (85.01, 28.01), (85.01, 28.0), (85.0, 28.01)])
    invalid = write_inventory(tmp_path / "invalid.geojson", [to_lonlat(SCARS_UTM[0]), bowtie])
    with pytest.raises(InventoryError, match=r"invalid\.geojson: feature slide-1 is not a valid polygon \(Self-intersection"):
        cut_region(str(root / "scenes"), str(invalid), tmp_path / "t4", OPTIONS)
    assert not (tmp_path / "t4").exists()  # nothing written before the inventory was checked


def test_the_job_ingests_the_event_as_a_region_in_a_bucket(event, bucket):
    root, inventory = event
    code, out, err = run_in_process("ingest", "--scenes", str(root / "scenes"), "--labels", str(inventory),
                                    "--region", "event-2026-10", "--patch-size", str(PATCH), "--stride", str(PATCH),
                                    "--block", "2", "--seed", "1", f"{bucket}/shards")
    assert code == 0, err
    assert re.search(r"event-2026-10: 1 scene\(s\) → \d+ train, \d+ valid, \d+ test patches", out)
    from swinls import storage

    manifest = json.loads(storage.read_bytes(f"{bucket}/shards/manifest.json"))
    counts = manifest["counts"]["regions"]["event-2026-10"]
    assert all(counts[split] for split in ("train", "valid", "test")), counts
    shards = manifest["regions"]["event-2026-10"]["shards"]
    assert all(s["labeled_rows"] == s["rows"] for s in shards)  # every split labelled, from the inventory
    # the nodata strip is ignored, not background: fewer labelled pixels than pixels
    assert sum(s["labeled_pixels"] for s in shards) < sum(s["rows"] for s in shards) * PATCH * PATCH
    code, _, err = run_in_process("ingest", "--scenes", str(root / "scenes"), f"{bucket}/shards")
    assert code == 2 and "--scenes takes DST only, with --labels INVENTORY and --region NAME" in err
