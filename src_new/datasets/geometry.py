"""Geometric measurements shared by the synthetic data, the dataset CSV and evaluation."""
from __future__ import annotations

import numpy as np
import torch


def _as_numpy(images):
    if isinstance(images, torch.Tensor):
        images = images.detach().float().cpu().numpy()
    return np.asarray(images, dtype=np.float32)


def measure_dimensions(images, threshold=0.5):
    """Bounding box of the union of all components, in pixels.

    images: (N, C, H, W) (or (C, H, W)) in [0, 1]. A pixel belongs to the tire when any
    component exceeds ``threshold``. Returns float32 (N, 2) = [width_px, height_px], where
    width_px = xmax - xmin + 1 over occupied columns and height_px = ymax - ymin + 1 over
    occupied rows; an empty image measures [0, 0].
    """
    arr = _as_numpy(images)
    squeeze = arr.ndim == 3
    if squeeze:
        arr = arr[None]
    if arr.ndim != 4:
        raise ValueError(f"measure_dimensions expects (N, C, H, W) images, got shape {arr.shape}")
    union = (arr > threshold).any(axis=1)                  # (N, H, W)
    out = np.zeros((len(arr), 2), dtype=np.float32)
    for axis, col in ((1, 0), (2, 1)):                     # columns -> width, rows -> height
        occupied = union.any(axis=axis)                    # (N, W) or (N, H)
        has = occupied.any(axis=1)
        first = occupied.argmax(axis=1)
        last = occupied.shape[1] - 1 - occupied[:, ::-1].argmax(axis=1)
        out[:, col] = np.where(has, last - first + 1, 0)
    return out[0] if squeeze else out
