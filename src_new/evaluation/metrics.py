"""Metrics on multi-component masks: images (N, C, H, W) in [0, 1] (numpy or torch).

Each function is small and independent of any model. Features and returned arrays are
float64 numpy (pixel features: float32, see ``pixel_features``).

Distribution metrics (between a real and a generated feature set):
  feature_statistics, frechet_distance, frechet_distance_features, kid,
  knn_radii, manifold_metrics, precision_recall, density_coverage
Features: geometric_features (standardized with standardization/standardize), pixel_features,
  pooled_pixel_features (pictures: average-pooled to a small size, flattened)
Memorisation: nearest_distances (each query's distance to its nearest reference item)
Per-sample comparisons: iou_dice, center_of_mass, center_of_mass_distance, condition_error
Condition conventions: geometry_measurements, fit_condition_convention(s), predict_conditions
Structure: label_components, count_pieces, connectivity
Completions (inpainting): overlap_with_kept
Sample-set statistics: mean_pairwise_l1, diversity_ratio, binarization
Spread at a given condition: residual_spread_ratio (per feature, after a fit on the conditions)
Within-condition diversity: within_condition_diversity (K draws per condition), condition_pairs,
  real_pair_diversity (real pairs with conditions within 1 px), group_by_condition
"""
from __future__ import annotations

import numpy as np
import torch

from ..utils.geometry import measure_dimensions, union_measurements

GEOMETRIC_FEATURES = ("area", "com_y", "com_x", "bbox_h", "bbox_w")
MEASURED_COLUMNS = ("width_px", "height_px")        # the order measure_dimensions returns


def as_tensor(x, what="images"):
    """(N, C, H, W) array or tensor -> float32 CPU tensor (ValueError for another rank)."""
    t = x.detach().float().cpu() if isinstance(x, torch.Tensor) else torch.from_numpy(np.asarray(x, dtype=np.float32))
    if t.ndim != 4:
        raise ValueError(f"{what}: expected an (N, C, H, W) array, got shape {tuple(t.shape)}")
    return t


def _features(x, what):
    """(N, d) float array (numpy/torch) -> numpy, keeping float32/float64."""
    if isinstance(x, torch.Tensor):
        x = x.detach().cpu().numpy()
    x = np.asarray(x)
    x = np.ascontiguousarray(x if x.dtype in (np.float32, np.float64) else x.astype(np.float64))
    if x.ndim != 2:
        raise ValueError(f"{what}: expected (N, d) features, got shape {x.shape}")
    return x


def _same_dim(a, b, what):
    if a.shape[1] != b.shape[1]:
        raise ValueError(f"{what}: real and generated features differ in dimension "
                         f"({a.shape[1]} vs {b.shape[1]}); compute both with the same feature function")


# ---------------------------------------------------------------- features
def geometric_features(images, threshold=0.5):
    """Per sample and component: area, centre of mass (y, x), bounding-box height and width
    of the mask thresholded at ``threshold`` (pixels), then the sample's width_px/height_px
    (``measure_dimensions``) -> (N, 5C + 2) float64. An empty component gives five zeros."""
    x = as_tensor(images) > threshold
    n, c, h, w = x.shape
    xf = x.double()
    area = xf.sum((2, 3))
    ys = torch.arange(h, dtype=torch.float64).view(1, 1, h, 1)
    xs = torch.arange(w, dtype=torch.float64).view(1, 1, 1, w)
    safe = area.clamp_min(1)
    com_y, com_x = (xf * ys).sum((2, 3)) / safe, (xf * xs).sum((2, 3)) / safe

    def extent(occupied):                      # (N, C, L) bool -> last - first + 1, 0 if none
        size = occupied.shape[-1]
        first = occupied.float().argmax(-1)
        last = size - 1 - occupied.flip(-1).float().argmax(-1)
        return torch.where(occupied.any(-1), (last - first + 1).double(), torch.zeros((), dtype=torch.float64))

    feats = torch.stack([area, com_y, com_x, extent(x.any(3)), extent(x.any(2))], dim=2).reshape(n, -1)
    dims = torch.from_numpy(measure_dimensions(x.float().numpy())).double()
    return torch.cat([feats, dims], dim=1).numpy()


def geometric_feature_names(component_names):
    """Column names of ``geometric_features`` for these components."""
    return [f"{f}_{c}" for c in component_names for f in GEOMETRIC_FEATURES] + list(MEASURED_COLUMNS)


def standardization(reference):
    """Mean and std (d,) of the reference (real) features; a constant feature gets std 1 so
    it stays centred instead of dividing by zero."""
    ref = _features(reference, "reference features").astype(np.float64)
    std = ref.std(0)
    return ref.mean(0), np.where(std > 1e-8, std, 1.0)


def standardize(reference, *others):
    """[reference, *others] standardized by the reference's mean/std (list of arrays)."""
    mean, std = standardization(reference)
    return [(_features(f, "features").astype(np.float64) - mean) / std for f in (reference, *others)]


def pixel_features(images):
    """Flattened pixels (N, C*H*W) float32 (exact distances for binary masks: the dot products
    are integers below 2^24)."""
    return as_tensor(images).flatten(1).numpy()


def pooled_pixel_features(images, size=16):
    """Pictures (N, C, H, W) in [0, 1] average-pooled to (C, size, size) and flattened ->
    (N, C*size*size) float64: a feature space for ordinary pictures (RGB video frames), where
    the geometric features of masks mean nothing and full-resolution pixels are too many
    dimensions for FD / k-NN at a few hundred samples. ``size`` (int or (h, w)) must not exceed
    the image's size; H and W need not be multiples of it (adaptive pooling)."""
    x = as_tensor(images)
    h, w = (size, size) if isinstance(size, int) else tuple(size)
    if not (1 <= h <= x.shape[2] and 1 <= w <= x.shape[3]):
        raise ValueError(f"pooled_pixel_features: size {(h, w)} must be between 1 and the images' "
                         f"{tuple(x.shape[2:])}")
    return torch.nn.functional.adaptive_avg_pool2d(x, (h, w)).flatten(1).double().numpy()


# ---------------------------------------------------------------- Fréchet distance, KID
def feature_statistics(features):
    """Mean (d,) and covariance (d, d) of (N, d) features, N >= 2."""
    f = _features(features, "features").astype(np.float64)
    if len(f) < 2:
        raise ValueError(f"feature statistics need at least 2 samples, got {len(f)}")
    return f.mean(0), np.cov(f, rowvar=False).reshape(f.shape[1], f.shape[1])


def frechet_distance(mu1, sigma1, mu2, sigma2):
    """Fréchet distance between N(mu1, sigma1) and N(mu2, sigma2):
    ||mu1 - mu2||^2 + tr(S1 + S2 - 2 (S1 S2)^{1/2}).
    tr (S1 S2)^{1/2} = sum sqrt(eig(S1^{1/2} S2 S1^{1/2})), a symmetric PSD matrix, so no
    complex square root (scipy's sqrtm) is needed and singular covariances are fine."""
    mu1, mu2 = np.atleast_1d(np.asarray(mu1, np.float64)), np.atleast_1d(np.asarray(mu2, np.float64))
    s1, s2 = np.atleast_2d(np.asarray(sigma1, np.float64)), np.atleast_2d(np.asarray(sigma2, np.float64))
    if not (mu1.shape == mu2.shape and s1.shape == s2.shape == (len(mu1), len(mu1))):
        raise ValueError(f"frechet_distance: shapes do not match: mu {mu1.shape} / {mu2.shape}, "
                         f"sigma {s1.shape} / {s2.shape}")
    vals, vecs = np.linalg.eigh(s1)
    root1 = (vecs * np.sqrt(np.clip(vals, 0, None))) @ vecs.T
    inner = root1 @ s2 @ root1
    cross = np.linalg.eigvalsh((inner + inner.T) / 2)      # symmetrize rounding noise
    trace_sqrt = np.sqrt(np.clip(cross, 0, None)).sum()
    return float(((mu1 - mu2) ** 2).sum() + np.trace(s1) + np.trace(s2) - 2 * trace_sqrt)


def frechet_distance_features(real, fake):
    """Fréchet distance between Gaussians fitted to two (N, d) feature sets."""
    real, fake = _features(real, "real features"), _features(fake, "generated features")
    _same_dim(real, fake, "frechet_distance_features")
    return frechet_distance(*feature_statistics(real), *feature_statistics(fake))


def kid(real, fake, num_subsets=50, subset_size=1000, seed=0):
    """Kernel Inception Distance: unbiased MMD^2 with the cubic polynomial kernel
    k(x, y) = (x.y / d + 1)^3 on random subsets of ``min(subset_size, N_real, N_fake)``
    from each set -> (mean, std) over ``num_subsets`` subsets. Near 0 (can be slightly
    negative) for sets from one distribution."""
    real = _features(real, "real features").astype(np.float64)
    fake = _features(fake, "generated features").astype(np.float64)
    _same_dim(real, fake, "kid")
    m = min(subset_size, len(real), len(fake))
    if m < 2:
        raise ValueError(f"kid needs at least 2 samples in each set, got {len(real)} real, {len(fake)} generated")
    d = real.shape[1]
    rng = np.random.default_rng(seed)
    values = []
    for _ in range(num_subsets):
        x = real[rng.choice(len(real), m, replace=False)]
        y = fake[rng.choice(len(fake), m, replace=False)]
        kxx, kyy, kxy = ((x @ x.T) / d + 1) ** 3, ((y @ y.T) / d + 1) ** 3, ((x @ y.T) / d + 1) ** 3
        # unbiased: the diagonals k(x_i, x_i) are left out of the within-set means
        within = (kxx.sum() - np.trace(kxx) + kyy.sum() - np.trace(kyy)) / (m * (m - 1))
        values.append(within - 2 * kxy.mean())
    return float(np.mean(values)), float(np.std(values))


kernel_inception_distance = kid    # the long name, as in the literature


# ---------------------------------------------------------------- k-NN manifolds
def pairwise_distances(a, b, chunk=1024):
    """Euclidean distances (len(a), len(b)) in the inputs' precision (float32 or float64),
    computed in row chunks -> float64 numpy."""
    a, b = torch.from_numpy(_features(a, "features")), torch.from_numpy(_features(b, "features"))
    b = b.to(a.dtype)
    return torch.cat([torch.cdist(a[i:i + chunk], b) for i in range(0, len(a), chunk)]).double().numpy()


def _chunks(a, b, chunk):
    """Yield (start, distances of rows a[start:start+chunk] to all of b) as torch tensors."""
    a, b = torch.from_numpy(a), torch.from_numpy(b).to(torch.from_numpy(a).dtype)
    for i in range(0, len(a), chunk):
        yield i, torch.cdist(a[i:i + chunk], b)


def knn_radii(features, k=3, chunk=1024):
    """(N,) distance from each point to its k-th nearest other point (chunked: never holds
    the full N x N matrix)."""
    f = _features(features, "features")
    if len(f) <= k:
        raise ValueError(f"k-NN radii with k={k} need more than {k} samples, got {len(f)}")
    out = np.empty(len(f))
    for i, d in _chunks(f, f, chunk):
        out[i:i + len(d)] = d.kthvalue(k + 1, dim=1).values.double().numpy()   # value k+1 counts the point itself
    return out


def manifold_metrics(real, fake, k=3, real_radii=None, chunk=1024):
    """Precision, recall (Kynkäänniemi et al. 2019) and density, coverage (Naeem et al. 2020)
    with k-NN balls, in one chunked pass -> dict of floats in [0, 1] (density can exceed 1).

    precision: share of generated samples inside some real sample's k-NN ball;
    recall:    share of real samples inside some generated sample's k-NN ball;
    density:   mean number of real balls holding a generated sample, divided by k;
    coverage:  share of real samples whose ball holds at least one generated sample.
    "Inside" is ``distance <= radius`` for precision/recall (Kynkäänniemi et al.'s code) and
    strictly ``distance < radius`` for density/coverage (Naeem et al.'s reference code): with
    binary pixel features ties are common, and ``<=`` made real-vs-itself density 4/3, not 1.
    Both sets should have the same n, one sample per condition: duplicates shrink the k-NN
    radii of the duplicated set. ``real_radii``: precomputed ``knn_radii(real, k)``."""
    real, fake = _features(real, "real features"), _features(fake, "generated features")
    _same_dim(real, fake, "manifold_metrics")
    fake = fake.astype(real.dtype)
    r_real = torch.from_numpy(knn_radii(real, k, chunk) if real_radii is None else np.asarray(real_radii))
    r_fake = torch.from_numpy(knn_radii(fake, k, chunk))
    in_real = np.zeros(len(fake), bool)
    counts = np.zeros(len(fake))
    covered = torch.zeros(len(real), dtype=torch.bool)
    recalled = torch.zeros(len(real), dtype=torch.bool)
    for i, d in _chunks(fake, real, chunk):                      # d: (chunk of fake, real)
        d = d.double()
        in_real[i:i + len(d)] = (d <= r_real[None, :]).any(1).numpy()
        strictly = d < r_real[None, :]                           # Naeem et al.: strict for density/coverage
        counts[i:i + len(d)] = strictly.sum(1).numpy()
        covered |= strictly.any(0)
        recalled |= (d <= r_fake[i:i + len(d), None]).any(0)
    return {"precision": float(in_real.mean()), "recall": float(recalled.double().mean()),
            "density": float(counts.mean() / k), "coverage": float(covered.double().mean())}


def nearest_distances(queries, reference, chunk=1024):
    """(N,) distance from each query row of ``queries`` (N, d) to its nearest row of
    ``reference`` (M, d) (chunked; M >= 1). The memorisation check: generated pictures at about
    zero distance from a training picture are copies of it."""
    q, ref = _features(queries, "queries"), _features(reference, "reference")
    _same_dim(q, ref, "nearest_distances")
    if not len(ref):
        raise ValueError("nearest_distances: the reference set is empty")
    out = np.empty(len(q))
    for i, d in _chunks(q, ref, chunk):
        out[i:i + len(d)] = d.min(1).values.double().numpy()
    return out


def precision_recall(real, fake, k=3):
    """(precision, recall) of ``manifold_metrics``."""
    m = manifold_metrics(real, fake, k)
    return m["precision"], m["recall"]


def density_coverage(real, fake, k=3):
    """(density, coverage) of ``manifold_metrics``."""
    m = manifold_metrics(real, fake, k)
    return m["density"], m["coverage"]


# ---------------------------------------------------------------- overlap and position
def _pair(pred, target):
    p, t = as_tensor(pred, "pred"), as_tensor(target, "target")
    if p.shape != t.shape:
        raise ValueError(f"pred and target shapes differ: {tuple(p.shape)} vs {tuple(t.shape)}")
    return p, t


def iou_dice(pred, target, threshold=0.5):
    """Per sample and component (N, C): IoU and Dice of the masks thresholded at
    ``threshold``; both are 1 where both masks are empty (nothing to get wrong)."""
    p, t = _pair(pred, target)
    p, t = p > threshold, t > threshold
    inter, union = (p & t).sum((2, 3)).double(), (p | t).sum((2, 3)).double()
    total = p.sum((2, 3)).double() + t.sum((2, 3)).double()
    iou = torch.where(union > 0, inter / union.clamp_min(1), torch.ones_like(union))
    dice = torch.where(total > 0, 2 * inter / total.clamp_min(1), torch.ones_like(total))
    return iou.numpy(), dice.numpy()


def center_of_mass(images, threshold=0.5):
    """(N, C, 2) centre of mass (y, x) in pixels of each thresholded component (NaN if empty)."""
    x = (as_tensor(images) > threshold).double()
    h, w = x.shape[2:]
    area = x.sum((2, 3))
    ys = (x * torch.arange(h, dtype=torch.float64).view(1, 1, h, 1)).sum((2, 3))
    xs = (x * torch.arange(w, dtype=torch.float64).view(1, 1, 1, w)).sum((2, 3))
    com = torch.stack([ys, xs], -1) / area.unsqueeze(-1)
    return torch.where(area.unsqueeze(-1) > 0, com, torch.full_like(com, float("nan"))).numpy()


def center_of_mass_distance(pred, target, threshold=0.5):
    """(N, C) Euclidean distance in pixels between centres of mass (NaN if either is empty)."""
    p, t = _pair(pred, target)
    return np.linalg.norm(center_of_mass(p, threshold) - center_of_mass(t, threshold), axis=-1)


# ---------------------------------------------------------------- conditions measured on images
# Candidate measurements of the union of all components (thresholded), each (N,) in pixels:
# a dataset's condition column is assumed to be an affine map of one of them.
MEASUREMENTS = ("width", "height", "x_end", "x_from_right", "y_end", "y_from_bottom")
IDENTITY_CONVENTIONS = {"width_px": "width", "height_px": "height"}   # measure_dimensions' definition
CONVENTION_TOLERANCE_PX = 1.0      # a fit leaving a larger mean error is "no convention fits"


def geometry_measurements(images, threshold=0.5):
    """Candidate measurements of each sample's union mask -> {name: (N,) float64 px}, names
    ``MEASUREMENTS`` (see ``datasets.geometry.union_measurements``)."""
    return union_measurements(as_tensor(images).numpy(), threshold)


def fit_condition_convention(images, values, candidates=MEASUREMENTS, threshold=0.5, measurements=None):
    """Which measurement, affinely mapped, gives this condition column? ``values`` (N,) raw
    condition values of ``images`` (N, C, H, W) (the train split). For each candidate m a
    least-squares fit ``values ~ slope * m + intercept``; the candidate with the smallest mean
    absolute residual wins (ties: the first in ``candidates``). Returns {"measure", "slope",
    "intercept", "residual" (px, mean |error| on these samples), "fits" ({candidate: residual}),
    "ok" (residual <= CONVENTION_TOLERANCE_PX)}. Examples: a CSV width that is the full width of
    a mirrored half-section fits ``x_end`` with slope 2; this repository's toy data fits
    ``width`` and ``height`` with slope 1, intercept 0."""
    values = np.asarray(values, dtype=np.float64).reshape(-1)
    meas = measurements if measurements is not None else geometry_measurements(images, threshold)
    if len(values) != len(next(iter(meas.values()))):
        raise ValueError(f"fit_condition_convention: {len(values)} values for "
                         f"{len(next(iter(meas.values())))} images")
    if len(values) < 2:
        raise ValueError("fit_condition_convention needs at least 2 samples")
    best, fits = None, {}
    for name in candidates:
        m = meas[name]
        design = np.stack([m, np.ones_like(m)], 1)
        (slope, intercept), *_ = np.linalg.lstsq(design, values, rcond=None)
        residual = float(np.abs(slope * m + intercept - values).mean())
        # an exact convention (e.g. 2 * x_end - 1) is reported exactly, not with rounding noise
        snapped = (round(slope * 2) / 2, float(round(intercept)))
        snapped_residual = float(np.abs(snapped[0] * m + snapped[1] - values).mean())
        if snapped_residual <= residual + 1e-6:
            (slope, intercept), residual = snapped, snapped_residual
        fits[name] = residual
        if best is None or residual < best["residual"] - 1e-9:
            best = {"measure": name, "slope": float(slope), "intercept": float(intercept), "residual": residual}
    best["fits"] = fits
    best["ok"] = bool(best["residual"] <= CONVENTION_TOLERANCE_PX)
    return best


def fit_condition_conventions(images, conditions, columns, threshold=0.5):
    """``fit_condition_convention`` for every column of raw ``conditions`` (N, len(columns))
    -> {column: fit}."""
    cond = np.asarray(conditions, dtype=np.float64)
    if cond.ndim != 2 or cond.shape[1] != len(columns):
        raise ValueError(f"fit_condition_conventions: conditions have shape {cond.shape}, expected "
                         f"(N, {len(columns)}) for columns {list(columns)}")
    meas = geometry_measurements(images, threshold)
    return {c: fit_condition_convention(None, cond[:, j], measurements=meas) for j, c in enumerate(columns)}


def identity_conventions(columns):
    """The conventions of data made by make_toy_data.py: width_px / height_px = bounding box."""
    unknown = [c for c in columns if c not in IDENTITY_CONVENTIONS]
    if unknown:
        raise ValueError(f"cannot measure {unknown} on images without a fitted convention; measurable "
                         f"columns are {list(IDENTITY_CONVENTIONS)} (or fit one: fit_condition_conventions)")
    return {c: {"measure": IDENTITY_CONVENTIONS[c], "slope": 1.0, "intercept": 0.0} for c in columns}


def predict_conditions(images, conventions, columns, threshold=0.5):
    """Raw condition values (N, len(columns)) measured on images through ``conventions``
    ({column: {"measure", "slope", "intercept"}})."""
    meas = geometry_measurements(images, threshold)
    return np.stack([conventions[c]["slope"] * meas[conventions[c]["measure"]] + conventions[c]["intercept"]
                     for c in columns], 1)


def condition_error(images, requested, columns=MEASURED_COLUMNS, conventions=None):
    """Mean absolute error in pixels, per condition column, between the requested raw
    conditions (N, len(columns)) and the same quantities measured on the images -> (k,).
    ``conventions``: {column: fit} from ``fit_condition_conventions`` (how the dataset's
    columns relate to the image); None: width_px / height_px = bounding box of the union."""
    columns = list(columns)
    conventions = conventions if conventions is not None else identity_conventions(columns)
    missing = [c for c in columns if c not in conventions]
    if missing:
        raise ValueError(f"condition_error: no convention for column(s) {missing}")
    x = as_tensor(images)
    req = np.asarray(requested, dtype=np.float64)
    if req.ndim != 2 or req.shape != (len(x), len(columns)):
        raise ValueError(f"condition_error: requested conditions have shape {req.shape}, expected "
                         f"({len(x)}, {len(columns)}) = (images, columns {columns})")
    return np.abs(predict_conditions(x, conventions, columns) - req).mean(0)


# ---------------------------------------------------------------- connectivity
def _label_chunk(fg):
    """(B, H, W) bool -> (labels (B, H, W) int64 with pieces numbered 1..K in scan order,
    background 0; pieces per slice (B,)).

    Nodes are horizontal runs of foreground; runs in adjacent rows that overlap are linked
    (4-connectivity). A union-find in parallel: every root hooks to the smallest root it is
    linked to, then pointer jumping flattens the trees; repeated until all links agree
    (a few rounds: each round at least halves the trees' depth in practice)."""
    b, h, w = fg.shape
    starts = fg.clone()
    starts[:, :, 1:] &= ~fg[:, :, :-1]                      # run starts (column 0 always starts one)
    run = torch.cumsum(starts.reshape(-1), 0).view(b, h, w) - 1
    n_runs = int(starts.sum())
    if n_runs == 0:
        return torch.zeros(fg.shape, dtype=torch.int64), torch.zeros(b, dtype=torch.int64)
    both = fg[:, :-1] & fg[:, 1:]                           # pixel and the one below it
    first = both.clone()
    first[:, :, 1:] &= ~both[:, :, :-1]                     # one link per overlapping stretch suffices
    upper, lower = run[:, :-1][first], run[:, 1:][first]
    parent = torch.arange(n_runs)
    while True:
        pu, pl = parent[upper], parent[lower]
        differ = pu != pl
        if not bool(differ.any()):
            break
        # pu, pl are roots here; hooking the larger to the smaller keeps parent[x] <= x: no cycles
        parent.scatter_reduce_(0, torch.maximum(pu, pl)[differ], torch.minimum(pu, pl)[differ], "amin")
        while True:                                         # pointer jumping to the roots
            grand = parent[parent]
            if torch.equal(grand, parent):
                break
            parent = grand
    roots = parent == torch.arange(n_runs)
    run_label = torch.cumsum(roots, 0)[parent]              # root -> 1..K, every run -> its root's
    labels = torch.where(fg, run_label[run.clamp_min(0)], torch.zeros((), dtype=torch.int64))
    run_slice = starts.reshape(b, -1).nonzero()[:, 0]       # slice of each run, in run order
    return labels, torch.bincount(run_slice[roots], minlength=b)


def label_components(masks, return_counts=False, chunk_pixels=1 << 22):
    """4-connected labelling of boolean masks (..., H, W), each (H, W) slice on its own.

    Returns int64 labels of the same shape: background 0, pieces numbered 1..K across the
    whole batch (so ``bincount`` gives piece sizes); with ``return_counts`` also the number
    of pieces per slice, shape ``masks.shape[:-2]``. Processed in chunks of about
    ``chunk_pixels`` pixels to bound memory."""
    m = masks.detach().cpu().bool() if isinstance(masks, torch.Tensor) else torch.from_numpy(np.asarray(masks, bool))
    if m.ndim < 2:
        raise ValueError(f"label_components expects masks (..., H, W), got shape {tuple(m.shape)}")
    shape = m.shape
    h, w = shape[-2:]
    flat = m.reshape(-1, h, w)
    labels = torch.zeros(flat.shape, dtype=torch.int64)
    counts = torch.zeros(len(flat), dtype=torch.int64)
    per = max(1, chunk_pixels // max(h * w, 1))
    offset = 0
    for s in range(0, len(flat), per):
        lab, cnt = _label_chunk(flat[s:s + per])
        labels[s:s + per] = torch.where(lab > 0, lab + offset, lab)
        counts[s:s + per] = cnt
        offset += int(cnt.sum())
    labels = labels.view(shape)
    return (labels, counts.view(shape[:-2])) if return_counts else labels


def count_pieces(images, threshold=0.5):
    """(N, C) number of 4-connected pieces of each component thresholded at ``threshold``."""
    return label_components(as_tensor(images) > threshold, return_counts=True)[1].numpy()


def connectivity(fake, real_counts, threshold=0.5):
    """Piece counts of generated samples against the real count per component.

    real_counts: (C,) typical (median) number of pieces per component in real data, or (N, C)
    one count per sample (e.g. ``count_pieces`` of each completion's ground truth).
    Returns {"pieces": (N, C) piece counts of ``fake``,
             "same_pieces": (N, C) bool, pieces == real count,
             "piece_count_error": (C,) mean |pieces - real count| per component,
             "same_pieces_fraction": share of samples whose every component has the real count}."""
    counts = count_pieces(fake, threshold)
    real_counts = np.asarray(real_counts)
    if real_counts.shape not in ((counts.shape[1],), counts.shape):
        raise ValueError(f"connectivity: real_counts has shape {real_counts.shape}, expected ({counts.shape[1]},) "
                         f"or {counts.shape}")
    diff = np.abs(counts - real_counts.reshape(-1, counts.shape[1]))
    return {"pieces": counts, "same_pieces": diff == 0, "piece_count_error": diff.mean(0),
            "same_pieces_fraction": float((diff == 0).all(1).mean())}


# ---------------------------------------------------------------- consistency of completions
def overlap_with_kept(images, kept, threshold=0.5):
    """Share of each component's foreground pixels that lie on the foreground of the OTHER
    kept components (their union), per sample: how much a completed part is drawn over the
    parts that were kept. images (N, C, H, W) in [0, 1], thresholded at ``threshold``; kept
    (N, C) or (C,) bool, the components that were given. -> (N, C) float64 in [0, 1], NaN
    where the component is empty (no foreground to place). Real designs score a small
    overlap of their own (touching layers): compare with the ground truth's figure."""
    fg = as_tensor(images) > threshold
    n, c = fg.shape[:2]
    kept = torch.as_tensor(np.broadcast_to(np.asarray(kept, bool), (n, c)).copy())
    fg = fg.flatten(2)                                             # (N, C, HW)
    on_kept = fg & kept[:, :, None]
    others = (on_kept.sum(1, keepdim=True) - on_kept.long()) > 0   # kept foreground of the other components
    area = fg.sum(2).double()
    share = (fg & others).sum(2).double() / area.clamp_min(1)
    return torch.where(area > 0, share, torch.full_like(share, float("nan"))).numpy()


# ---------------------------------------------------------------- diversity and sharpness
def mean_pairwise_l1(images, max_items=500, seed=0):
    """Mean per-pixel L1 distance between distinct samples (a random subset of at most
    ``max_items`` keeps it O(max_items^2)); 0 for fewer than 2 samples."""
    x = as_tensor(images).flatten(1)
    if len(x) > max_items:
        x = x[torch.from_numpy(np.random.default_rng(seed).choice(len(x), max_items, replace=False))]
    if len(x) < 2:
        return 0.0
    d = torch.cdist(x, x, p=1).double() / x.shape[1]
    return float(d.sum() / (len(x) * (len(x) - 1)))


def diversity_ratio(fake, real=None, real_diversity=None):
    """Mean pairwise L1 among generated samples / among real samples (1 = as diverse as the
    data, 0 = collapse). Give ``real`` images or their precomputed ``real_diversity``."""
    if real_diversity is None:
        if real is None:
            raise ValueError("diversity_ratio needs the real images or their mean_pairwise_l1")
        real_diversity = mean_pairwise_l1(real)
    return mean_pairwise_l1(fake) / max(real_diversity, 1e-12)


def residual_spread_ratio(real, fake, real_cond, fake_cond):
    """Per feature: std of the fakes' residuals / std of the reals' residuals, each after its own
    least-squares fit (with intercept) on its conditions. real, fake: (N, d) / (M, d) features;
    *_cond: (N, k) / (M, k) raw conditions -> (d,) float64 (1 = as much spread at a given
    condition as the data, < 1 = the model under-disperses that feature). A feature the
    conditions determine exactly in the real data gives inf/nan: read those as undefined."""
    def residual_std(f, c):
        f, c = _features(f, "features").astype(np.float64), _features(c, "conditions").astype(np.float64)
        if len(c) != len(f):
            raise ValueError(f"residual_spread_ratio: {len(f)} feature rows but {len(c)} condition rows")
        a = np.c_[c, np.ones(len(f))]
        beta = np.linalg.lstsq(a, f, rcond=None)[0]
        return (f - a @ beta).std(0)
    with np.errstate(divide="ignore", invalid="ignore"):
        return residual_std(fake, fake_cond) / residual_std(real, real_cond)


# ---------------------------------------------------------------- within-condition diversity
def _flat(x):
    """Array/tensor -> float32 torch tensor, device kept (training-time use on GPU)."""
    return (x.detach().float() if isinstance(x, torch.Tensor)
            else torch.from_numpy(np.asarray(x, dtype=np.float32)))


def within_condition_diversity(samples):
    """Mean per-pixel L1 distance between distinct samples that share a condition.

    samples: (N, K, C, H, W) in [0, 1] (numpy or torch, any device): K >= 2 draws for each of
    N conditions. -> float (0 = every condition gets one image, whatever the noise). Divide by
    ``real_pair_diversity`` for a ratio near 1 when the model varies as much as real data of
    nearly equal conditions does."""
    x = _flat(samples)
    if x.ndim != 5 or x.shape[1] < 2:
        raise ValueError(f"within_condition_diversity: expected (N, K >= 2, C, H, W) samples, "
                         f"got shape {tuple(x.shape)}")
    n, k = x.shape[:2]
    x = x.reshape(n, k, -1)
    total = sum(float(torch.cdist(x[i:i + 256], x[i:i + 256], p=1).double().sum()) for i in range(0, n, 256))
    return total / (n * k * (k - 1) * x.shape[2])        # the diagonal (a sample to itself) is 0


def condition_pairs(conditions, tol=1.0, max_pairs=20000, seed=0, chunk=1024):
    """(P, 2) int64 index pairs i < j whose raw conditions (N, k) differ by at most ``tol`` in
    every column (P <= ``max_pairs``: a random subset, seeded, when there are more)."""
    c = torch.from_numpy(np.asarray(conditions, dtype=np.float64))
    if c.ndim != 2:
        raise ValueError(f"condition_pairs: expected (N, k) conditions, got shape {tuple(c.shape)}")
    pairs = []
    for i in range(0, len(c), chunk):
        close = torch.cdist(c[i:i + chunk], c, p=float("inf")) <= tol + 1e-9
        rows, cols = close.nonzero(as_tuple=True)
        rows = rows + i
        keep = cols > rows
        pairs.append(torch.stack([rows[keep], cols[keep]], 1))
    pairs = torch.cat(pairs).numpy() if pairs else np.zeros((0, 2), np.int64)
    if len(pairs) > max_pairs:
        pairs = pairs[np.sort(np.random.default_rng(seed).choice(len(pairs), max_pairs, replace=False))]
    return pairs


def real_pair_diversity(images, conditions, tol=1.0, max_pairs=20000, seed=0):
    """The real-data yardstick of ``within_condition_diversity``: mean per-pixel L1 distance of
    real pairs whose conditions are within ``tol`` px in every column. images (N, C, H, W) in
    [0, 1], conditions (N, k) raw. -> (value, number of pairs used); value NaN without pairs."""
    x = _flat(images)
    if x.ndim != 4 or len(x) != len(conditions):
        raise ValueError(f"real_pair_diversity: expected (N, C, H, W) images and (N, k) conditions, got "
                         f"{tuple(x.shape)} and {np.shape(conditions)}")
    pairs = torch.from_numpy(condition_pairs(conditions, tol, max_pairs, seed)).to(x.device)
    if len(pairs) == 0:
        return float("nan"), 0
    x = x.flatten(1)
    total = sum(float((x[p[:, 0]] - x[p[:, 1]]).abs().double().sum()) for p in pairs.split(1024))
    return total / (len(pairs) * x.shape[1]), int(len(pairs))


def group_by_condition(images, condition_index):
    """(M, C, H, W) samples and (M,) condition indices -> (N, K, C, H, W) with the first K draws
    of every condition that has at least 2 (K = the smallest such count), and the (N,) indices."""
    idx = np.asarray(condition_index).reshape(-1)
    if len(idx) != len(images):
        raise ValueError(f"group_by_condition: {len(idx)} indices for {len(images)} samples")
    values, counts = np.unique(idx, return_counts=True)
    values = values[counts >= 2]
    if len(values) == 0:
        raise ValueError("group_by_condition: no condition has 2 or more samples")
    k = int(counts[counts >= 2].min())
    rows = [np.flatnonzero(idx == v)[:k] for v in values]
    return np.stack([np.asarray(images)[r] for r in rows]), values


def binarization(images, tol=0.1):
    """Fraction of pixels within ``tol`` of 0 or 1 (real masks: 1.0)."""
    x = as_tensor(images)
    return float(((x <= tol) | (x >= 1 - tol)).float().mean())
