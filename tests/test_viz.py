"""Image grids: values map to the right grey levels, cells land where they should, bad input is refused."""

import numpy as np
import pytest
import torch

from pixelcnn import viz


def test_levels_map_to_the_full_grey_range():
    images = torch.tensor([0, 8, 16]).view(3, 1, 1, 1)
    rgb = viz.to_rgb_array(images, levels=17)
    assert rgb.shape == (3, 1, 1, 3) and rgb[:, 0, 0, 0].tolist() == [0, 128, 255]
    colour = torch.tensor([[[[1]], [[0]], [[1]]]])  # [1, 3, 1, 1]: magenta at 2 levels
    assert viz.to_rgb_array(colour, levels=2)[0, 0, 0].tolist() == [255, 0, 255]


@pytest.mark.parametrize(
    "images, message",
    [
        (torch.zeros(2, 1, 4, 4), "integer images"),
        (torch.zeros(2, 2, 4, 4, dtype=torch.long), "1 \\(grey\\) or 3 \\(RGB\\) channels"),
        (torch.full((2, 1, 4, 4), 2), "values in 0..1, got 2..2"),
        (torch.zeros(1, 4, 4, dtype=torch.long), "\\[N, C, H, W\\]"),
    ],
)
def test_bad_images_are_refused(images, message):
    with pytest.raises(ValueError, match=message):
        viz.image_grid(images, levels=2)


def test_image_grid_places_each_image_in_its_cell():
    images = torch.arange(5).view(5, 1, 1, 1).expand(5, 1, 2, 2) % 2  # 0, 1, 0, 1, 0
    grid = np.asarray(viz.image_grid(images, levels=2, columns=3, scale=2, padding=1))
    assert grid.shape == (2 * (4 + 1) + 1, 3 * (4 + 1) + 1, 3)
    cell = lambda row, col: grid[1 + row * 5 : 5 + row * 5, 1 + col * 5 : 5 + col * 5, 0]
    assert (cell(0, 1) == 255).all() and (cell(0, 2) == 0).all() and (cell(1, 0) == 255).all()
    assert (cell(1, 2) == viz.BACKGROUND[0]).all()  # the unused sixth cell
    assert (grid[0] == viz.BACKGROUND[0]).all()  # padding


def test_class_grid_has_one_row_per_class_in_order():
    labels = torch.tensor([2, 0, 2, 0, 2])
    images = (labels == 2).long().view(5, 1, 1, 1).expand(5, 1, 3, 3)  # class 2 white, class 0 black
    grid = np.asarray(viz.class_grid(images, labels, levels=2, padding=1))
    assert grid.shape[0] == 2 * (3 + 1) + 1
    right = grid[:, -(3 * 4) :, 0]  # the three image columns
    assert (right[1:4, 0:3] == 0).all() and (right[5:8, 0:3] == 255).all()  # class 0 first, then 2
    with pytest.raises(ValueError, match="one label per image"):
        viz.class_grid(images, labels[:3], levels=2)


def test_completion_grid_shows_original_masked_input_and_completions():
    originals = torch.ones(2, 1, 4, 4, dtype=torch.long)
    completions = torch.zeros(2, 3, 1, 4, 4, dtype=torch.long)
    grid = np.asarray(viz.completion_grid(originals, completions, known_rows=2, levels=2, padding=1))
    assert grid.shape == (2 * 5 + 1, 5 * 5 + 1, 3)
    original, shown = grid[1:5, 1:5], grid[1:5, 6:10]
    assert (original == 255).all()
    assert (shown[:2] == 255).all() and (shown[2:, :, 0] > shown[2:, :, 1]).all()  # hidden rows tinted red
    assert tuple(grid[1 + 2, 11]) == viz.BOUNDARY  # the line where rows end
    with pytest.raises(ValueError, match="known_rows must be an integer in 0..4"):
        viz.completion_grid(originals, completions, known_rows=5, levels=2)
    with pytest.raises(ValueError, match="matching originals"):
        viz.completion_grid(originals, completions[:1], known_rows=2, levels=2)


def test_save_writes_a_png(tmp_path):
    from PIL import Image

    path = viz.save(viz.image_grid(torch.zeros(4, 1, 8, 8, dtype=torch.long), levels=2), tmp_path / "a" / "g.png")
    assert Image.open(path).format == "PNG"
    assert viz.default_scale((1, 28, 28)) == 2 and viz.default_scale((1, 8, 8)) == 7
