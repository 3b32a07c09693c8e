"""Sample pictures: grid layout and scaling, PNG files, the kind-based choice."""

import numpy as np
import pytest
from PIL import Image

from tfgen.data import DataSpec
from tfgen.data.visualize import image_grid, save_image_grid, save_samples_figure, save_scatter

DIGITS = DataSpec((8, 8, 1), kind="image", levels=17)


def test_grid_tiles_and_scales_discrete_images():
    samples = np.stack([np.full((8, 8, 1), v, np.float32) for v in (0, 16, 8)])
    grid = image_grid(samples, DIGITS, num_columns=2, padding=1)
    assert grid.shape == (1 + 2 * 9, 1 + 2 * 9, 1) and grid.dtype == np.uint8
    assert grid[1, 1, 0] == 0 and grid[1, 10, 0] == 255 and grid[10, 1, 0] == 128
    assert grid[10, 10, 0] == 255  # the empty fourth cell is background


def test_grid_scales_continuous_images_by_low_high():
    spec = DataSpec((2, 2, 3), kind="image", low=-1.0, high=1.0)
    grid = image_grid(np.array([np.full((2, 2, 3), -1.0), np.full((2, 2, 3), 3.0)]), spec, padding=0)
    assert grid.shape == (2, 4, 3) and grid[0, 0, 0] == 0 and grid[0, 2, 0] == 255


def test_grid_rejects_wrong_shapes():
    with pytest.raises(ValueError, match=r"expected \[B, \*\(8, 8, 1\)\]"):
        image_grid(np.zeros((4, 8, 8, 3)), DIGITS)


def test_save_image_grid_writes_an_enlarged_png(tmp_path):
    path = save_image_grid(np.zeros((4, 8, 8, 1)), DIGITS, tmp_path / "out" / "grid.png")
    with Image.open(path) as image:
        assert image.format == "PNG" and image.mode == "L" and max(image.size) >= 256
    assert [p.name for p in path.parent.iterdir()] == ["grid.png"]  # no temporary left


def test_samples_figure_chooses_grid_or_scatter(tmp_path):
    save_samples_figure(np.zeros((4, 8, 8, 1)), DIGITS, tmp_path / "grid.png")
    spec = DataSpec((2,), low=-3.0, high=3.0)
    points = np.random.default_rng(0).normal(size=(100, 2))
    save_samples_figure(points, spec, tmp_path / "scatter.png", reference=points[:50])
    with Image.open(tmp_path / "scatter.png") as image:
        assert image.size == (500, 500)
    with pytest.raises(ValueError, match="no picture for kind 'vector' with event_shape \\(3,\\)"):
        save_samples_figure(np.zeros((4, 3)), DataSpec((3,)), tmp_path / "x.png")


def test_scatter_rejects_non_2d_points(tmp_path):
    with pytest.raises(ValueError, match=r"samples must be \[N, 2\]"):
        save_scatter(np.zeros((10, 3)), tmp_path / "s.png")
