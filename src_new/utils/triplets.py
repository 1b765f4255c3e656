"""Inpainting shown as it is judged: per sample, the given components, the completion (the
generated components in full colour, the kept ones faded) and the ground truth, side by side."""
from __future__ import annotations

import numpy as np

from .io import mirror_side, mirrored, overlay, to_numpy

FADE = 0.6          # kept components in the completion: blended this far toward white
PANELS = ("given", "completed", "truth")


def completion_tile(sample, kept, component_names, side):
    """Overlay of one completion (C, H, W) in [0, 1]: where a generated component (kept[c]
    False) is drawn it shows in full colour, the kept components elsewhere faded."""
    generated = sample * ~kept[:, None, None]
    strong = overlay(generated, component_names, side).astype(np.float32)
    full = overlay(sample, component_names, side).astype(np.float32)
    on_generated = mirrored(generated.max(0) > 0.5, side)[..., None]
    on_kept = mirrored(sample.max(0) > 0.5, side)[..., None] & ~on_generated
    return np.where(on_generated, strong, np.where(on_kept, full + FADE * (255 - full), full)).round().astype(np.uint8)


def make_triplet_grid(completed, truth, mask, component_names, mirror="auto", rows=16, pad=2, scale=2):
    """(N, C, H, W) completions, ground truths and masks (1 = kept) -> uint8 RGB image: one row
    per sample (at most ``rows``), three tiles each: given | completed | truth, and a caption
    naming the kept components and the colour code."""
    from PIL import Image, ImageDraw

    completed, truth, mask = to_numpy(completed)[:rows], to_numpy(truth)[:rows], to_numpy(mask)[:rows] > 0.5
    side = mirror_side(truth, mirror)
    kept = mask.reshape(*mask.shape[:2], -1).any(-1)                       # (N, C)
    rows_ = [[overlay(t * m, component_names, side), completion_tile(c, k, component_names, side),
              overlay(t, component_names, side)] for c, t, m, k in zip(completed, truth, mask, kept)]
    h, w = rows_[0][0].shape[:2]
    caption_h = 28
    grid = np.full((len(rows_) * (h + pad) + pad, 3 * (w + pad) + pad, 3), 255, np.uint8)
    for r, tiles in enumerate(rows_):
        for c, tile in enumerate(tiles):
            grid[pad + r * (h + pad):pad + r * (h + pad) + h, pad + c * (w + pad):pad + c * (w + pad) + w] = tile
    grid = grid.repeat(scale, 0).repeat(scale, 1)
    canvas = Image.new("RGB", (grid.shape[1], grid.shape[0] + caption_h * 2), "white")
    canvas.paste(Image.fromarray(grid), (0, caption_h))
    draw = ImageDraw.Draw(canvas)
    names = [n for n, k in zip(component_names, kept.any(0)) if k]
    for c, title in enumerate(PANELS):                                    # each column's title above it
        draw.text(((pad + c * (w + pad)) * scale + 4, 8), title, fill="black")
    bottom = grid.shape[0] + caption_h + 2
    draw.text((4, bottom), f"kept: {', '.join(names)}", fill="black")
    draw.text((4, bottom + 12), "completed: generated in full colour, kept faded", fill="black")
    return np.asarray(canvas)


def save_triplet_grid(completed, truth, mask, path, component_names, mirror="auto", rows=16):
    """Write ``make_triplet_grid``'s image to ``path`` (PNG) and return it."""
    from PIL import Image

    image = make_triplet_grid(completed, truth, mask, component_names, mirror, rows)
    Image.fromarray(image).save(path)
    return image
