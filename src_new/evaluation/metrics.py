"""Metrics on multi-component masks: arrays (N, C, H, W) in [0, 1] (numpy or torch).

Each function is small and independent of any model; features are float64 numpy arrays.
"""
from __future__ import annotations

import numpy as np
import torch

from ..datasets.geometry import measure_dimensions

GEOMETRIC_FEATURES = ("area", "com_y", "com_x", "bbox_h", "bbox_w")


def as_tensor(x):
    """(N, C, H, W) array or tensor -> float32 CPU tensor."""
    if isinstance(x, torch.Tensor):
        return x.detach().float().cpu()
    return torch.from_numpy(np.asarray(x, dtype=np.float32))


# ---------------------------------------------------------------- geometry
def geometric_features(images, threshold=0.5):
    """Per sample and component: area, centre of mass (y, x), bounding-box height and width
    of the thresholded mask, then the sample's width_px/height_px -> (N, 5C + 2) float64.
    Empty components give area 0 and the other four features 0."""
    x = as_tensor(images) > threshold
    n, c, h, w = x.shape
    xf = x.double()
    area = xf.sum((2, 3))
    ys = torch.arange(h, dtype=torch.float64).view(1, 1, h, 1)
    xs = torch.arange(w, dtype=torch.float64).view(1, 1, 1, w)
    safe = area.clamp_min(1)
    com_y, com_x = (xf * ys).sum((2, 3)) / safe, (xf * xs).sum((2, 3)) / safe
    rows, cols = x.any(3), x.any(2)                       # (N, C, H), (N, C, W)

    def extent(occupied):
        size = occupied.shape[-1]
        first = occupied.float().argmax(-1)
        last = size - 1 - occupied.flip(-1).float().argmax(-1)
        return torch.where(occupied.any(-1), (last - first + 1).double(), torch.zeros((), dtype=torch.float64))

    feats = torch.stack([area, com_y, com_x, extent(rows), extent(cols)], dim=2).reshape(n, -1)
    dims = torch.from_numpy(measure_dimensions(x.float().numpy())).double()
    return torch.cat([feats, dims], dim=1).numpy()


def standardize(reference, *others):
    """Standardize by the reference set's mean/std (constant features stay centred)."""
    mean, std = reference.mean(0), reference.std(0)
    std = np.where(std > 1e-8, std, 1.0)
    return [(f - mean) / std for f in (reference, *others)]


def pixel_features(images):
    """Flattened pixels (N, C*H*W) float64."""
    return as_tensor(images).flatten(1).double().numpy()


# ---------------------------------------------------------------- distribution distances
def feature_statistics(features):
    """Mean (d,) and covariance (d, d) of (N, d) features."""
    f = np.asarray(features, dtype=np.float64)
    return f.mean(0), np.cov(f, rowvar=False)


def frechet_distance(mu1, sigma1, mu2, sigma2):
    """||mu1 - mu2||^2 + tr(S1 + S2 - 2 (S1 S2)^{1/2}) between two Gaussians.
    tr (S1 S2)^{1/2} = sum sqrt(eig(S1^{1/2} S2 S1^{1/2})), a symmetric PSD matrix."""
    mu1, mu2 = np.atleast_1d(mu1), np.atleast_1d(mu2)
    s1, s2 = np.atleast_2d(sigma1), np.atleast_2d(sigma2)
    vals, vecs = np.linalg.eigh(s1)
    root1 = (vecs * np.sqrt(np.clip(vals, 0, None))) @ vecs.T
    cross = np.linalg.eigvalsh(root1 @ s2 @ root1)
    trace_sqrt = np.sqrt(np.clip(cross, 0, None)).sum()
    return float(((mu1 - mu2) ** 2).sum() + np.trace(s1) + np.trace(s2) - 2 * trace_sqrt)


def frechet_distance_features(real, fake):
    return frechet_distance(*feature_statistics(real), *feature_statistics(fake))


def kernel_inception_distance(real, fake, num_subsets=50, subset_size=1000, seed=0):
    """KID: unbiased MMD^2 with the cubic kernel k(x, y) = (x.y / d + 1)^3, averaged over
    random subsets; returns (mean, std)."""
    real, fake = np.asarray(real, np.float64), np.asarray(fake, np.float64)
    m = min(subset_size, len(real), len(fake))
    d = real.shape[1]
    rng = np.random.default_rng(seed)
    values = []
    for _ in range(num_subsets):
        x = real[rng.choice(len(real), m, replace=False)]
        y = fake[rng.choice(len(fake), m, replace=False)]
        kxx, kyy, kxy = ((x @ x.T) / d + 1) ** 3, ((y @ y.T) / d + 1) ** 3, ((x @ y.T) / d + 1) ** 3
        mmd = ((kxx.sum() - np.trace(kxx)) + (kyy.sum() - np.trace(kyy))) / (m * (m - 1)) - 2 * kxy.mean()
        values.append(mmd)
    return float(np.mean(values)), float(np.std(values))


# ---------------------------------------------------------------- manifolds (kNN)
def pairwise_distances(a, b, chunk=1024):
    """Euclidean distances (len(a), len(b)), in float32 chunks (pixel features are wide)."""
    a, b = torch.as_tensor(np.asarray(a)).float(), torch.as_tensor(np.asarray(b)).float()
    return torch.cat([torch.cdist(a[i:i + chunk], b) for i in range(0, len(a), chunk)]).double().numpy()


def knn_radii(features, k=3):
    """Distance from each point to its k-th nearest other point."""
    d = pairwise_distances(features, features)
    return np.sort(d, axis=1)[:, k]            # column 0 is the point itself


def precision_recall(real, fake, k=3):
    """Kynkäänniemi et al. 2019: precision = share of fake samples inside the real manifold
    (union of kNN balls), recall = share of real samples inside the fake manifold."""
    r_real, r_fake = knn_radii(real, k), knn_radii(fake, k)
    d = pairwise_distances(fake, real)                       # (n_fake, n_real)
    precision = (d <= r_real[None, :]).any(1).mean()
    recall = (d.T <= r_fake[None, :]).any(1).mean()
    return float(precision), float(recall)


def density_coverage(real, fake, k=3):
    """Naeem et al. 2020: density = mean count of real kNN balls holding each fake sample / k;
    coverage = share of real samples whose kNN ball holds at least one fake sample."""
    r_real = knn_radii(real, k)
    inside = pairwise_distances(fake, real) <= r_real[None, :]
    return float(inside.sum(1).mean() / k), float(inside.any(0).mean())


# ---------------------------------------------------------------- overlap and position
def iou_dice(pred, target, threshold=0.5):
    """Per sample and component (N, C): IoU and Dice of the thresholded masks (1 when both empty)."""
    p, t = as_tensor(pred) > threshold, as_tensor(target) > threshold
    inter, union = (p & t).sum((2, 3)).double(), (p | t).sum((2, 3)).double()
    total = p.sum((2, 3)).double() + t.sum((2, 3)).double()
    iou = torch.where(union > 0, inter / union.clamp_min(1), torch.ones_like(union))
    dice = torch.where(total > 0, 2 * inter / total.clamp_min(1), torch.ones_like(total))
    return iou.numpy(), dice.numpy()


def center_of_mass(images, threshold=0.5):
    """(N, C, 2) centre of mass (y, x) of each thresholded component (NaN when empty)."""
    x = (as_tensor(images) > threshold).double()
    h, w = x.shape[2:]
    area = x.sum((2, 3))
    ys = (x * torch.arange(h, dtype=torch.float64).view(1, 1, h, 1)).sum((2, 3))
    xs = (x * torch.arange(w, dtype=torch.float64).view(1, 1, 1, w)).sum((2, 3))
    com = torch.stack([ys, xs], -1) / area.unsqueeze(-1)
    return torch.where(area.unsqueeze(-1) > 0, com, torch.full_like(com, float("nan"))).numpy()


def center_of_mass_distance(pred, target, threshold=0.5):
    """(N, C) Euclidean distance in pixels between centres of mass (NaN if either is empty)."""
    return np.linalg.norm(center_of_mass(pred, threshold) - center_of_mass(target, threshold), axis=-1)


def condition_error(images, requested):
    """Mean absolute error in pixels per condition column between the requested
    (width_px, height_px) and those measured on the images -> (k,)."""
    measured = measure_dimensions(as_tensor(images).numpy())
    return np.abs(measured - np.asarray(requested, dtype=np.float64)[:, :2]).mean(0)


# ---------------------------------------------------------------- connectivity
def label_components(masks):
    """4-connected labels of boolean masks (..., H, W): every pixel of a piece gets the
    largest flat index + 1 in that piece, background 0. Labels spread along whole
    horizontal, then vertical runs at once, so few sweeps are needed."""
    m = torch.as_tensor(masks).bool()
    shape = m.shape
    flat = m.reshape(-1, *shape[-2:])
    init = torch.arange(1, flat.numel() + 1, dtype=torch.int64).view_as(flat) * flat
    labels = init.clone()

    def spread(lab, fg):                      # along the last axis, within runs of foreground
        starts = fg.clone()
        starts[..., 1:] &= ~fg[..., :-1]
        run = torch.cumsum(starts.flatten(), 0).view_as(fg)
        best = torch.zeros(int(run.max()) + 1, dtype=lab.dtype)
        best.scatter_reduce_(0, run[fg], lab[fg], "amax")
        return torch.where(fg, best[run], lab)

    while True:
        new = spread(labels, flat)
        new = spread(new.transpose(1, 2), flat.transpose(1, 2)).transpose(1, 2)
        if torch.equal(new, labels):
            return labels.view(shape), init.view(shape)
        labels = new


def count_pieces(images, threshold=0.5):
    """(N, C) number of 4-connected pieces of each thresholded component."""
    fg = as_tensor(images) > threshold
    labels, init = label_components(fg)
    return ((labels == init) & fg).sum((2, 3)).numpy()


def connectivity(fake, real_counts_mode):
    """Per component: mean |pieces(fake) - typical real count| and the share of samples with
    every component in the typical real number of pieces. ``real_counts_mode``: (C,)."""
    counts = count_pieces(fake)
    diff = np.abs(counts - np.asarray(real_counts_mode)[None, :])
    return {"piece_count_error": diff.mean(0), "same_pieces_fraction": float((diff == 0).all(1).mean())}


# ---------------------------------------------------------------- diversity and sharpness
def mean_pairwise_l1(images, max_items=500, seed=0):
    """Mean per-pixel L1 distance between distinct samples (on at most ``max_items``)."""
    x = as_tensor(images).flatten(1)
    if len(x) > max_items:
        x = x[torch.from_numpy(np.random.default_rng(seed).choice(len(x), max_items, replace=False))]
    if len(x) < 2:
        return 0.0
    d = torch.cdist(x, x, p=1).double() / x.shape[1]
    return float(d.sum() / (len(x) * (len(x) - 1)))


def diversity_ratio(fake, real, real_diversity=None):
    """Mean pairwise L1 among fake samples / among real samples (1 = as diverse as data)."""
    real_diversity = mean_pairwise_l1(real) if real_diversity is None else real_diversity
    return mean_pairwise_l1(fake) / max(real_diversity, 1e-12)


def binarization(images, tol=0.1):
    """Fraction of pixels within ``tol`` of 0 or 1 (real masks: 1.0)."""
    x = as_tensor(images)
    return float(((x <= tol) | (x >= 1 - tol)).float().mean())
