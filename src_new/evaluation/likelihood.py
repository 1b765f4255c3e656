"""Likelihood scores as typicality tests: does a score rank real designs above the same
designs under shuffled conditions, and above corrupted designs (one component shifted by
3 px)? Model-independent: a score is any callable ``(images, cond) -> (N,)`` on numpy
arrays, e.g. a WGAN-GP's ``log_likelihood`` (log p(E(x) | c) under its flow prior), wrapped
by ``batched``.

    report = likelihood_report({"flow": batched(model.log_likelihood)}, images, cond, dims=20)
"""
from __future__ import annotations

import numpy as np
import torch

SHIFT_PX = 3
DIRECTIONS = ((1, 0), (-1, 0), (0, 1), (0, -1))     # (rows, columns): down, up, right, left


def batched(log_likelihood, batch=256, **kwargs):
    """A score for ``likelihood_report`` from a torch function ``log_likelihood(x (B, C, H, W),
    c (B, k) or None, **kwargs) -> (B,)``, applied in batches of ``batch`` under no_grad."""
    @torch.no_grad()
    def score(images, cond):
        x, c = torch.from_numpy(images), None if cond is None else torch.from_numpy(cond)
        return torch.cat([log_likelihood(x[i:i + batch], None if c is None else c[i:i + batch], **kwargs)
                          for i in range(0, len(x), batch)]).numpy()
    return score


def auroc(positive, negative, chunk=2048):
    """Area under the ROC curve of a score meant to be higher for ``positive`` (N,) than
    for ``negative`` (M,): P(pos > neg) + P(pos == neg) / 2 over all pairs, in [0, 1]
    (1 = perfect separation, 0.5 = chance)."""
    pos, neg = np.asarray(positive, np.float64).ravel(), np.asarray(negative, np.float64).ravel()
    if not len(pos) or not len(neg):
        raise ValueError(f"auroc needs scores on both sides, got {len(pos)} positive and {len(neg)} negative")
    if not (np.isfinite(pos).all() and np.isfinite(neg).all()):
        raise ValueError("auroc: scores contain NaN or inf")
    wins = 0.0
    for start in range(0, len(pos), chunk):
        p = pos[start:start + chunk, None]
        wins += (p > neg[None]).sum() + 0.5 * (p == neg[None]).sum()
    return float(wins / (len(pos) * len(neg)))


def shift_component(images, rng, shift=SHIFT_PX):
    """Corrupt each design: one random component moved by ``shift`` px in a random direction
    (down/up/right/left, zero fill); the other components are untouched.
    images: (N, C, H, W) -> (corrupted copy, component index per sample (N,))."""
    images = np.asarray(images)
    out = images.copy()
    n, c, h, w = images.shape
    comps = rng.integers(c, size=n)
    dirs = rng.integers(len(DIRECTIONS), size=n)
    for i in range(n):
        dy, dx = (shift * d for d in DIRECTIONS[dirs[i]])
        moved = np.zeros((h, w), images.dtype)
        moved[max(dy, 0):h + min(dy, 0), max(dx, 0):w + min(dx, 0)] = \
            images[i, comps[i], max(-dy, 0):h + min(-dy, 0), max(-dx, 0):w + min(-dx, 0)]
        out[i, comps[i]] = moved
    return out, comps


def likelihood_report(scores, images, cond, dims=None, seed=0):
    """Each score on the real designs, the same designs with shuffled conditions and the
    corrupted designs -> {score name: metrics}.

    scores: {name: fn(images (N, C, H, W) float32 in [0, 1], cond (N, k) float32 or None) -> (N,)
    log-likelihoods}; cond: the designs' (normalized) conditions or None; dims: the latent
    size, for NLL in nats per dimension. Metrics: mean_log_likelihood (real,
    shuffled_conditions, corrupted), nll_per_dim, auroc_shuffled_conditions (absent without
    conditions), auroc_corrupted."""
    rng = np.random.default_rng(seed)
    images = np.asarray(images, np.float32)
    cond = None if cond is None or np.asarray(cond).size == 0 else np.asarray(cond, np.float32)
    if cond is not None and len(cond) != len(images):
        raise ValueError(f"likelihood_report: {len(images)} images but {len(cond)} condition rows")
    shuffled = None if cond is None else cond[rng.permutation(len(cond))]
    corrupted, _ = shift_component(images, rng)
    report = {}
    for name, fn in scores.items():
        real = np.asarray(fn(images, cond), np.float64)
        bad = np.asarray(fn(corrupted, cond), np.float64)
        out = {"n": int(len(images)), "mean_log_likelihood": float(real.mean()),
               "mean_log_likelihood_corrupted": float(bad.mean()), "auroc_corrupted": auroc(real, bad)}
        if dims:
            out["nll_per_dim"] = float(-real.mean() / dims)
        if shuffled is not None:
            other = np.asarray(fn(images, shuffled), np.float64)
            out["mean_log_likelihood_shuffled_conditions"] = float(other.mean())
            out["auroc_shuffled_conditions"] = auroc(real, other)
        report[name] = out
    return report
