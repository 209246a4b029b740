"""A labelled region cut from a Sentinel-2 L1C product (per-band files, STAC item, elevation in
EPSG:4326) and an inventory: the same windows and masks as from the same values pre-stacked, the
bands read onto the 10 m grid in Landslide4Sense units; an L2A product (no B10) is one error."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import rasterio
import shapely
from rasterio.features import shapes
from rasterio.transform import from_origin
from rasterio.warp import transform_geom

from swinls.bands import BANDS
from swinls.patches.geotiff import write_geotiff
from swinls.regions import SceneCutOptions, cut_region
from swinls.regions.inventory import InventoryError
from swinls.synthetic.calibration import to_landslide4sense
from swinls.synthetic.products import write_band_files, write_elevation, write_stac_item
from swinls.synthetic.rng import scene_rng
from swinls.synthetic.scene import generate_scene
from swinls.synthetic.spectra import DEFAULT_REGIONS
from tests.test_regions_from_scenes import write_inventory

PROFILE = DEFAULT_REGIONS["glacial-valley"]
SIZE = 384
OPTIONS = SceneCutOptions(patch=64, stride=64, block=2, seed=3)


@pytest.fixture(scope="module")
def event(tmp_path_factory):
    root = tmp_path_factory.mktemp("product-event")
    scene = generate_scene(PROFILE, scene_rng(5, "glacial-valley", 0), SIZE)
    transform = from_origin(*PROFILE.origin, 10, 10)
    (root / "stacked").mkdir()
    write_geotiff(root / "stacked" / "scene.tif", to_landslide4sense(scene.raw), crs=PROFILE.crs, transform=transform,
                  band_names=BANDS)
    items = {}
    for level in ("L1C", "L2A"):
        folder = root / level
        files = write_band_files(scene.raw, folder, crs=PROFILE.crs, origin=PROFILE.origin, level=level)
        dem = write_elevation(scene.raw[..., BANDS.index("DEM")], folder / "elevation.tif", crs=PROFILE.crs,
                              origin=PROFILE.origin)
        items[level] = write_stac_item(files, dem, folder / "item.json", crs=PROFILE.crs, item_id=f"S2B_{level}")
    polygons = [shapely.geometry.shape(transform_geom(PROFILE.crs, "EPSG:4326", g))
                for g, v in shapes(scene.label.astype(np.uint8), mask=scene.label == 1, transform=transform) if v == 1]
    return root, items, write_inventory(root / "inventory.geojson", polygons)


def patches(tree: Path) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    out = {}
    for image in sorted(tree.glob("*/img/*.tif")):
        mask = image.parent.parent / "mask" / image.name.replace("image_", "mask_")
        with rasterio.open(image) as img, rasterio.open(mask) as lab:
            out[f"{image.parent.parent.name}/{image.stem.split('_', 1)[1].split('_', 1)[1]}"] = (img.read(), lab.read(1))
    return out


def test_a_product_gives_the_stacked_scenes_windows_and_masks(event, tmp_path):
    root, items, inventory = event
    from_stack = cut_region(str(root / "stacked"), str(inventory), tmp_path / "stacked", OPTIONS)
    from_product = cut_region(str(items["L1C"]), str(inventory), tmp_path / "product", OPTIONS)
    assert from_product.windows == from_stack.windows and sum(from_stack.windows.values()) > 10
    want, got = patches(tmp_path / "stacked"), patches(tmp_path / "product")
    assert set(got) == set(want)
    for key, (image, mask) in got.items():
        np.testing.assert_array_equal(mask, want[key][1])  # the same inventory on the same grid
        for band in ("B2", "B3", "B4", "B8"):  # 10 m bands: the DN's rounding alone
            k = BANDS.index(band)
            np.testing.assert_allclose(image[k], want[key][0][k], atol=2e-3)
        # 20/60 m bands resampled, slope via EPSG:4326: a band std is about 0.85; a wrong unit map is off by more
        assert np.abs(image - want[key][0]).mean() < 0.2


def test_an_l2a_product_cannot_make_a_landslide4sense_region(event, tmp_path):
    root, items, inventory = event
    with pytest.raises(InventoryError, match="B10.*L2A"):
        cut_region(str(items["L2A"]), str(inventory), tmp_path / "out", OPTIONS)
