"""Optional clean-up of generated masks (``sample.py --postprocess clean``)."""
from __future__ import annotations

import numpy as np
import torch

from .metrics import as_tensor, label_components


def _piece_sizes(labels, fg):
    """Size of the piece each pixel belongs to (0 for background)."""
    flat = labels.flatten()
    sizes = torch.bincount(flat, minlength=int(flat.max()) + 1)
    return torch.where(fg, sizes[labels], torch.zeros_like(labels))


def clean(images, min_size=4, max_hole=4, threshold=0.5):
    """Threshold at ``threshold``, drop each component's 4-connected pieces smaller than
    ``min_size`` pixels, fill holes (background pieces not touching the border) of at most
    ``max_hole`` pixels. (N, C, H, W) -> float32 numpy in {0, 1}."""
    fg = as_tensor(images) > threshold
    labels, _ = label_components(fg)
    fg &= _piece_sizes(labels, fg) >= min_size
    bg = ~fg
    labels, _ = label_components(bg)
    border = torch.zeros_like(bg)
    border[..., 0, :] = border[..., -1, :] = border[..., :, 0] = border[..., :, -1] = True
    touching = torch.zeros(int(labels.max()) + 1, dtype=torch.bool)
    touching[labels[border & bg]] = True
    hole = bg & ~touching[labels] & (_piece_sizes(labels, bg) <= max_hole)
    return (fg | hole).float().numpy().astype(np.float32)
