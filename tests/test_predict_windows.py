"""Sliding windows and their blending, without a model: numpy in, numpy out."""

import numpy as np
import pytest

from swinls.prediction.windows import StripBlender, WindowGrid, ramp, reflect


@pytest.mark.parametrize("length", [1, 2, 7, 130])
def test_reflection_is_numpys_reflect_padding_however_far_out(length):
    values = np.arange(length)
    pad = 3 * length + 5
    padded = np.pad(values, pad, mode="reflect") if length > 1 else np.zeros(length + 2 * pad, int)
    assert (values[reflect(np.arange(-pad, length + pad), length)] == padded).all()


@pytest.mark.parametrize("height,width", [(128, 128), (300, 417), (50, 70), (1000, 97)])
def test_windows_cover_every_pixel_and_overlapping_weights_sum_to_one_away_from_the_corners(height, width):
    grid = WindowGrid(height, width, 128, 32)
    coverage = grid.coverage()
    assert coverage.min() >= 1
    y0, x0 = grid.origin(grid.rows - 1, grid.cols - 1)
    assert y0 + grid.size >= height + grid.margin and x0 + grid.size >= width + grid.margin  # the last ones reach past
    w = ramp(128, 32)
    assert w.min() > 0 and w.max() == 1.0
    np.testing.assert_allclose(w[96:] + w[:32], 1.0, atol=1e-6)  # a neighbour's rise meets this one's fall


def test_a_blended_constant_stays_constant_and_rows_come_out_once_in_order():
    grid = WindowGrid(300, 417, 128, 32)
    rows = []
    blender = StripBlender(grid, lambda first, margin, nodata: rows.append((first, margin, nodata)))
    for r in range(grid.rows):
        for c in range(grid.cols):
            blender.add(r, c, np.full((128, 128), 2.5, np.float32), np.zeros((128, 128), bool))
    blender.close()
    assert [first for first, _, _ in rows] == list(np.cumsum([0] + [len(m) for _, m, _ in rows[:-1]]))
    scene = np.concatenate([m for _, m, _ in rows])
    assert scene.shape == (300, 417)
    np.testing.assert_allclose(scene, 2.5, rtol=1e-6)


def test_each_scene_pixel_gets_the_weighted_mean_of_the_windows_over_it():
    grid = WindowGrid(200, 230, 64, 16)
    rng = np.random.default_rng(1)
    margins = {(r, c): rng.normal(size=(64, 64)).astype(np.float32) for r in range(grid.rows) for c in range(grid.cols)}
    nodata_at = (150, 17)
    total, weight = np.zeros((200, 230)), np.zeros((200, 230))
    w = np.outer(ramp(64, 16), ramp(64, 16))
    for (r, c), m in margins.items():  # the same sum, pixel by pixel, in scene coordinates
        y0, x0 = grid.origin(r, c)
        for i in range(64):
            for j in range(64):
                y, x = y0 + i, x0 + j
                if 0 <= y < 200 and 0 <= x < 230:
                    total[y, x] += w[i, j] * m[i, j]
                    weight[y, x] += w[i, j]
    out = np.full((200, 230), np.nan)
    flagged = np.zeros((200, 230), bool)

    def emit(first, margin, nodata):
        out[first:first + len(margin)] = margin
        flagged[first:first + len(margin)] = nodata

    blender = StripBlender(grid, emit)
    for (r, c), m in margins.items():
        nodata = np.zeros((64, 64), bool)
        y0, x0 = grid.origin(r, c)
        if 0 <= nodata_at[0] - y0 < 64 and 0 <= nodata_at[1] - x0 < 64:
            nodata[nodata_at[0] - y0, nodata_at[1] - x0] = True
        blender.add(r, c, m, nodata)
    blender.close()
    np.testing.assert_allclose(out, total / weight, rtol=1e-5, atol=1e-6)
    assert flagged.sum() == 1 and flagged[nodata_at]


def test_windows_out_of_strip_order_and_missing_windows_are_errors():
    grid = WindowGrid(300, 300, 128, 32)
    blender = StripBlender(grid, lambda *a: None)
    blender.add(1, 0, np.zeros((128, 128), np.float32))
    with pytest.raises(ValueError, match="after strip 1"):
        blender.add(0, 0, np.zeros((128, 128), np.float32))
    with pytest.raises(ValueError, match="windows arrived"):
        blender.close()
    with pytest.raises(ValueError, match="overlap"):
        WindowGrid(100, 100, 128, 128)
