"""Geometric measurements shared by the synthetic data, the dataset CSV and evaluation."""
from __future__ import annotations

import numpy as np
import torch


def _as_numpy(images):
    if isinstance(images, torch.Tensor):
        images = images.detach().float().cpu().numpy()
    return np.asarray(images, dtype=np.float32)


def union_measurements(images, threshold=0.5):
    """Measurements of each sample's union mask (any component above ``threshold``), in pixels.

    images: (N, C, H, W) in [0, 1]. Returns {name: (N,) float64}: width / height = bounding-box
    extent (last - first occupied column / row + 1); x_end = last occupied column + 1 (the
    extent from column 0, e.g. a half-section whose mid-plane is column 0); x_from_right =
    W - first occupied column; y_end = last occupied row + 1; y_from_bottom = H - first
    occupied row. An empty image measures 0 everywhere."""
    arr = _as_numpy(images)
    if arr.ndim != 4:
        raise ValueError(f"union_measurements expects (N, C, H, W) images, got shape {arr.shape}")
    union = (arr > threshold).any(axis=1)                  # (N, H, W)
    out = {}
    for axis, (ext, end, from_far) in ((1, ("width", "x_end", "x_from_right")),
                                       (2, ("height", "y_end", "y_from_bottom"))):
        occupied = union.any(axis=axis)                    # (N, W) or (N, H)
        size = occupied.shape[1]
        has = occupied.any(axis=1)
        first = occupied.argmax(axis=1)
        last = size - 1 - occupied[:, ::-1].argmax(axis=1)
        out[ext] = np.where(has, last - first + 1, 0).astype(np.float64)
        out[end] = np.where(has, last + 1, 0).astype(np.float64)
        out[from_far] = np.where(has, size - first, 0).astype(np.float64)
    return out


def expected_measurements(log_empty_rows, log_empty_cols):
    """``union_measurements`` in expectation, differentiably, from each line's log-probability of
    holding no component: log_empty_rows (N, H), log_empty_cols (N, W), lines independent; 0 =
    surely empty. -> {name: (N,) float32 px}, the same names; on certain lines (0 / -inf) the
    exact measurements. E[first occupied line] = sum_i P(lines 0..i all empty), likewise from
    the far end; the far edges are affine in them (an empty image has first = size and last =
    -1, so they measure 0) and the extent last - first + 1 gets size * P(all empty) back (an
    empty image's extent is 0, not -size)."""
    out = {}
    for empty, (ext, end, from_far) in ((log_empty_cols, ("width", "x_end", "x_from_right")),
                                        (log_empty_rows, ("height", "y_end", "y_from_bottom"))):
        empty, size = empty.float(), empty.shape[1]
        all_empty = empty.cumsum(1).exp()                     # P(lines 0..i all empty)
        first = all_empty.sum(1)
        last = size - 1 - empty.flip(1).cumsum(1).exp().sum(1)
        out[ext] = last - first + 1 + size * all_empty[:, -1]
        out[end], out[from_far] = last + 1, size - first
    return out

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
    m = union_measurements(arr, threshold)
    out = np.stack([m["width"], m["height"]], axis=1).astype(np.float32)
    return out[0] if squeeze else out
