import hashlib
import json

import numpy as np
import pytest
import rasterio

from swinls.bands import BANDS, OFFICIAL_STATS
from swinls.patches import read_h5_image, read_h5_mask
from swinls.shards import Manifest, ingest
from swinls.synthetic import DEFAULT_HOLDOUT, DEFAULT_REGIONS, SPEC_FILE, SyntheticSpec, ensure_synthetic, write_synthetic
from swinls.synthetic.calibration import CALIBRATION_FILE, calibration_record, measure_raw_moments
from swinls.synthetic.rng import scene_rng
from swinls.synthetic.scene import generate_scene
from swinls.synthetic.spectra import COVER_CODES

SMALL = SyntheticSpec(seed=3, regions=("steep-forest", "terraced-farmland"), scene_size=384)


def tree_digest(root):
    digest = hashlib.sha256()
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        digest.update(path.relative_to(root).as_posix().encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()


@pytest.fixture(scope="module")
def small_dataset(tmp_path_factory):
    root = tmp_path_factory.mktemp("synthetic") / "data"
    summary = write_synthetic(root, SMALL)
    return root, summary


def test_same_seed_same_bytes_other_seed_other_bytes(small_dataset, tmp_path):
    root, _ = small_dataset
    write_synthetic(tmp_path / "again", SMALL)
    assert tree_digest(tmp_path / "again") == tree_digest(root)
    other = SyntheticSpec(seed=4, regions=("steep-forest",), scene_size=256, write_scenes=False)
    write_synthetic(tmp_path / "other", other)
    first = read_h5_image((root / "steep-forest/TrainData/img/image_1.h5").read_bytes(), "a")
    second = read_h5_image((tmp_path / "other/steep-forest/TrainData/img/image_1.h5").read_bytes(), "b")
    assert not np.array_equal(first, second)


def test_layout_is_landslide4sense_with_masks_only_for_labeled_splits(small_dataset):
    root, summary = small_dataset
    region = root / "steep-forest"
    counts = summary["regions"]["steep-forest"]["counts"]
    assert sum(counts.values()) == 9 and counts["train"] >= 5
    assert len(list((region / "TrainData/img").glob("image_*.h5"))) == counts["train"]
    assert len(list((region / "TrainData/mask").glob("mask_*.h5"))) == counts["train"]
    assert len(list((region / "ValidData/mask").glob("mask_*.h5"))) == counts["valid"]
    assert not (region / "TestData/mask").exists()
    image = read_h5_image((region / "TrainData/img/image_1.h5").read_bytes(), "x")
    assert image.shape == (128, 128, 14) and image.dtype == np.float32


def test_scenes_are_georeferenced_and_patches_are_their_tiles(small_dataset):
    root, summary = small_dataset
    with rasterio.open(root / "terraced-farmland/scenes/scene_0.tif") as scene:
        assert scene.crs.to_string() == DEFAULT_REGIONS["terraced-farmland"].crs
        assert scene.transform.a == 10.0 and scene.transform.e == -10.0 and scene.count == 14
        assert scene.descriptions == BANDS
        values = np.moveaxis(scene.read(), 0, -1)
    with rasterio.open(root / "terraced-farmland/scenes/scene_0_mask.tif") as mask_file:
        label = mask_file.read(1)
    entry = next(p for p in summary["regions"]["terraced-farmland"]["patches"] if p["split"] == "train")
    window = np.s_[entry["row"]:entry["row"] + 128, entry["col"]:entry["col"] + 128]
    split_dir = "TrainData"
    patch = read_h5_image((root / "terraced-farmland" / split_dir / "img" / f"{entry['id']}.h5").read_bytes(), "p")
    mask = read_h5_mask((root / "terraced-farmland" / split_dir / "mask" / f"{entry['id'].replace('image', 'mask')}.h5").read_bytes(), "m")
    np.testing.assert_array_equal(patch, values[window])
    np.testing.assert_array_equal(mask, label[window])


@pytest.fixture(scope="module")
def scenes():
    return {name: generate_scene(DEFAULT_REGIONS[name], scene_rng(11, name, 0), 512) for name in DEFAULT_REGIONS}


def test_landslides_are_a_few_percent_and_many_patches_have_none(scenes):
    labels = np.stack([s.label for s in scenes.values()])
    assert 0.005 < labels.mean() < 0.08
    tiles = labels.reshape(len(scenes), 4, 128, 4, 128).any(axis=(2, 4))
    assert 0.15 < tiles.mean() < 0.85


def test_scars_lie_on_steep_slopes_and_look_alikes_on_flat_ground(scenes):
    slope_of = {}
    for cover in ("scar", "gravel", "bare_field"):
        values = np.concatenate([s.raw[..., 12][s.cover == COVER_CODES[cover]] for s in scenes.values()])
        slope_of[cover] = np.median(values)
    assert slope_of["scar"] > 25
    assert slope_of["gravel"] < 12 and slope_of["bare_field"] < 10
    # every labeled pixel is a scar pixel and vice versa
    for scene in scenes.values():
        assert np.array_equal(scene.label == 1, scene.cover == COVER_CODES["scar"])


def clear_sky_spectrum(scene, cover):
    return scene.raw[..., :12][(scene.cover == COVER_CODES[cover]) & (scene.cloud < 0.01)].mean(axis=0)


def test_spectra_are_plausible_vegetation_red_edge_and_scar_look_alikes_in_rgb(scenes):
    rgb = [3, 2, 1]
    for name, scene in scenes.items():
        forest, scar, field = (clear_sky_spectrum(scene, c) for c in ("forest", "scar", "bare_field"))
        ndvi = lambda s: (s[7] - s[3]) / (s[7] + s[3])  # noqa: E731
        assert ndvi(forest) > 0.6 and ndvi(scar) < 0.35, name
        # in RGB a bare field is much closer to a scar than forest is: context, slope or SWIR must tell
        assert np.abs(field[rgb] - scar[rgb]).sum() < 0.5 * np.abs(forest[rgb] - scar[rgb]).sum(), name


def test_regions_differ_and_the_default_holdout_exists(scenes):
    assert DEFAULT_HOLDOUT in DEFAULT_REGIONS
    scar_red = {name: clear_sky_spectrum(s, "scar")[3] for name, s in scenes.items()}
    others = [v for name, v in scar_red.items() if name != DEFAULT_HOLDOUT]
    assert scar_red[DEFAULT_HOLDOUT] < 0.9 * np.mean(others)  # darker volcanic scars


def test_ingested_synthetic_training_set_is_described_by_the_official_statistics(tmp_path):
    write_synthetic(tmp_path / "raw", SyntheticSpec(seed=0, scene_size=512, write_scenes=False))
    ingest(str(tmp_path / "raw"), str(tmp_path / "shards"))
    stats = Manifest.load(str(tmp_path / "shards")).band_stats()
    for band in BANDS:
        assert abs(stats[band].mean - OFFICIAL_STATS[band].mean) < 0.5 * OFFICIAL_STATS[band].std, band
        assert 0.5 < stats[band].std / OFFICIAL_STATS[band].std < 1.6, band


def test_the_stored_calibration_is_what_the_generator_measures():
    stored = json.loads(CALIBRATION_FILE.read_text())
    assert calibration_record(measure_raw_moments()) == stored, (
        "the generator changed: run `python jobs/synth.py --recalibrate`")


def test_ensure_synthetic_reuses_a_matching_dataset_and_refuses_a_different_one(tmp_path):
    spec = SyntheticSpec(seed=1, regions=("glacial-valley",), scene_size=256, write_scenes=False)
    ensure_synthetic(tmp_path / "cache", spec)
    stamp = (tmp_path / "cache" / SPEC_FILE).stat().st_mtime_ns
    ensure_synthetic(tmp_path / "cache", spec)
    assert (tmp_path / "cache" / SPEC_FILE).stat().st_mtime_ns == stamp
    with pytest.raises(FileExistsError, match="different spec"):
        ensure_synthetic(tmp_path / "cache", SyntheticSpec(seed=2, regions=("glacial-valley",), scene_size=256))
    with pytest.raises(ValueError, match="unknown synthetic region"):
        SyntheticSpec(regions=("atlantis",))
