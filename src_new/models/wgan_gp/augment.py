"""Differentiable augmentation of the critic's inputs (DiffAugment, Zhao et al. 2020).

The critic sees real and generated images through the same random transformations, so it
cannot memorise a small training set pixel by pixel, while the generator, whose samples are
transformed only on their way into the critic, is not taught to draw transformed images.
Every operation is an index or a product: gradients reach the generator.

translation  a shift by whole pixels, up to 1/8 of each side, never beyond the empty rows and
             columns of the reference image (read from the data: a design touching an edge,
             such as a mirrored half at its symmetry plane, is never cut: its extent is
             kept; a size measured from an image edge moves with it, for real and fake alike)
cutout       a zeroed rectangle of half each side (hides parts: the measured size can change)

``draw`` picks the parameters (per sample, each sample augmented with probability ``p``) and
``apply`` applies them, so one draw can transform a real batch and a fake batch alike.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F


def empty_margins(reference):
    """(B, 4) whole empty rows above / below and columns left / right of each image's content
    (any channel > 0.5) in ``reference`` (B, C, H, W); an empty image has H rows / W columns."""
    filled = (reference.detach() > 0.5).any(1)                        # (B, H, W)
    rows, cols = filled.any(2), filled.any(1)                          # (B, H), (B, W)

    def lead(x):   # empty entries before the first filled one (all of them when none is)
        return torch.where(x.any(1), x.float().argmax(1), torch.full_like(x[:, 0], x.shape[1], dtype=torch.long))
    return torch.stack([lead(rows), lead(rows.flip(1)), lead(cols), lead(cols.flip(1))], 1)


def draw(reference, policy, p, generator=None):
    """Random parameters for a batch like ``reference`` (B, C, H, W) in [0, 1] -> dict of
    per-sample tensors: ``shift`` (B, 2) rows / columns (positive = down / right) and ``cutout``
    (B, 4) top, left, height, width (height 0 = none). Samples not drawn (probability 1 - p)
    are left as they are."""
    b, _, h, w = reference.shape
    dev = reference.device
    rand = lambda *shape: torch.rand(*shape, generator=generator, device=dev)
    on = rand(b) < p
    params = {"shift": torch.zeros(b, 2, dtype=torch.long, device=dev),
              "cutout": torch.zeros(b, 4, dtype=torch.long, device=dev)}
    if "translation" in policy:
        margin = empty_margins(reference)
        for axis, size in ((0, h), (1, w)):
            reach = size // 8
            low = -margin[:, 2 * axis].clamp(max=reach)           # up / left: at most the empty lead
            high = margin[:, 2 * axis + 1].clamp(max=reach)       # down / right
            shift = low + (rand(b) * (high - low + 1)).long().clamp(max=high - low)
            params["shift"][:, axis] = torch.where(on, shift, 0)
    if "cutout" in policy:
        ch, cw = h // 2, w // 2
        top = (rand(b) * (h - ch + 1)).long()
        left = (rand(b) * (w - cw + 1)).long()
        params["cutout"] = torch.stack([top, left, torch.where(on, ch, 0), torch.full_like(top, cw)], 1)
    return params


def apply(x, params):
    """``x`` (B, C, H, W) transformed by ``draw``'s ``params``; differentiable in ``x``."""
    b, c, h, w = x.shape
    shift, box = params["shift"], params["cutout"]
    if shift.any():
        sh, sw = h // 8, w // 8
        padded = F.pad(x, (sw, sw, sh, sh))
        rows = torch.arange(h, device=x.device) + sh - shift[:, :1]            # (B, H) source rows
        cols = torch.arange(w, device=x.device) + sw - shift[:, 1:]            # (B, W)
        batch = torch.arange(b, device=x.device)[:, None, None]
        x = padded.permute(0, 2, 3, 1)[batch, rows[:, :, None], cols[:, None, :]].permute(0, 3, 1, 2)
    if box[:, 2].any():
        r = torch.arange(h, device=x.device)[None, :, None]
        q = torch.arange(w, device=x.device)[None, None, :]
        top, left, bh, bw = (box[:, i, None, None] for i in range(4))
        hole = (r >= top) & (r < top + bh) & (q >= left) & (q < left + bw)
        x = x * (~hole).unsqueeze(1).to(x.dtype)
    return x
