"""Optional clean-up of generated masks (``sample.py --postprocess clean``).

Evaluation of a cleaned run reports the raw figures (``images_raw`` in samples.npz) beside
the cleaned ones, so the gain is visible and nothing is hidden.
"""
from __future__ import annotations

import numpy as np
import torch

from .metrics import as_tensor, label_components


def _sizes_per_pixel(labels):
    """Size of the piece each pixel belongs to (pixels with label 0 get the count of 0s)."""
    return torch.bincount(labels.flatten())[labels]


MIRROR_COLUMN = {"left": 0, "right": -1, "none": None}


def clean(images, min_size=4, max_hole=4, threshold=0.5, mirror="left"):
    """Threshold, drop specks, fill small holes; each component on its own.

    images: (N, C, H, W) in [0, 1] (numpy or torch). Steps: threshold at ``threshold``; drop
    every 4-connected piece smaller than ``min_size`` pixels; fill every hole of at most
    ``max_hole`` pixels, a hole being a 4-connected background piece that does not touch the
    image border. ``mirror``: the side of the image the section's mid-plane is on ("left",
    "right"; "none" for whole sections), whose edge column does not count as border (mirroring
    closes it): pass ``utils.io.mirror_side`` of the data, never assume a side.
    Returns float32 numpy (N, C, H, W) in {0, 1}."""
    for name, value in (("min_size", min_size), ("max_hole", max_hole)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 0:
            raise ValueError(f"clean: {name} must be an integer >= 0 (pixels), got {value!r}")
    if mirror not in MIRROR_COLUMN:
        raise ValueError(f"clean: mirror must be one of {list(MIRROR_COLUMN)} (the side of the mid-plane), got {mirror!r}")
    fg = as_tensor(images) > threshold
    fg &= _sizes_per_pixel(label_components(fg)) >= min_size
    bg = ~fg
    labels = label_components(bg)
    border = torch.zeros(fg.shape[-2:], dtype=torch.bool)
    border[0, :] = border[-1, :] = border[:, 0] = border[:, -1] = True
    if MIRROR_COLUMN[mirror] is not None:
        border[:, MIRROR_COLUMN[mirror]] = False
        border[0, :] = border[-1, :] = True
    touching = torch.zeros(int(labels.max()) + 1, dtype=torch.bool)
    touching[labels[bg & border]] = True                    # background pieces open to the outside
    hole = bg & ~touching[labels] & (_sizes_per_pixel(labels) <= max_hole)
    return (fg | hole).numpy().astype(np.float32)
