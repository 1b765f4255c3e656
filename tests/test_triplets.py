"""Inpainting triplet grids: given | completed | truth per sample, generated parts marked."""
import numpy as np
from PIL import Image

from src_new.utils.io import COMPONENT_COLORS, overlay
from src_new.utils.triplets import FADE, completion_tile, make_triplet_grid, save_triplet_grid

NAMES = ["group_nc", "fpu"]


def two_component_sample():
    x = np.zeros((2, 8, 4), np.float32)
    x[0, 2:4, 0:2] = 1          # group_nc (kept)
    x[1, 5:7, 1:3] = 1          # fpu (generated)
    return x


def test_completion_tile_shows_generated_parts_in_full_colour_and_kept_ones_faded():
    x = two_component_sample()
    tile = completion_tile(x, np.array([True, False]), NAMES, "none")
    assert tuple(tile[5, 1]) == COMPONENT_COLORS["fpu"]                       # generated: as drawn
    red = np.array(COMPONENT_COLORS["group_nc"], float)
    assert np.allclose(tile[2, 0], np.round(red + FADE * (255 - red)))        # kept: faded toward white
    assert tuple(tile[0, 3]) == (0, 0, 0)                                     # background untouched
    assert np.array_equal(completion_tile(x, np.array([False, False]), NAMES, "none"), overlay(x, NAMES, "none"))


def test_grid_has_three_panels_per_sample_and_names_the_kept_components(tmp_path):
    truth = np.stack([two_component_sample()] * 3)
    mask = np.zeros_like(truth)
    mask[:, 0] = 1
    completed = truth.copy()
    grid = make_triplet_grid(completed, truth, mask, NAMES, mirror="none", pad=2, scale=2)
    h, w = 8, 4
    assert grid.shape[1] == (3 * (w + 2) + 2) * 2                             # 3 panels per row
    assert grid.shape[0] == (3 * (h + 2) + 2) * 2 + 2 * 28                    # one row per sample + captions
    given = grid[28 + 4: 28 + 4 + 2 * h: 2, 4: 4 + 2 * w: 2]                 # first row, first panel
    assert np.array_equal(given, overlay(truth[0] * mask[0], NAMES, "none"))  # only the kept component
    path = tmp_path / "triplets.png"
    save_triplet_grid(completed, truth, mask, path, NAMES, mirror="none")
    assert Image.open(path).size == (grid.shape[1], grid.shape[0])
