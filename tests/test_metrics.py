"""Metric functions against closed forms, hand-made masks and brute-force references."""
from collections import deque

import numpy as np
import pytest
import torch

from src_new.datasets.synthetic import generate
from src_new.evaluation import metrics as M
from src_new.evaluation.postprocess import clean


def test_frechet_distance_zero_for_identical_and_closed_form():
    rng = np.random.default_rng(0)
    f = rng.normal(size=(500, 4))
    assert M.frechet_distance_features(f, f) == pytest.approx(0, abs=1e-8)
    # two Gaussians with diagonal covariances: ||mu1-mu2||^2 + sum (s1 + s2 - 2 sqrt(s1 s2))
    mu1, mu2 = np.array([0.0, 1.0]), np.array([2.0, -1.0])
    s1, s2 = np.diag([1.0, 4.0]), np.diag([9.0, 1.0])
    expected = 8.0 + (1 + 9 - 2 * 3) + (4 + 1 - 2 * 2)
    assert M.frechet_distance(mu1, s1, mu2, s2) == pytest.approx(expected)
    # a non-diagonal case against the eigenvalues of S1 S2
    a = rng.normal(size=(3, 3)); s1 = a @ a.T + np.eye(3)
    b = rng.normal(size=(3, 3)); s2 = b @ b.T + np.eye(3)
    vals = np.linalg.eigvals(s1 @ s2)
    expected = np.trace(s1) + np.trace(s2) - 2 * np.sqrt(vals.real).sum()
    assert M.frechet_distance(np.zeros(3), s1, np.zeros(3), s2) == pytest.approx(expected, rel=1e-6)
    with pytest.raises(ValueError, match="dimension"):
        M.frechet_distance_features(f, f[:, :3])


def test_kid_matches_hand_computation_and_is_near_zero_for_one_distribution():
    x, y = np.array([[0.0], [1.0], [2.0]]), np.array([[1.0], [3.0], [4.0]])
    k = lambda a, b: (a * b + 1) ** 3          # d = 1
    kxx = sum(k(a, b) for i, a in enumerate(x[:, 0]) for j, b in enumerate(x[:, 0]) if i != j) / 6
    kyy = sum(k(a, b) for i, a in enumerate(y[:, 0]) for j, b in enumerate(y[:, 0]) if i != j) / 6
    kxy = sum(k(a, b) for a in x[:, 0] for b in y[:, 0]) / 9
    mean, std = M.kid(x, y, num_subsets=3)
    assert mean == pytest.approx(kxx + kyy - 2 * kxy) and std == pytest.approx(0, abs=1e-9)
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=(400, 5)), rng.normal(size=(400, 5))
    same, _ = M.kid(a, b, num_subsets=10, subset_size=200)
    far, _ = M.kid(a, b + 2, num_subsets=10, subset_size=200)
    assert abs(same) < 0.05 and far > 1.0
    with pytest.raises(ValueError, match="at least 2"):
        M.kid(a[:1], b)


def test_precision_recall_density_coverage():
    rng = np.random.default_rng(1)
    real = rng.normal(size=(200, 3))
    assert M.precision_recall(real, real) == (1.0, 1.0)
    assert M.density_coverage(real, real)[1] == 1.0
    assert M.precision_recall(real, real + 50) == (0.0, 0.0)
    assert M.density_coverage(real, real + 50) == (0.0, 0.0)
    # half the generated samples on the data, half far away: precision 1/2, full coverage
    half = np.concatenate([real, real + 50])
    m = M.manifold_metrics(real, half, real_radii=M.knn_radii(real, 3), chunk=64)
    assert m["precision"] == 0.5 and m["coverage"] == 1.0
    # collapse onto one real point: precise, but covers and recalls almost nothing
    m = M.manifold_metrics(real, np.repeat(real[:1], 200, 0))
    assert m["precision"] == 1.0 and m["recall"] <= 0.05 and m["coverage"] <= 0.05
    with pytest.raises(ValueError, match="more than 3 samples"):
        M.precision_recall(real, real[:3])


def test_knn_radii_against_brute_force():
    f = np.random.default_rng(2).normal(size=(50, 4))
    d = np.sqrt(((f[:, None] - f[None]) ** 2).sum(-1))
    assert np.allclose(M.knn_radii(f, 3, chunk=7), np.sort(d, 1)[:, 3])


def test_iou_dice_and_center_of_mass_on_hand_made_masks():
    a = np.zeros((1, 2, 4, 4)); b = np.zeros((1, 2, 4, 4))
    a[0, 0, 0:2, 0:2] = 1          # 4 pixels
    b[0, 0, 0:2, 0:1] = 1          # 2 pixels, inside a
    iou, dice = M.iou_dice(a, b)
    assert iou[0, 0] == pytest.approx(0.5) and dice[0, 0] == pytest.approx(2 * 2 / 6)
    assert iou[0, 1] == 1.0 and dice[0, 1] == 1.0      # both empty
    assert M.iou_dice(a, 1 - a)[0][0, 0] == 0.0        # disjoint
    com = M.center_of_mass(a)
    assert com[0, 0].tolist() == [0.5, 0.5] and np.isnan(com[0, 1]).all()
    assert M.center_of_mass_distance(a, b)[0, 0] == pytest.approx(0.5)
    with pytest.raises(ValueError, match="shapes differ"):
        M.iou_dice(a, b[:, :1])


def _bfs_pieces(mask):
    """Reference 4-connected piece count of one (H, W) bool mask."""
    h, w = mask.shape
    seen, count = np.zeros_like(mask), 0
    for i in range(h):
        for j in range(w):
            if mask[i, j] and not seen[i, j]:
                count += 1
                seen[i, j] = True
                queue = deque([(i, j)])
                while queue:
                    y, x = queue.popleft()
                    for ny, nx in ((y + 1, x), (y - 1, x), (y, x + 1), (y, x - 1)):
                        if 0 <= ny < h and 0 <= nx < w and mask[ny, nx] and not seen[ny, nx]:
                            seen[ny, nx] = True
                            queue.append((ny, nx))
    return count


def test_label_components_against_breadth_first_search():
    rng = np.random.default_rng(0)
    for density in (0.3, 0.55, 0.7):                   # around the percolation threshold: long snakes
        masks = rng.random((3, 2, 15, 11)) < density
        labels, counts = M.label_components(masks, return_counts=True, chunk_pixels=200)   # several chunks
        expected = np.array([[_bfs_pieces(m) for m in sample] for sample in masks])
        assert counts.numpy().tolist() == expected.tolist()
        assert ((labels.numpy() > 0) == masks).all()
        for sample, lab in zip(masks.reshape(-1, 15, 11), labels.numpy().reshape(-1, 15, 11)):
            assert len(np.unique(lab[sample])) == _bfs_pieces(sample)
        # labels are unique across slices: 1..K with K the total
        assert np.unique(labels.numpy()[labels.numpy() > 0]).tolist() == list(range(1, expected.sum() + 1))


def test_piece_counts_and_connectivity():
    m = np.zeros((1, 2, 6, 6))
    m[0, 0, 0, 0] = 1; m[0, 0, 2:4, 2:4] = 1; m[0, 0, 5, 0:3] = 1
    m[0, 0, 0, 5] = m[0, 0, 1, 4] = 1            # diagonal neighbours: two 4-connected pieces
    m[0, 1, 1:5, 1] = m[0, 1, 4, 1:5] = 1         # one L shape
    assert M.count_pieces(m).tolist() == [[5, 1]]
    conn = M.connectivity(m, np.array([1, 1]))
    assert conn["piece_count_error"].tolist() == [4, 0] and conn["same_pieces_fraction"] == 0.0
    real = generate(20, seed=0)
    assert np.median(M.count_pieces(real), axis=0).tolist() == [1, 1, 1, 1, 1]
    assert M.connectivity(real, [1] * 5)["same_pieces_fraction"] > 0.8


def test_connectivity_against_per_sample_counts():
    m = np.zeros((2, 2, 6, 6))
    m[:, 0, 1:5, 1:5] = 1                         # one block in both samples
    m[0, 1, 0, :] = 1                             # one bar
    m[1, 1, 0, :2] = m[1, 1, 0, 4:] = 1           # the bar split in two: 2 pieces
    truth = np.array([[1, 1], [1, 1]])            # e.g. count_pieces of the ground truths
    conn = M.connectivity(m, truth)
    assert conn["pieces"].tolist() == [[1, 1], [1, 2]]
    assert conn["same_pieces"].tolist() == [[True, True], [True, False]]
    assert conn["piece_count_error"].tolist() == [0, 0.5] and conn["same_pieces_fraction"] == 0.5
    with pytest.raises(ValueError, match=r"real_counts has shape \(3,\)"):
        M.connectivity(m, [1, 1, 1])


def test_overlap_with_kept_counts_pixels_on_other_kept_components():
    x = np.zeros((2, 3, 4, 4))
    x[:, 0, :2, :] = 1                            # kept: the top two rows (8 px)
    x[0, 1, 1:3, :] = 1                           # generated, 8 px: 4 on the kept rows
    x[0, 2, 3, :] = 1                             # generated, 4 px: none on the kept rows
    x[1, 1] = x[1, 0]                             # drawn exactly over the kept component
    kept = np.array([True, False, False])
    share = M.overlap_with_kept(x, kept)
    assert share[0, 1] == 0.5 and share[0, 2] == 0.0 and share[1, 1] == 1.0
    assert np.isnan(share[1, 2])                  # empty: nothing to place
    assert share[0, 0] == 0.0                     # a kept component is compared with the OTHER kept ones
    both = M.overlap_with_kept(x, np.array([[True, True, False]] * 2))
    assert both[0, 0] == pytest.approx(4 / 8) and both[0, 1] == pytest.approx(4 / 8) and both[1, 2] != both[1, 2]
    assert np.array_equal(M.overlap_with_kept(torch.from_numpy(x), kept), share, equal_nan=True)


def test_diversity_and_binarization():
    real = generate(40, seed=0)
    assert M.diversity_ratio(real, real) == pytest.approx(1.0)
    assert M.diversity_ratio(np.repeat(real[:1], 40, 0), real) == 0.0
    assert M.binarization(real) == 1.0
    assert M.binarization(np.full((2, 5, 4, 4), 0.5)) == 0.0
    assert M.binarization(np.full((2, 5, 4, 4), 0.95)) == 1.0


def test_condition_error_zero_on_real_data_with_its_csv(toy_root):
    from src_new.datasets.multicomponent import MultiComponentDataset
    from conftest import make_cfg
    cfg = make_cfg(toy_root)
    ds = MultiComponentDataset(cfg["data"], "all", verbose=False)
    cond = ds.raw_conditions.numpy()
    assert M.condition_error(ds.images_float, cond).tolist() == [0.0, 0.0]
    assert M.condition_error(ds.images_float, cond[::-1]).mean() > 1.0
    # columns are matched by name, not position
    assert M.condition_error(ds.images_float, cond[:, [1]], ["height_px"]).tolist() == [0.0]
    assert M.condition_error(ds.images_float, cond[:, [1]], ["width_px"])[0] > 1.0
    with pytest.raises(ValueError, match="cannot measure"):
        M.condition_error(ds.images_float, cond, ["width_px", "load_index"])
    with pytest.raises(ValueError, match="expected"):
        M.condition_error(ds.images_float, cond[:5])


def test_geometric_features_definition_and_standardization():
    x = np.zeros((1, 1, 8, 6))
    x[0, 0, 2:4, 1:4] = 1
    f = M.geometric_features(x)[0]
    assert f.tolist() == [6, 2.5, 2.0, 2, 3, 3, 2]   # area, com y/x, bbox h/w, width_px, height_px
    assert M.geometric_feature_names(["a"]) == ["area_a", "com_y_a", "com_x_a", "bbox_h_a", "bbox_w_a",
                                                "width_px", "height_px"]
    real = M.geometric_features(generate(30, seed=1))
    z, shifted = M.standardize(real, real + 1)
    varying = real.std(0) > 0
    assert np.allclose(z.mean(0), 0) and np.allclose(z.std(0)[varying], 1)
    assert np.allclose(shifted[:, varying] - z[:, varying], 1 / real.std(0)[varying])


def test_clean_drops_specks_and_fills_holes():
    x = np.zeros((1, 1, 8, 8), np.float32)
    x[0, 0, 1:6, 1:6] = 0.9
    x[0, 0, 3, 3] = 0.1            # a one-pixel hole
    x[0, 0, 7, 7] = 0.8            # a speck
    out = clean(x, min_size=2, max_hole=1)
    assert out[0, 0, 3, 3] == 1 and out[0, 0, 7, 7] == 0 and out.sum() == 25
    assert set(np.unique(out)) == {0.0, 1.0} and out.dtype == np.float32
    assert clean(x, min_size=1, max_hole=0)[0, 0, 7, 7] == 1 and clean(x, max_hole=0)[0, 0, 3, 3] == 0
    # a gap open to the right border is no hole; one open only to column 0 (the mid-plane) is
    y = np.zeros((1, 1, 6, 6), np.float32)
    y[0, 0, 1:5, :] = 1
    y[0, 0, 2, 4:] = 0             # notch from the right border
    y[0, 0, 3, 0] = 0              # notch from the mid-plane
    assert clean(y, max_hole=4)[0, 0, 2, 5] == 0 and clean(y, max_hole=4)[0, 0, 3, 0] == 1
    assert clean(y, max_hole=4, mirror="none")[0, 0, 3, 0] == 0
    # the same section with its mid-plane on the right: the notch from that side is filled
    flipped = y[..., ::-1].copy()
    assert clean(flipped, max_hole=4, mirror="right")[0, 0, 3, 5] == 1
    assert clean(flipped, max_hole=4, mirror="left")[0, 0, 3, 5] == 0
    with pytest.raises(ValueError, match="mid-plane"):
        clean(y, mirror=True)
    with pytest.raises(ValueError, match="min_size"):
        clean(x, min_size=-1)


# ---------------------------------------------------------------- Inception (optional FID)
@pytest.fixture(scope="module")
def fid_model(tmp_path_factory):
    """The FID Inception loaded from a state dict of a randomly initialised one."""
    from src_new.evaluation import inception
    path = tmp_path_factory.mktemp("inception") / "pt_inception-random.pth"
    torch.manual_seed(0)
    torch.save(inception.build_fid_inception().state_dict(), path)
    return inception.load_fid_inception(path), path


def test_inception_loads_weights_and_gives_2048_features(fid_model, tmp_path):
    from src_new.evaluation import inception
    model, path = fid_model
    images = generate(2, seed=0)                                   # (2, 5, 64, 32) masks
    rgb = inception.masks_to_rgb(images, ["group_nc", "group_km", "bt", "fpu", "tpc"])
    assert rgb.shape == (2, 3, 64, 64) and 0 <= rgb.min() and rgb.max() <= 1 and rgb.max() > 0
    feats = inception.inception_features(images, ["group_nc", "group_km", "bt", "fpu", "tpc"], model)
    assert feats.shape == (2, inception.FEATURE_DIM) and np.isfinite(feats).all()
    with pytest.raises(FileNotFoundError, match="nothing is downloaded"):
        inception.load_fid_inception(tmp_path / "missing.pth")
    torch.save({"fc.weight": torch.zeros(3)}, tmp_path / "other.pth")
    with pytest.raises(ValueError, match="not pytorch-fid"):
        inception.load_fid_inception(tmp_path / "other.pth")


def test_inception_blocks_pool_like_pytorch_fid(fid_model):
    """A/C/E_1 blocks average without counting the zero padding, the last E block max-pools.
    (``module.forward`` runs a branch without its hooks.)"""
    import torch.nn.functional as F
    model, _ = fid_model
    torch.manual_seed(1)
    with torch.no_grad():
        x = torch.randn(1, 192, 9, 9)
        a = model.Mixed_5b
        pool = a.branch_pool.forward(F.avg_pool2d(x, 3, 1, 1, count_include_pad=False))
        expected = torch.cat([a.branch1x1(x), a.branch5x5_2(a.branch5x5_1(x)),
                              a.branch3x3dbl_3(a.branch3x3dbl_2(a.branch3x3dbl_1(x))), pool], 1)
        assert torch.allclose(a(x), expected, atol=1e-5)
        assert not torch.allclose(pool, a.branch_pool.forward(F.avg_pool2d(x, 3, 1, 1)), atol=1e-3)
        x = torch.randn(1, 2048, 5, 5)
        e = model.Mixed_7c
        assert torch.allclose(e(x)[:, -192:], e.branch_pool.forward(F.max_pool2d(x, 3, 1, 1)), atol=1e-5)


# ---------------------------------------------------------------- the evaluation protocol
def test_density_and_coverage_use_strict_inequality():
    # Naeem et al.'s reference code: a sample exactly on a real ball's boundary is outside it.
    grid = np.arange(4.0)[:, None]                      # 0 1 2 3, k = 1: every radius is 1
    m = M.manifold_metrics(grid, grid, k=1)
    assert m["density"] == 1.0 and m["coverage"] == 1.0   # `<=` counted the neighbours too: 2.5
    real, fake = np.array([[0.0], [2.0], [4.0], [6.0]]), np.array([[-2.0], [-3.0], [-4.0], [-5.0]])
    m = M.manifold_metrics(real, fake, k=1)             # -2 is exactly on the ball of 0 (radius 2)
    assert m["density"] == 0.0 and m["coverage"] == 0.0   # `<=`: 0.25 and 0.25
    assert m["precision"] == 0.25                       # precision/recall keep Kynkäänniemi's `<=`


def test_within_condition_diversity_closed_form():
    x = np.zeros((3, 2, 1, 4, 4), np.float32)           # 3 conditions, 2 draws each, 16 pixels
    assert M.within_condition_diversity(x) == 0.0        # one image per condition: collapse
    x[0, 1, 0, 0, :4] = 1                               # condition 0: draws differ in 4 of 16 pixels
    # ordered pairs (i, j), i != j: 3 conditions x 2 pairs; only condition 0's 2 pairs differ by 4/16
    assert M.within_condition_diversity(x) == pytest.approx(2 * (4 / 16) / 6)
    assert M.within_condition_diversity(torch.from_numpy(x)) == pytest.approx(2 * (4 / 16) / 6)
    three = np.zeros((1, 3, 1, 2, 2), np.float32)
    three[0, 0] = 1                                     # draw 0 all ones, draws 1, 2 zeros
    assert M.within_condition_diversity(three) == pytest.approx(4 / 6)   # 4 of 6 ordered pairs differ fully
    with pytest.raises(ValueError, match=r"\(N, K >= 2, C, H, W\)"):
        M.within_condition_diversity(x[:, :1])


def test_real_pair_diversity_uses_pairs_within_one_pixel():
    images = np.zeros((4, 1, 2, 2), np.float32)
    images[1, 0, 0, 0] = 1                              # differs from image 0 in 1 of 4 pixels
    images[2] = 1
    cond = np.array([[10.0, 20.0], [11.0, 19.0], [30.0, 20.0], [10.5, 22.0]])
    assert M.condition_pairs(cond, tol=1.0).tolist() == [[0, 1]]       # (0, 3): height 2 px apart
    value, pairs = M.real_pair_diversity(images, cond)
    assert (value, pairs) == (pytest.approx(0.25), 1)
    assert M.condition_pairs(cond, tol=2.0).tolist() == [[0, 1], [0, 3]]      # (1, 3): 3 px apart
    assert np.isnan(M.real_pair_diversity(images, cond * 10)[0])        # no pairs at all
    assert len(M.condition_pairs(np.zeros((50, 2)), max_pairs=7)) == 7   # 1225 pairs, subsampled
    groups, idx = M.group_by_condition(np.arange(6)[:, None], [5, 1, 5, 1, 9, 1])
    assert groups[..., 0].tolist() == [[1, 3], [0, 2]] and idx.tolist() == [1, 5]   # 9 has one draw


def test_condition_convention_is_fitted_on_data():
    # a dataset whose width is the full width of a mirrored half-section (2 * (last column + 1))
    # and whose height counts from the top row: neither is the bounding box measured before
    rng = np.random.default_rng(0)
    images = np.zeros((40, 2, 32, 16), np.float32)
    cond = []
    for img in images:
        x0, x1 = rng.integers(1, 6), rng.integers(8, 16)
        y0, y1 = rng.integers(2, 10), rng.integers(14, 32)
        img[rng.integers(2), y0:y1, x0:x1] = 1
        cond.append([2 * x1, y1])
    cond = np.array(cond, float)
    fits = M.fit_condition_conventions(images, cond, ["width_px", "height_px"])
    assert (fits["width_px"]["measure"], fits["width_px"]["slope"], fits["width_px"]["intercept"]) == ("x_end", 2, 0)
    assert (fits["height_px"]["measure"], fits["height_px"]["slope"]) == ("y_end", 1)
    assert fits["width_px"]["residual"] == 0 and fits["width_px"]["ok"]
    assert M.condition_error(images, cond, ["width_px", "height_px"], fits).tolist() == [0, 0]
    assert (M.condition_error(images, cond) > 1).all()            # the bounding box convention is off
    noise = M.fit_condition_convention(images, rng.normal(0, 10, len(images)))
    assert not noise["ok"] and noise["residual"] > 1                 # no convention fits: flagged
    with pytest.raises(ValueError, match="cannot measure"):
        M.condition_error(images, cond[:, :1], ["rim_inch"])


def test_residual_spread_ratio_reads_the_spread_left_at_a_given_condition():
    rng = np.random.default_rng(0)
    cond = rng.uniform(0, 10, (4000, 2))
    trend = cond @ np.array([[1.0, -2.0, 0.5], [3.0, 0.0, 1.0]])          # the condition's part
    noise = rng.normal(size=(4000, 3))
    real = trend + noise
    fake = trend + noise * np.array([1.0, 0.5, 0.0]) + 7.0                 # full, half, no spread
    ratio = M.residual_spread_ratio(real, fake, cond, cond)
    assert np.allclose(ratio, [1.0, 0.5, 0.0], atol=1e-9)
    # a different trend in the fakes does not count as spread: each set has its own fit
    assert np.allclose(M.residual_spread_ratio(real, fake + 2 * cond[:, :1], cond, cond), ratio, atol=1e-9)
    with pytest.raises(ValueError, match="condition rows"):
        M.residual_spread_ratio(real, fake, cond[:10], cond)
