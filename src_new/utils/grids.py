"""Pictures of sample sets side by side: real beside generated, each a grid of ``io.make_grid``
(pictures as pictures, masks as colour overlays), under a one-line caption."""
from __future__ import annotations

import numpy as np

from .io import make_grid

CAPTION_PX = 14     # height of the caption strip (PIL's built-in font is 11 px high)


def beside(panels, component_names, ncol=4, gap=12, scale=2):
    """[(caption, images (N, C, H, W) in [0, 1]), ...] -> uint8 RGB (H, W, 3): one grid per
    panel (``ncol`` columns, upscaled by ``scale``) left to right, ``gap`` white pixels
    apart, each under its caption."""
    from PIL import Image, ImageDraw

    grids = [make_grid(images, component_names, ncol=ncol, mirror="auto", scale=scale) for _, images in panels]
    height = max(g.shape[0] for g in grids)
    width = sum(g.shape[1] for g in grids) + gap * (len(grids) - 1)
    out = np.full((height + CAPTION_PX, width, 3), 255, np.uint8)
    x = 0
    for grid in grids:
        out[CAPTION_PX:CAPTION_PX + grid.shape[0], x:x + grid.shape[1]] = grid
        x += grid.shape[1] + gap
    picture = Image.fromarray(out)
    draw, x = ImageDraw.Draw(picture), 0
    for (caption, _), grid in zip(panels, grids):
        draw.text((x + 4, 1), caption, fill=(0, 0, 0))
        x += grid.shape[1] + gap
    return np.asarray(picture)


def save_beside(panels, path, component_names, ncol=4, gap=12, scale=2):
    """Write ``beside``'s picture to ``path`` (PNG) and return it."""
    from PIL import Image

    picture = beside(panels, component_names, ncol, gap, scale)
    Image.fromarray(picture).save(path)
    return picture
