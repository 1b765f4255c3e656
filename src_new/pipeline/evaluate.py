"""Evaluate a samples folder against the test split, with sanity references beside every
figure (computed by the same code), and compare runs side by side.

    result = evaluate_samples("samples/wgan_gp/conditional")      # also writes metrics.json
    print(format_table(result))
    print(compare(["samples/wgan_gp/conditional", "samples/ddpm/conditional"]))

Steps of ``evaluate_samples``, public so that a bench measures its samples the same way (bench/
ablation.py): ``load_evaluation`` (``evaluation_of`` for samples in memory) -> ``comparison_sets``
(rows, the real set, n) -> ``condition_targets`` (fitted conventions, requested conditions) ->
``sample_metrics`` (distribution, condition and inpainting figures) -> ``within_condition_step``
-> ``reference_metrics``. One seeded rng feeds them in this order.

Protocol. The distribution metrics (FD, KID, precision/recall, density/coverage) use ONE
generated sample per condition and the same n for the samples and every reference: a
folder whose conditions repeat (``conditional`` sampled with more samples than conditions)
is refused with a message saying how to re-sample, except a folder sampled with
``--per_condition K`` (manifest ``per_condition``): there the first draw of each condition
feeds the distribution metrics (said in the notes) and all K feed the within-condition
diversity. More generated samples than n (= min(samples, real set, train split)) are
subsampled to n, with a note.

What is computed depends on the manifest's mode:
  every mode   geometric FD and KID, precision/recall/density/coverage (geometric and pixel
               space), connectivity, diversity, binarization (+ Inception FID/KID with weights)
  conditional  condition error (MAE in px, requested vs measured through the convention
               fitted on the train split, see below); with per_condition K >= 2 the
               within-condition diversity: mean pairwise L1 of draws sharing a condition /
               the same for real test pairs with conditions within 1 px (train if the test
               split has fewer than MIN_REAL_PAIRS such pairs)
  unconditional the same error against random test conditions (the "no conditioning" level)
  inpainting   on the generated (not preserved) components: IoU/Dice/centre-of-mass distance
               against the ground truth; overlap with the kept components and piece counts,
               beside the ground truth's; the condition error of the completed designs (when
               made for conditions, through the same fitted conventions) beside the ground
               truth's; max abs change of the preserved pixels
Pictures (``data.type: image_folder``: video frames, photographs) get figures that mean something
for pictures instead (``evaluate_pictures``): FD, KID and precision/recall/density/coverage on the
pictures average-pooled to PICTURE_POOL x PICTURE_POOL per channel (standardized by the real set),
and a memorisation check (each
sample's distance to its nearest training picture, beside the held-out test pictures' distances);
no geometric, piece-count, IoU or condition-convention figures.
References (each a trivial "generator" scored like the samples): real_train (real vs real:
the best achievable), shift_2px (train shifted down 2 px: a near miss), shuffled_components
(right parts, wrong wholes), mean_image (collapse); real test images against shuffled
conditions; for inpainting the nearest train sample by the known pixels (every inpainting
figure, the condition error included).

Condition conventions. A dataset's width_px / height_px need not be the bounding box that
``measure_dimensions`` measures (e.g. the full width of a mirrored half-section). For each
condition column the affine map from the best-fitting candidate measurement
(``metrics.fit_condition_convention``) is fitted on the train split; the real test split's
error under that map (reference ``real_test_own_conditions``) is the floor beside the
model's error, and a column no candidate fits within 1 px gets a warning in the notes.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..utils.io import load_samples, write_json
from ..evaluation import metrics as M
from ..evaluation.inception import SKIP_MESSAGE
from .config import CHOICES

MODES = CHOICES["sampling_mode"]
MAX_REAL = 2000         # default cap on the real set and on each reference
MAX_PIXEL_SET = 2000    # pixel-space k-NN costs N^2 * C*H*W: subsample both sets to this
KID_SUBSETS = 20
KID_SUBSET_SIZE = 1000  # capped at half the smaller set, so the subsets differ and kid_std is their spread
K = 3                   # neighbours for precision/recall/density/coverage
MIN_REAL_PAIRS = 50     # fewer test pairs with conditions within 1 px: use the train split
PAIR_TOLERANCE_PX = 1.0
PICTURE_POOL = 16       # pictures: features are the images average-pooled to 16 x 16 per channel


# ---------------------------------------------------------------- inputs
def load_config_for(samples_dir, config=None):
    """The resolved config dict: ``config`` is a dict, a YAML path or a checkpoint ``.pt``;
    None takes the manifest's ``config``."""
    from ..utils.checkpoint import load_checkpoint
    from .config import auto_complete_config, load_config, validate_config

    if isinstance(config, dict):
        cfg = config
    elif config is None:
        manifest = Path(samples_dir) / "manifest.json"
        if not manifest.is_file():
            raise FileNotFoundError(f"{manifest} not found; pass --config (a YAML config or a checkpoint .pt)")
        cfg = json.loads(manifest.read_text()).get("config")
        if not isinstance(cfg, dict):
            raise ValueError(f"{manifest} has no 'config'; pass --config (a YAML config or a checkpoint .pt)")
    elif str(config).endswith(".pt"):
        cfg = load_checkpoint(config)
        if not isinstance(cfg, dict) or "config" not in cfg:
            raise ValueError(f"{config}: checkpoint has no 'config'; pass the YAML config instead")
        cfg = cfg["config"]
    else:
        cfg = load_config(config)
    return validate_config(auto_complete_config(cfg, verbose=False))


def _samples_folder(samples_path):
    folder = Path(samples_path)
    return folder.parent if folder.suffix == ".npz" else folder


def check_arrays(arrays, mode, names, image_hw, condition_columns):
    """Raise ValueError naming what is wrong with a samples.npz for this mode."""
    if mode not in MODES:
        raise ValueError(f"manifest mode {mode!r} is not one of {MODES}")
    images = arrays.get("images")
    expected = f"(N, {len(names)}, {image_hw[0]}, {image_hw[1]})"
    if images is None:
        raise ValueError("samples.npz has no 'images' array; write samples with save_component_images")
    if images.ndim != 4 or images.shape[1:] != (len(names), *image_hw):
        raise ValueError(f"samples.npz 'images' has shape {images.shape} but the config expects {expected} "
                         f"(components {names}); pass the --config the samples were made with")
    if len(images) <= K:
        raise ValueError(f"{len(images)} samples are too few: k-NN metrics need more than {K}; sample more")
    for key in ("images", "images_raw"):
        if key in arrays:
            a = arrays[key]
            if a.shape != images.shape:
                raise ValueError(f"samples.npz '{key}' has shape {a.shape}, expected {images.shape}")
            if not np.isfinite(a).all():
                raise ValueError(f"samples.npz '{key}' holds NaN or inf values; the sampler diverged, "
                                 f"re-sample from another checkpoint")
    if mode == "inpainting":
        for key in ("ground_truth", "mask"):
            if key not in arrays or arrays[key].shape != images.shape:
                got = arrays[key].shape if key in arrays else "missing"
                raise ValueError(f"inpainting samples need '{key}' of shape {images.shape} in samples.npz "
                                 f"(got {got}); re-run sample.py --mode inpainting")
    if mode in ("conditional", "inpainting") and "conditions" in arrays:
        c = arrays["conditions"]
        if c.shape != (len(images), len(condition_columns)):
            raise ValueError(f"samples.npz 'conditions' has shape {c.shape}, expected "
                             f"({len(images)}, {len(condition_columns)}) for columns {condition_columns}")


@dataclass
class Evaluation:
    """A samples folder (or a bench's samples in memory) with what measuring it needs.

    arrays: as in samples.npz ('images' (N, C, H, W) clipped to [0, 1], ...); train / test:
    the splits' images (n, C, H, W) in [0, 1] and raw conditions (n, k); rng: the one seeded
    stream every random choice draws from, step after step (so the order of the steps is part
    of the result); notes: what the steps say, in order."""
    folder: Path | None
    arrays: dict
    manifest: dict
    cfg: dict
    train: np.ndarray
    test: np.ndarray
    train_conditions: np.ndarray
    test_conditions: np.ndarray
    seed: int = 0
    max_real: int = MAX_REAL
    rng: np.random.Generator = field(init=False)
    notes: list = field(default_factory=list)

    def __post_init__(self):
        self.rng = np.random.default_rng(self.seed)

    mode = property(lambda self: self.manifest.get("mode", "unconditional"))
    names = property(lambda self: list(self.cfg["data"]["component_dirs"]))
    columns = property(lambda self: list(self.cfg["data"].get("condition_columns") or []))
    per_condition = property(lambda self: int(self.manifest.get("per_condition") or 1))


def load_evaluation(samples_path, cfg=None, max_real=MAX_REAL, seed=0):
    """Step 1: a samples folder (or its samples.npz), its manifest, the resolved config (see
    ``load_config_for``) and the train / test splits -> Evaluation."""
    folder = _samples_folder(samples_path)
    arrays = load_samples(folder)
    manifest_path = folder / "manifest.json"
    manifest = json.loads(manifest_path.read_text()) if manifest_path.is_file() else {}
    return evaluation_of(arrays, manifest, load_config_for(folder, cfg), max_real=max_real, seed=seed, folder=folder)


def evaluation_of(arrays, manifest, cfg, sets=None, max_real=MAX_REAL, seed=0, folder=None):
    """Step 1 for samples in memory: arrays as in samples.npz (clipped to [0, 1] in place, with
    a note), manifest at least {"mode": ...}, cfg resolved, sets: ``build_datasets(cfg)``'s
    dict with "train" and "test" (None: built here) -> Evaluation. ValueError for arrays that
    do not fit the config or the mode, and for sets too small for the k-NN metrics."""
    from ..datasets.factory import build_datasets

    data = cfg["data"]
    check_arrays(arrays, manifest.get("mode", "unconditional"), list(data["component_dirs"]),
                 tuple(cfg["model"]["image_size"]), list(data.get("condition_columns") or []))
    if max_real < K + 1:
        raise ValueError(f"max_real={max_real} is too small: k-NN metrics need more than {K} real samples")
    sets = sets or build_datasets(cfg, ("train", "test"), verbose=False)
    train, test = sets["train"], sets["test"]
    if len(test) <= K:
        raise ValueError(f"the test split has {len(test)} samples; k-NN metrics need more than {K}")
    ev = Evaluation(folder, arrays, manifest, cfg, train.images_float.numpy(), test.images_float.numpy(),
                    train.raw_conditions.numpy(), test.raw_conditions.numpy(), seed, max_real)
    for key in ("images", "images_raw"):
        if key in arrays and (arrays[key].min() < 0 or arrays[key].max() > 1):
            ev.notes.append(f"'{key}' range [{arrays[key].min():.3g}, {arrays[key].max():.3g}] clipped to [0, 1]")
            arrays[key] = np.clip(arrays[key], 0, 1)
    return ev


# ---------------------------------------------------------------- the real set
class RealSet:
    """What every comparison needs from the real (test) images, computed once.

    images: (N, C, H, W) in [0, 1]. inception: optional callable masks -> (N, 2048) features.
    index: (N,) rows of the split these images are (None: the whole split, in order)."""

    def __init__(self, images, rng, max_pixel=MAX_PIXEL_SET, inception=None, index=None):
        self.images = images
        self.index = index
        geometric = M.geometric_features(images)
        self.mean, self.std = M.standardization(geometric)
        self.geometric = (geometric - self.mean) / self.std
        self.geometric_radii = M.knn_radii(self.geometric, K)
        self.max_pixel = max_pixel
        self.pixels = M.pixel_features(_subset(images, max_pixel, rng))
        self.pixel_radii = M.knn_radii(self.pixels, K)
        self.pieces = np.median(M.count_pieces(images), axis=0)    # typical piece count per component
        self.diversity = M.mean_pairwise_l1(images)
        self.inception, self.inception_features = None, None
        if inception:
            self.add_inception(inception)

    def add_inception(self, inception):
        """Compare in Inception feature space too (inception: masks -> (N, 2048) features)."""
        self.inception = inception
        self.inception_features = inception(self.images)


def kid_subset_size(n_real, n_fake):
    """The KID subset size for sets of n_real and n_fake: KID_SUBSET_SIZE, at most half of the
    smaller set (a subset as large as the set is the set itself every time: no spread)."""
    return max(2, min(KID_SUBSET_SIZE, n_real // 2, n_fake // 2))


def _subset(images, n, rng):
    return images if len(images) <= n else images[np.sort(rng.choice(len(images), n, replace=False))]


def real_reference(test, n_samples, rng, max_real=MAX_REAL):
    """The real set n_samples generated samples are compared with: a seeded random subset of the
    test images (N, C, H, W) in [0, 1], as many as the samples (more than K, at most max_real)
    -> RealSet. Equal n, because a larger real set shrinks the real k-NN radii, which deflates
    coverage and inflates recall."""
    n_real = min(max_real, len(test), max(n_samples, K + 1))
    index = np.sort(rng.choice(len(test), n_real, replace=False))
    return RealSet(test[index], rng, index=index)


def equal_n(rows, n_real, rng, n_train=None):
    """Rows (n,) of the samples subsampled (seeded) to the smallest set, so that the samples,
    the real set and each reference (drawn from the n_train train images; None: no references)
    have the same n -> (rows, n, note or None). ValueError when n is too small for k-NN."""
    n = min(len(rows), n_real) if n_train is None else min(len(rows), n_real, n_train)
    if n <= K:
        raise ValueError(f"{n} samples per set are too few: k-NN metrics need more than {K}")
    if len(rows) <= n:
        return rows, n, None
    return np.sort(rng.choice(rows, n, replace=False)), n, (
        f"distribution metrics use {n} of the {len(rows)} samples (random subset), the size of "
        f"the smallest set, so that the samples and every reference have the same n")


def comparison_sets(ev, references=True, inception_weights=None, inception=None):
    """Step 2: which samples feed the distribution metrics and what they are compared with ->
    (rows (n,) into the samples, RealSet, n): one sample per condition, as many as the real set
    (and as each reference, if ``references``). inception: a feature callable, None (loaded
    from ``inception_weights`` or the config's, else skipped with a note) or False (not
    measured, no note: benches that report no Inception figure)."""
    rows, note = one_per_condition(condition_index_of(ev.arrays, ev.mode), ev.per_condition,
                                   len(ev.arrays["images"]))
    real = real_reference(ev.test, len(rows), ev.rng, ev.max_real)
    notes = [note]
    if len(real.images) < min(ev.max_real, len(ev.test)):
        notes.append(f"the real reference is {len(real.images)} of the {len(ev.test)} test images (random "
                     f"subset, seed {ev.seed}): as many as the samples")
    if inception is not False:
        inception = inception or _inception_from(ev.cfg, inception_weights)
        if inception:
            real.add_inception(inception)
        else:
            notes.append(SKIP_MESSAGE)
    rows, n, note = equal_n(rows, len(real.images), ev.rng, len(ev.train) if references else None)
    ev.notes += [text for text in notes + [note] if text]
    return rows, real, n


def distribution_metrics(fake, real, rng, names=None):
    """The mode-independent suite: fake (N, C, H, W) in [0, 1] vs a RealSet -> flat dict
    (per-component piece-count errors go under the key ``_pieces`` when ``names`` given)."""
    g_fake = (M.geometric_features(fake) - real.mean) / real.std
    kid_size = kid_subset_size(len(real.geometric), len(g_fake))
    kid_mean, kid_std = M.kid(real.geometric, g_fake, num_subsets=KID_SUBSETS, subset_size=kid_size)
    geo = M.manifold_metrics(real.geometric, g_fake, K, real.geometric_radii)
    pix = M.manifold_metrics(real.pixels, M.pixel_features(_subset(fake, real.max_pixel, rng)), K, real.pixel_radii)
    conn = M.connectivity(fake, real.pieces)
    out = {"n": int(len(fake)), "geometric_fd": M.frechet_distance_features(real.geometric, g_fake),
           "geometric_kid": kid_mean, "geometric_kid_std": kid_std, **geo,
           **{f"pixel_{k}": v for k, v in pix.items()},
           "piece_count_error": float(conn["piece_count_error"].mean()),
           "same_pieces_fraction": conn["same_pieces_fraction"],
           "diversity_ratio": M.diversity_ratio(fake, real_diversity=real.diversity),
           "binarization": M.binarization(fake)}
    if real.inception is not None:
        f_fake = real.inception(fake)
        out["inception_fid"] = M.frechet_distance_features(real.inception_features, f_fake)
        out["inception_kid"] = M.kid(real.inception_features, f_fake, num_subsets=KID_SUBSETS,
                                     subset_size=kid_subset_size(len(real.inception_features), len(f_fake)))[0]
    if names is not None:
        out["_pieces"] = dict(zip(names, map(float, conn["piece_count_error"])))
    return out


def sanity_sets(train, n, rng):
    """Trivial "generators" built from the train split, each of n samples (N, C, H, W)."""
    base = train[rng.choice(len(train), min(n, len(train)), replace=False)]
    shifted = np.zeros_like(base)
    shifted[:, :, 2:] = base[:, :, :-2]                          # 2 pixels down
    shuffled = np.stack([base[rng.permutation(len(base)), c] for c in range(base.shape[1])], axis=1)
    mean = np.repeat(train.mean(0, keepdims=True), len(base), axis=0)
    return {"real_train": base, "shift_2px": shifted, "shuffled_components": shuffled, "mean_image": mean}


# ---------------------------------------------------------------- mode-specific
def fit_conventions(train_images, train_conditions, columns):
    """How each condition column relates to the image, fitted on the train split ->
    ({column: fit}, notes): a note for every column no candidate measurement fits within
    ``metrics.CONVENTION_TOLERANCE_PX``."""
    fits = M.fit_condition_conventions(train_images, train_conditions, columns)
    notes = []
    for col, fit in fits.items():
        if not fit["ok"]:
            notes.append(f"WARNING: no measurement convention fits condition column '{col}': the best, "
                         f"{fit['slope']:.3g} * {fit['measure']} + {fit['intercept']:.3g}, is off by "
                         f"{fit['residual']:.2f} px on average on the train split (> "
                         f"{M.CONVENTION_TOLERANCE_PX:g} px); its condition error does not measure how well "
                         f"the model follows the condition")
    return fits, notes


def condition_metrics(images, requested, condition_columns, conventions=None):
    """MAE in px per condition column (measured through ``conventions``, default the bounding
    box) and their mean over the columns whose convention fits (all if none does) -> dict."""
    cols = list(condition_columns)
    err = M.condition_error(images, np.asarray(requested), cols, conventions)
    out = {f"condition_mae_{c.replace('_px', '')}": float(e) for c, e in zip(cols, err)}
    good = [e for c, e in zip(cols, err) if conventions is None or conventions[c].get("ok", True)]
    out["condition_mae"] = float(np.mean(good if good else err))
    return out


def condition_targets(ev):
    """Step 3: the conventions fitted on the train split ({column: fit}; None without condition
    columns) and the raw conditions (N, k) the samples are measured against (None: no condition
    error): the requested ones; random test conditions for unconditional samples (the level
    of ignoring the condition) and conditional ones that did not store theirs; for
    inpainting those the completions were made for -> (requested, conventions)."""
    if not ev.columns:
        return None, None
    conventions, notes = fit_conventions(ev.train, ev.train_conditions, ev.columns)
    ev.notes += notes
    if ev.mode == "inpainting":
        requested, note = inpainting_conditions(ev.arrays, ev.manifest, ev.test_conditions)
        ev.notes += [note] if note else []
        return requested, conventions
    if ev.mode == "conditional" and "conditions" in ev.arrays:
        return ev.arrays["conditions"], conventions
    if ev.mode not in ("conditional", "unconditional"):
        return None, conventions
    ev.notes.append("conditional samples without 'conditions' in samples.npz: condition error is measured "
                    "against random test conditions" if ev.mode == "conditional" else
                    "unconditional: condition error is against random test conditions (the level of "
                    "ignoring the condition)")
    return ev.test_conditions[ev.rng.choice(len(ev.test), len(ev.arrays["images"]))], conventions


def condition_index_of(arrays, mode):
    """(N,) index of the condition each sample was drawn for (``condition_index``, else the
    ``test_indices`` of conditional samples), or None."""
    if "condition_index" in arrays:
        return arrays["condition_index"].astype(np.int64).reshape(-1)
    if mode == "conditional" and "test_indices" in arrays:
        return arrays["test_indices"].astype(np.int64).reshape(-1)
    return None


def one_per_condition(cond_index, per_condition, n_samples):
    """Rows of the samples that feed the distribution metrics: all (no repeats), or the first
    draw of each condition of a ``per_condition`` folder -> (rows, note or None).
    ValueError for a folder whose conditions repeat without ``per_condition``."""
    if cond_index is None:
        return np.arange(n_samples), None
    distinct, first = np.unique(cond_index, return_index=True)
    if len(distinct) == n_samples:
        return np.arange(n_samples), None
    if per_condition > 1:
        return np.sort(first), (f"distribution metrics use the first of the {per_condition} draws of each of the "
                                f"{len(distinct)} conditions (one per condition); all draws feed "
                                f"within_condition_diversity")
    raise ValueError(
        f"the {n_samples} samples were drawn for only {len(distinct)} distinct conditions "
        f"({n_samples / len(distinct):.1f} per condition). The distribution metrics (FD, KID, "
        f"precision/recall, density/coverage) need one sample per condition: repeated conditions shrink "
        f"the k-NN radii of the generated set (recall ~0 whatever the model does). Re-sample with "
        f"--num_samples <= {len(distinct)} (one per test condition), or with --per_condition K to also "
        f"measure the within-condition diversity")


def within_condition_metrics(images, cond_index, real_sets, tol=PAIR_TOLERANCE_PX):
    """Within-condition diversity of K draws per condition against real pairs with conditions
    within ``tol`` px. real_sets: [(name, images, raw conditions)] in order of preference (test,
    then train): the first with MIN_REAL_PAIRS pairs is used (else the one with most pairs).
    -> (metrics dict, details dict)."""
    groups, _ = M.group_by_condition(images, cond_index)
    within = M.within_condition_diversity(groups)
    best = None
    for name, imgs, cond in real_sets:
        value, pairs = M.real_pair_diversity(imgs, cond, tol)
        if best is None or pairs > best[2]:
            best = (name, value, pairs)
        if pairs >= MIN_REAL_PAIRS:
            best = (name, value, pairs)
            break
    name, real_value, pairs = best
    ratio = within / real_value if pairs and real_value > 0 else float("nan")
    metrics = {"within_condition_diversity": within, "within_condition_diversity_real": real_value,
               "within_condition_diversity_ratio": ratio}
    details = {"conditions": int(groups.shape[0]), "draws_per_condition": int(groups.shape[1]),
               "real_pairs": pairs, "real_pairs_split": name, "real_pairs_tolerance_px": tol}
    return metrics, details


def inpainting_metrics(images, truth, mask, names):
    """Figures of completions ``images`` (N, C, H, W) of ``truth`` with ``mask`` (1 = known
    pixel), on the generated components (those not entirely known) per component and overall:

    - IoU/Dice/centre-of-mass distance against the ground truth;
    - consistency with the kept components: ``overlap_kept_*``, the share of a generated
      component's foreground drawn on the kept components' foreground
      (``metrics.overlap_with_kept``; empty components left out), and ``overlap_kept_truth``,
      the same for the ground truth (real designs overlap a little: the level to match);
    - connectivity: ``pieces_*`` the mean piece count of each generated component (the
      ground truth's in ``pieces_truth_*``), ``same_pieces_generated`` the share of generated
      components with the piece count of their ground truth, ``piece_error_generated`` the
      mean |difference|;
    - the largest change of a known pixel (0 when preserved exactly)."""
    n, c = images.shape[:2]
    free = mask.reshape(n, c, -1).min(2) < 0.5                     # (N, C): component to generate
    known = mask > 0.5
    out = {"preserved_max_abs_diff": float(np.abs(images - truth)[known].max()) if known.any() else 0.0}
    iou, dice = M.iou_dice(images, truth)
    com = M.center_of_mass_distance(images, truth)
    overlap, overlap_truth = M.overlap_with_kept(images, ~free), M.overlap_with_kept(truth, ~free)
    truth_pieces = M.count_pieces(truth)
    conn = M.connectivity(images, truth_pieces)
    nan_mean = lambda v: float(np.nanmean(v)) if np.isfinite(v).any() else float("nan")
    for j, name in enumerate(names):
        if free[:, j].any():
            sel = free[:, j]
            out[f"iou_{name}"] = float(iou[sel, j].mean())
            out[f"dice_{name}"] = float(dice[sel, j].mean())
            out[f"com_dist_{name}"] = nan_mean(com[sel, j])        # NaN where a component is empty
            out[f"overlap_kept_{name}"] = nan_mean(overlap[sel, j])
            out[f"pieces_{name}"] = float(conn["pieces"][sel, j].mean())
            out[f"pieces_truth_{name}"] = float(truth_pieces[sel, j].mean())
    # Over every generated component (NaN when nothing was generated).
    out["iou_generated"] = nan_mean(iou[free])
    out["dice_generated"] = nan_mean(dice[free])
    out["overlap_kept_generated"] = nan_mean(overlap[free])
    out["overlap_kept_truth"] = nan_mean(overlap_truth[free])
    out["same_pieces_generated"] = nan_mean(conn["same_pieces"][free])
    out["piece_error_generated"] = nan_mean(np.abs(conn["pieces"] - truth_pieces)[free])
    return out


def inpainting_conditions(arrays, manifest, test_conditions):
    """The raw conditions (N, k) the completions were made for -> (conditions or None, note or None).

    From ``conditions`` in samples.npz, else the test split's conditions at ``test_indices``
    (folders written before inpainting stored them); None with a note when the sampler was
    run without conditions (manifest ``used_conditions`` false, ``--no_cond``) or neither
    array exists."""
    if manifest.get("used_conditions") is False:
        return None, "inpainting ran without conditions (--no_cond): no condition error for the completions"
    if "conditions" in arrays:
        return arrays["conditions"], None
    if "test_indices" in arrays:
        idx = arrays["test_indices"].astype(np.int64).reshape(-1)
        if len(idx) != len(arrays["images"]) or idx.min() < 0 or idx.max() >= len(test_conditions):
            raise ValueError(f"samples.npz 'test_indices' ({len(idx)} values in [{idx.min()}, {idx.max()}]) do not "
                             f"index the {len(test_conditions)}-sample test split once per image; evaluate with the "
                             f"config the samples were made with")
        return test_conditions[idx], None
    return None, ("inpainting samples without 'conditions' or 'test_indices' in samples.npz: no condition "
                  "error for the completions; re-run sample.py --mode inpainting")


def nearest_train_inpainting(truth, mask, train, chunk=512, k=1):
    """Baseline that learns nothing: for each sample, the train sample closest on its known
    pixels, pasted into the unknown ones. Samples sharing a mask are matched together.
    ``k > 1``: the pixelwise majority (mean > 0.5) of the k closest instead, a point estimate
    that averages over what the known pixels leave undetermined (binary images)."""
    n = len(truth)
    keys = np.packbits(mask.reshape(n, -1) > 0.5, axis=1)
    patterns, inverse = np.unique(keys, axis=0, return_inverse=True)
    out = truth.copy()
    for p in range(len(patterns)):
        rows = np.flatnonzero(inverse.reshape(-1) == p)
        known = mask[rows[0]] > 0.5
        if known.any():
            dist = M.pairwise_distances(truth[rows][:, known], train[:, known], chunk)
            nearest_k = np.argsort(dist, axis=1, kind="stable")[:, :k]
        else:                                                       # nothing to match on: any train samples
            nearest_k = (rows[:, None] + np.arange(k)) % len(train)
        fill = train[nearest_k[:, 0]] if k == 1 else (train[nearest_k].mean(1) > 0.5).astype(truth.dtype)
        out[rows] = truth[rows] * mask[rows] + fill * (1 - mask[rows])
    return out


def sample_metrics(ev, images, rows, real, requested, conventions):
    """Step 4: every metric that applies to ``images`` (N, C, H, W) in [0, 1] in ev's mode: the
    distribution metrics on ``images[rows]`` (one per condition, n samples; per-component
    piece-count errors under ``_pieces``), the per-sample ones (condition error, inpainting
    figures) on all -> flat dict."""
    out = distribution_metrics(images[rows], real, ev.rng, ev.names)
    if ev.mode == "inpainting":
        out.update(inpainting_scores(images, ev.arrays, ev.names, ev.columns, requested, conventions))
    elif requested is not None:
        out.update(condition_metrics(images, requested, ev.columns, conventions))
    return out


def inpainting_scores(images, arrays, names, columns, requested, conventions):
    """``inpainting_metrics`` of completions ``images`` and, when the completions were made for
    ``requested`` conditions, their condition error (as for conditional samples) beside the
    ground truth's under the same conventions (``condition_mae_truth``: the floor on these
    samples)."""
    truth = arrays["ground_truth"]
    out = inpainting_metrics(images, truth, arrays["mask"], names)
    if requested is not None:
        out.update(condition_metrics(images, requested, columns, conventions))
        out["condition_mae_truth"] = condition_metrics(truth, requested, columns, conventions)["condition_mae"]
    return out


# ---------------------------------------------------------------- pictures (data.type image_folder)
def is_pictures(cfg):
    """True for ordinary pictures (``data.type: image_folder``: RGB or grey video frames,
    photographs), where the mask metrics (geometric features, piece counts, component IoU,
    condition conventions) mean nothing."""
    return cfg["data"].get("type", "multicomponent") == "image_folder"


class PictureSet:
    """What comparing pictures with the real (test) pictures needs, computed once.

    images: (N, C, H, W) in [0, 1]; features: ``pooled_pixel_features`` (PICTURE_POOL)
    standardized with their own mean and std (as the masks' geometric features: KID's cubic
    kernel needs unit-scale features, else it reads only the mean picture and rates a collapse
    to it better than real pictures), and their k-NN radii; diversity: the mean pairwise L1."""

    def __init__(self, images, inception=None):
        self.images = images
        pooled = M.pooled_pixel_features(images, PICTURE_POOL)
        self.mean, self.std = M.standardization(pooled)
        self.features = (pooled - self.mean) / self.std
        self.radii = M.knn_radii(self.features, K)
        self.diversity = M.mean_pairwise_l1(images)
        self.inception = inception
        self.inception_features = inception(images) if inception else None


def picture_scores(fake, real):
    """Distribution figures of pictures ``fake`` (N, C, H, W) in [0, 1] against a PictureSet, in
    the space of the pictures average-pooled to PICTURE_POOL x PICTURE_POOL per channel and
    standardized by the real set: FD, KID, precision/recall/density/coverage (each ``pixel_``),
    the diversity ratio, and the Inception FID/KID when the set has an Inception callable ->
    flat dict."""
    f = (M.pooled_pixel_features(fake, PICTURE_POOL) - real.mean) / real.std
    kid_mean, kid_std = M.kid(real.features, f, num_subsets=KID_SUBSETS,
                              subset_size=kid_subset_size(len(real.features), len(f)))
    manifold = M.manifold_metrics(real.features, f, K, real.radii)
    out = {"n": int(len(fake)), "pixel_fd": M.frechet_distance_features(real.features, f),
           "pixel_kid": kid_mean, "pixel_kid_std": kid_std, **{f"pixel_{k}": v for k, v in manifold.items()},
           "diversity_ratio": M.diversity_ratio(fake, real_diversity=real.diversity)}
    if real.inception is not None:
        f_fake = real.inception(fake)
        out["inception_fid"] = M.frechet_distance_features(real.inception_features, f_fake)
        out["inception_kid"] = M.kid(real.inception_features, f_fake, num_subsets=KID_SUBSETS,
                                     subset_size=kid_subset_size(len(real.inception_features), len(f_fake)))[0]
    return out


def nearest_train(images, train_features):
    """(N,) distance of each picture to its nearest training picture, in the pooled space as the
    root-mean-square difference per pooled value (0 = a copy; pictures in [0, 1])."""
    f = M.pooled_pixel_features(images, PICTURE_POOL)
    return M.nearest_distances(f, train_features) / np.sqrt(f.shape[1])


def memorisation(distances, test_distances):
    """The memorisation figures of pictures at ``distances`` from their nearest training picture,
    beside held-out test pictures at ``test_distances`` (what a picture that was not copied
    scores) -> dict: ``nearest_train_median``, ``nearest_train_ratio`` (median / the test
    pictures' median: about 1 for pictures as new as held-out ones, far below 1 for copies),
    ``near_copy_fraction`` (share closer to a training picture than the nearest 5% of test
    pictures are: 0.05 for pictures like the test ones, 1 for copies)."""
    test_median = float(np.median(test_distances))
    median = float(np.median(distances))
    return {"nearest_train_median": median,
            "nearest_train_ratio": median / test_median if test_median > 0 else float("nan"),
            "near_copy_fraction": float(np.mean(distances < np.quantile(test_distances, 0.05)))}


def picture_inpainting(images, arrays):
    """Completions of pictures: the largest change of a known value (0 when kept exactly) and the
    mean absolute error of the generated values against the ground truth."""
    truth, known = arrays["ground_truth"], arrays["mask"] > 0.5
    diff = np.abs(images - truth)
    return {"preserved_max_abs_diff": float(diff[known].max()) if known.any() else 0.0,
            "mae_generated": float(diff[~known].mean()) if (~known).any() else float("nan")}


def evaluate_pictures(ev, references=True, inception_weights=None, inception=None):
    """Metrics of picture samples (``data.type: image_folder``) -> result dict (as
    ``evaluate_samples``'s, with ``data_type: image_folder``). One sample per condition and equal
    n for the samples, the real test pictures and each reference (as for masks); figures in the
    pooled pixel space (``picture_scores``); the memorisation check against the training
    pictures (``memorisation``), with the held-out test pictures as the reference ``real_test``;
    for inpainting ``picture_inpainting``; within-condition diversity for ``--per_condition``
    folders. The mask metrics are left out."""
    images = ev.arrays["images"]
    rows, note = one_per_condition(condition_index_of(ev.arrays, ev.mode), ev.per_condition, len(images))
    n_real = min(ev.max_real, len(ev.test), max(len(rows), K + 1))
    index = np.sort(ev.rng.choice(len(ev.test), n_real, replace=False))
    if inception is not False:
        inception = inception or _inception_from(ev.cfg, inception_weights)
        if not inception:
            ev.notes.append(SKIP_MESSAGE)
    real = PictureSet(ev.test[index], inception or None)
    rows, n, subset_note = equal_n(rows, n_real, ev.rng, len(ev.train) if references else None)
    ev.notes += [text for text in (note, subset_note) if text]
    ev.notes.append(f"pictures (data.type image_folder): FD, KID, precision/recall/density/coverage on the "
                    f"pictures average-pooled to {PICTURE_POOL} x {PICTURE_POOL} per channel (standardized by the "
                    f"real set); nearest_train_* in root-mean-square difference per pooled value; no mask metrics")
    train_features = M.pooled_pixel_features(ev.train, PICTURE_POOL)
    test_distances = nearest_train(ev.test, train_features)

    def scores(pictures, rows=slice(None)):
        """picture_scores of pictures[rows] (n of them), memorisation of every picture -> (dict,
        the distances to the nearest training pictures)."""
        distances = nearest_train(pictures, train_features)
        return {**picture_scores(pictures[rows], real), **memorisation(distances, test_distances)}, distances

    metrics, distances = scores(images, rows)
    if ev.mode == "inpainting":
        metrics.update(picture_inpainting(images, ev.arrays))
    quantiles = (0.05, 0.5, 0.95)
    details = {"features": f"average-pooled to {PICTURE_POOL} x {PICTURE_POOL} per channel, flattened, "
                           f"standardized by the real set's mean and std",
               "nearest_train": {"unit": "root-mean-square difference per pooled value", "quantiles": quantiles,
                                 "samples": np.quantile(distances, quantiles).tolist(),
                                 "real_test": np.quantile(test_distances, quantiles).tolist()}}
    within = within_condition_step(ev)
    if within:
        metrics.update(within[0])
        details["within_condition"] = within[1]
    result = {**run_info(ev, real, n), "data_type": "image_folder", "metrics": metrics}
    if "images_raw" in ev.arrays:
        result["raw"] = scores(ev.arrays["images_raw"], rows)[0]
    refs = {}
    if references and len(ev.train) > K:
        refs = {name: scores(fake)[0] for name, fake in sanity_sets(ev.train, n, ev.rng).items()}
    elif references:
        ev.notes.append(f"references skipped: the train split has {len(ev.train)} samples (k-NN needs more than {K})")
    refs["real_test"] = memorisation(test_distances, test_distances)     # new pictures: what not copying reads
    result.update(references=refs, details=details, notes=ev.notes)
    return result


# ---------------------------------------------------------------- the entry point
def make_inception(weights, names, device=None):
    """Callable masks (N, C, H, W) -> (N, 2048) Inception pool features (model loaded once)."""
    import torch

    from ..evaluation.inception import inception_features, load_fid_inception

    device = device or ("cuda" if torch.cuda.is_available() else "cpu")
    model = load_fid_inception(weights, device)
    return lambda images: inception_features(images, names, model, device=device)


def _inception_from(cfg, weights=None):
    """The Inception feature callable from ``weights`` or the config's evaluation.inception_weights
    (None when neither is set)."""
    weights = weights or cfg.get("evaluation", {}).get("inception_weights")
    return make_inception(weights, list(cfg["data"]["component_dirs"])) if weights else None


def within_condition_step(ev):
    """Step 5, for folders sampled with ``--per_condition`` K >= 2 and condition columns: the
    within-condition diversity -> (metrics, details) or None."""
    cond_index = condition_index_of(ev.arrays, ev.mode)
    if ev.per_condition <= 1 or cond_index is None or not ev.columns:
        return None
    return within_condition_metrics(ev.arrays["images"], cond_index, [
        ("test", ev.test, ev.test_conditions), ("train", ev.train, ev.train_conditions)])


def reference_metrics(ev, real, n, requested, conventions):
    """Step 6: the sanity references, each scored like the samples -> {name: metrics}: trivial
    generators of n train samples, the real test images at shuffled and at their own
    conditions, for inpainting the nearest train sample by the known pixels."""
    if len(ev.train) <= K:
        ev.notes.append(f"references skipped: the train split has {len(ev.train)} samples (k-NN needs more than {K})")
        return {}
    refs = {name: distribution_metrics(images, real, ev.rng) for name, images in sanity_sets(ev.train, n, ev.rng).items()}
    if ev.columns:
        # shuffled: what ignoring the condition scores; own: the floor (the real test split
        # measured through the convention fitted on the train split)
        shuffled = ev.test_conditions[ev.rng.permutation(len(ev.test))]
        refs["real_test_shuffled_conditions"] = condition_metrics(ev.test, shuffled, ev.columns, conventions)
        refs["real_test_own_conditions"] = condition_metrics(ev.test, ev.test_conditions, ev.columns, conventions)
    if ev.mode == "inpainting":
        baseline = nearest_train_inpainting(ev.arrays["ground_truth"], ev.arrays["mask"], ev.train)
        refs["nearest_train"] = inpainting_scores(baseline, ev.arrays, ev.names, ev.columns, requested, conventions)
    return refs


def run_info(ev, real, n):
    """The result's header: the folder, mode, model, set sizes, KID subsets and sampling options."""
    m = ev.manifest
    return {"samples": str(ev.folder), "mode": ev.mode, "model": m.get("model"),
            "num_samples": int(len(ev.arrays["images"])), "num_real": int(len(real.images)),
            "per_condition": ev.per_condition,
            "kid": {"subset_size": kid_subset_size(len(real.images), n), "subsets": KID_SUBSETS},
            "options": m.get("options", {}), "postprocess": m.get("postprocess"),
            "seconds_per_image": m.get("seconds_per_image")}


def evaluate_samples(samples_path, cfg=None, max_real=MAX_REAL, references=True, inception_weights=None,
                     seed=0, write=True, inception=None):
    """Metrics for one samples folder (or its samples.npz) -> result dict, also written as
    ``metrics.json`` next to the samples (unless ``write=False``).

    cfg: config dict, YAML path or checkpoint .pt (None: the manifest's). max_real: at most
    this many test samples form the real set, and each reference has at most this many.
    inception_weights: pytorch-fid weights file for the classic FID (default: the config's
    evaluation.inception_weights; skipped with a note when neither is set). inception: a
    ready feature callable instead (tests). Result keys: metrics, references ({name: metrics}),
    raw (the pre-postprocess figures, if images_raw exists), details, notes, and run info.
    Pictures (``data.type: image_folder``) are scored by ``evaluate_pictures`` instead."""
    ev = load_evaluation(samples_path, cfg, max_real, seed)
    if is_pictures(ev.cfg):            # pictures: their own figures, no mask metrics
        result = evaluate_pictures(ev, references, inception_weights, inception)
        if write:
            write_json(result, ev.folder / "metrics.json")
        return result
    rows, real, n = comparison_sets(ev, references, inception_weights, inception)
    requested, conventions = condition_targets(ev)
    scores = sample_metrics(ev, ev.arrays["images"], rows, real, requested, conventions)
    details = {"piece_count_error": scores.pop("_pieces")}
    if conventions is not None:
        details["condition_conventions"] = conventions
    within = within_condition_step(ev)
    if within:
        scores.update(within[0])
        details["within_condition"] = within[1]
    result = {**run_info(ev, real, n), "metrics": scores}
    if "images_raw" in ev.arrays:      # postprocessed run: the raw figures too, so the gain is visible
        result["raw"] = sample_metrics(ev, ev.arrays["images_raw"], rows, real, requested, conventions)
        details["raw_piece_count_error"] = result["raw"].pop("_pieces")
    refs = reference_metrics(ev, real, n, requested, conventions) if references else {}
    result.update(references=refs, details=details, notes=ev.notes)
    if write:
        write_json(result, ev.folder / "metrics.json")
    return result


# ---------------------------------------------------------------- tables
def _fmt(v):
    if v is None or (isinstance(v, float) and np.isnan(v)):
        return "-"
    if isinstance(v, bool) or not isinstance(v, (float, int)):
        return str(v)
    return str(v) if isinstance(v, int) else f"{v:.4g}"


def _table(rows):
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in rows)


# The figures a reader looks for first, per mode (the rest: metrics.json, or --full).
SUMMARY = {
    "conditional": ("geometric_fd", "precision", "recall", "coverage", "condition_mae", "same_pieces_fraction"),
    "unconditional": ("geometric_fd", "precision", "recall", "coverage", "same_pieces_fraction"),
    "inpainting": ("iou_generated", "dice_generated", "same_pieces_generated", "overlap_kept_generated",
                   "condition_mae"),
    "interpolate": ("geometric_fd", "precision", "recall", "coverage"),
    "pictures": ("pixel_fd", "pixel_kid", "pixel_precision", "pixel_recall", "pixel_coverage",
                 "nearest_train_median", "nearest_train_ratio", "mae_generated"),   # any mode
}
SUMMARY_REFERENCES = ("real_train", "shift_2px", "nearest_train", "real_test_own_conditions")
PICTURE_REFERENCES = ("real_train", "shift_2px", "mean_image", "real_test")


def _summary_kind(result):
    """The SUMMARY entry of a result: "pictures" for picture samples, else its mode."""
    return "pictures" if result.get("data_type") == "image_folder" else result.get("mode")


def _table_keys(modes, columns, full):
    """The rows of a table: every metric of the columns (``full``), else the summary metrics of
    ``modes`` that some column has, in SUMMARY's order."""
    if full:
        return list(dict.fromkeys(k for _, values in columns for k in values))
    keys = list(dict.fromkeys(k for m in modes for k in SUMMARY.get(m, ())))
    return [k for k in keys if any(k in values for _, values in columns)]


def format_table(result, full=False):
    """Rows = metrics; columns = the samples, the raw figures of a cleaned run, then the sanity
    references ('-' where a metric does not apply). Notes follow the table. Not ``full``: the
    mode's summary metrics and the main references only (one screen)."""
    refs = result.get("references", {})
    cols = [("samples", result["metrics"])]
    if "raw" in result:
        cols.append(("raw (before clean)", result["raw"]))
    shown = PICTURE_REFERENCES if _summary_kind(result) == "pictures" else SUMMARY_REFERENCES
    cols += [(name, values) for name, values in refs.items() if full or name in shown]
    keys = _table_keys([_summary_kind(result)], cols, full)
    if not full:
        cols = [(name, values) for name, values in cols if name == "samples" or any(k in values for k in keys)]
    rows = [["metric"] + [c for c, _ in cols]]
    rows += [[k] + [_fmt(values.get(k)) for _, values in cols] for k in keys]
    if not full:
        rows.append(["seconds_per_image", _fmt(result.get("seconds_per_image"))] + [""] * (len(cols) - 1))
    head = (f"{result['mode']} samples of {result.get('model') or '?'}: {result['samples']} "
            f"(n={result['num_samples']}, real test n={result['num_real']})")
    notes = [f"note: {n}" for n in result.get("notes", [])]
    return "\n".join([head, _table(rows)] + notes)


def compare(paths, full=False):
    """Side-by-side table of existing metrics.json files (folders or files): one column per
    run, plus the real_train reference of the first run (the best achievable). Not ``full``:
    the summary metrics of the runs' modes only (one screen)."""
    results, names = [], []
    for p in paths:
        p = Path(p)
        p = p / "metrics.json" if p.is_dir() else p
        if not p.is_file():
            raise FileNotFoundError(f"{p} not found; run evaluate.py --samples on that folder first")
        try:
            results.append(json.loads(p.read_text()))
        except json.JSONDecodeError as err:
            raise ValueError(f"{p}: not a readable metrics.json ({err}); re-run evaluate.py on it") from None
        if "metrics" not in results[-1]:
            raise ValueError(f"{p}: no 'metrics' key; is it a metrics.json written by evaluate.py?")
        names.append(f"{results[-1].get('model') or '?'}:{Path(results[-1].get('samples', p.parent)).name}")
    models = {r.get("model") for r in results}
    if len(models) == 1 and len({n.split(":", 1)[1] for n in names}) == len(names):
        names = [n.split(":", 1)[1] for n in names]          # one model: the folder names say it all
    cols = [(n, r["metrics"]) for n, r in zip(names, results)]
    if "real_train" in results[0].get("references", {}):
        cols.append(("real_train" if not full else "real_train (ref of 1st)", results[0]["references"]["real_train"]))
    keys = _table_keys([_summary_kind(r) for r in results], cols, full)
    pad = [""] * (len(cols) - len(results))
    rows = [["metric"] + [n for n, _ in cols], ["mode"] + [str(r.get("mode")) for r in results] + pad,
            ["seconds_per_image"] + [_fmt(r.get("seconds_per_image")) for r in results] + pad]
    rows += [[k] + [_fmt(values.get(k)) for _, values in cols] for k in keys]
    head = f"{' / '.join(sorted(map(str, models)))} samples" + ("; real_train: the first run's reference" if
                                                                 "real_train" in cols[-1][0] else "")
    return head + "\n" + _table(rows)
