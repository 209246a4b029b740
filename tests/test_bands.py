import json

import numpy as np
import pytest

from swinls.bands import (BANDS, NAMED_SETS, OFFICIAL_STATS, PCA_SET, BandError, PCAProjection, channel_stats,
                          project, resolve_band_set)
from swinls.moments import BandMoments

EXPECTED_INDICES = {
    "RGB": [3, 2, 1],
    "SWIR": [9, 10, 11],
    "NGB": [7, 2, 1],
    "RGB+NIR": [3, 2, 1, 7],
    "RGB+SWIR": [3, 2, 1, 9, 10, 11],
    "RGB+NIR+SWIR": [3, 2, 1, 7, 9, 10, 11],
    "ALL": list(range(14)),
}


def correlated_patch(seed=0, size=16):
    rng = np.random.default_rng(seed)
    latent = rng.normal(size=(size, size, 4))
    mixing = rng.normal(size=(4, 14))
    return (latent @ mixing + rng.normal(0, 0.1, (size, size, 14)) + np.arange(14)).astype(np.float32)


def test_catalogue_and_official_statistics_are_keyed_by_name():
    assert BANDS[:4] == ("B1", "B2", "B3", "B4") and BANDS[-2:] == ("slope", "DEM") and "B8A" not in BANDS
    assert len(BANDS) == 14
    assert OFFICIAL_STATS["B4"].mean == pytest.approx(-0.0625)
    assert OFFICIAL_STATS["DEM"].std == pytest.approx(1.2913)


@pytest.mark.parametrize("name", sorted(EXPECTED_INDICES))
def test_every_named_set_projects_to_the_bands_it_names(name):
    patch = correlated_patch()
    band_set = resolve_band_set(name)
    out = project(patch, band_set)
    assert out.shape == (16, 16, len(EXPECTED_INDICES[name]))
    np.testing.assert_array_equal(out, patch[..., EXPECTED_INDICES[name]])
    assert band_set.channels == tuple(BANDS[i] for i in EXPECTED_INDICES[name])


def test_band_lists_and_strings_resolve_and_named_lists_keep_their_name():
    assert resolve_band_set(["B4", "B3", "B2"]).name == "RGB"
    custom = resolve_band_set("B8, B4, slope")
    assert custom.channels == ("B8", "B4", "slope") and custom.input_indices == (7, 3, 12)
    np.testing.assert_array_equal(project(correlated_patch(), custom), correlated_patch()[..., [7, 3, 12]])


@pytest.mark.parametrize("spec, fragment", [
    ("RBG", "valid sets: RGB, SWIR, NGB"),
    (["B4", "B8A"], "unknown band 'B8A'; valid bands: B1, B2"),
    ("B4,B4", "more than once"),
    ([], "at least one band"),
])
def test_unknown_or_malformed_band_sets_are_errors_that_list_the_valid_names(spec, fragment):
    with pytest.raises(BandError, match=fragment):
        resolve_band_set(spec)


def test_moments_merge_exactly_like_a_single_pass():
    data = correlated_patch(1, 32).reshape(-1, 14).astype(np.float64) * 50 + 1000
    whole = BandMoments(BANDS)
    whole.update(data)
    parts = [BandMoments(BANDS) for _ in range(3)]
    for part, chunk in zip(parts, np.array_split(data, [100, 700])):
        part.update(chunk)
    merged = BandMoments.merged(BANDS, parts)
    np.testing.assert_allclose(merged.mean, data.mean(axis=0), rtol=1e-12)
    np.testing.assert_allclose(merged.covariance, np.cov(data, rowvar=False, bias=True), rtol=1e-9)
    np.testing.assert_allclose(whole.scatter, merged.scatter, rtol=1e-9)


def fitted_pca(seed=0):
    moments = BandMoments(BANDS)
    moments.update(correlated_patch(seed, 64))
    return moments, PCAProjection.fit(moments)


def test_pca3_projects_standardised_bands_on_the_leading_components():
    moments, pca = fitted_pca()
    patch = correlated_patch(5)
    out = project(patch, resolve_band_set(PCA_SET), pca)
    assert out.shape == (16, 16, 3)
    standardised = (patch.astype(np.float64) - moments.mean) / moments.std
    correlation = moments.covariance / np.outer(moments.std, moments.std)
    values, vectors = np.linalg.eigh(correlation)
    top = vectors[:, np.argsort(values)[::-1][:3]]
    expected = standardised @ top
    # eigenvectors are defined up to sign; the projection pins it
    signs = np.sign((expected * out).sum(axis=(0, 1)))
    np.testing.assert_allclose(out, expected * signs, atol=1e-4)
    np.testing.assert_allclose(pca.components @ pca.components.T, np.eye(3), atol=1e-10)


def test_pca3_stored_and_reloaded_projects_identically():
    _, pca = fitted_pca()
    reloaded = PCAProjection.from_dict(json.loads(json.dumps(pca.to_dict())))
    patch = correlated_patch(9)
    band_set = resolve_band_set(PCA_SET)
    assert project(patch, band_set, pca).tobytes() == project(patch, band_set, reloaded).tobytes()
    _, refit = fitted_pca()
    assert project(patch, band_set, refit).tobytes() == project(patch, band_set, pca).tobytes()


def test_pca3_without_a_fitted_projection_is_an_error():
    with pytest.raises(BandError, match="fitted projection"):
        project(correlated_patch(), resolve_band_set(PCA_SET))


def test_channel_statistics_come_from_the_given_table_and_a_missing_one_is_an_error():
    mean, std = channel_stats(resolve_band_set("RGB"), OFFICIAL_STATS)
    np.testing.assert_allclose(mean, [-0.0625, -0.1277, -0.3074], rtol=1e-6)
    partial = {k: v for k, v in OFFICIAL_STATS.items() if k != "B3"}
    with pytest.raises(BandError, match="no normalisation statistics for B3"):
        channel_stats(resolve_band_set("RGB"), partial)
    _, pca = fitted_pca()
    pc_mean, pc_std = channel_stats(resolve_band_set(PCA_SET), {}, pca)
    np.testing.assert_allclose(pc_std**2, pca.variances, rtol=1e-6)
    assert set(NAMED_SETS) <= {"RGB", "SWIR", "NGB", "RGB+NIR", "RGB+SWIR", "RGB+NIR+SWIR", "ALL"}
