"""Metric functions against closed forms and hand-made masks."""
import numpy as np
import pytest

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
    # a non-diagonal case against the eigen-decomposition formula
    a = rng.normal(size=(3, 3)); s1 = a @ a.T + np.eye(3)
    b = rng.normal(size=(3, 3)); s2 = b @ b.T + np.eye(3)
    vals, vecs = np.linalg.eig(s1 @ s2)
    expected = np.trace(s1) + np.trace(s2) - 2 * np.sqrt(vals.real).sum()
    assert M.frechet_distance(np.zeros(3), s1, np.zeros(3), s2) == pytest.approx(expected, rel=1e-6)


def test_kid_near_zero_for_same_distribution_and_large_otherwise():
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=(400, 5)), rng.normal(size=(400, 5))
    same, _ = M.kernel_inception_distance(a, b, num_subsets=10, subset_size=200)
    far, _ = M.kernel_inception_distance(a, b + 2, num_subsets=10, subset_size=200)
    assert abs(same) < 0.05 and far > 1.0


def test_precision_recall_density_coverage():
    rng = np.random.default_rng(1)
    real = rng.normal(size=(200, 3))
    assert M.precision_recall(real, real) == (1.0, 1.0)
    assert M.density_coverage(real, real)[1] == 1.0
    p, r = M.precision_recall(real, real + 50)
    assert p == 0.0 and r == 0.0
    d, c = M.density_coverage(real, real + 50)
    assert d == 0.0 and c == 0.0


def test_iou_dice_and_center_of_mass_on_hand_made_masks():
    a = np.zeros((1, 2, 4, 4)); b = np.zeros((1, 2, 4, 4))
    a[0, 0, 0:2, 0:2] = 1          # 4 pixels
    b[0, 0, 0:2, 0:1] = 1          # 2 pixels, inside a
    iou, dice = M.iou_dice(a, b)
    assert iou[0, 0] == pytest.approx(0.5) and dice[0, 0] == pytest.approx(2 * 2 / 6)
    assert iou[0, 1] == 1.0 and dice[0, 1] == 1.0      # both empty
    com = M.center_of_mass(a)
    assert com[0, 0].tolist() == [0.5, 0.5] and np.isnan(com[0, 1]).all()
    assert M.center_of_mass_distance(a, b)[0, 0] == pytest.approx(0.5)


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


def test_diversity_and_binarization():
    real = generate(40, seed=0)
    assert M.diversity_ratio(real, real) == pytest.approx(1.0)
    assert M.diversity_ratio(np.repeat(real[:1], 40, 0), real) == 0.0
    assert M.binarization(real) == 1.0
    assert M.binarization(np.full((2, 5, 4, 4), 0.5)) == 0.0


def test_condition_error_zero_on_real_data_with_its_csv(toy_root):
    from src_new.datasets.multicomponent import MultiComponentDataset
    from conftest import make_cfg
    cfg = make_cfg(toy_root)
    ds = MultiComponentDataset(cfg["data"], "all", verbose=False)
    assert M.condition_error(ds.images_float, ds.raw_conditions.numpy()).tolist() == [0.0, 0.0]
    shuffled = ds.raw_conditions.numpy()[::-1]
    assert M.condition_error(ds.images_float, shuffled).mean() > 1.0


def test_geometric_features_definition():
    x = np.zeros((1, 1, 8, 6))
    x[0, 0, 2:4, 1:4] = 1
    f = M.geometric_features(x)[0]
    assert f.tolist() == [6, 2.5, 2.0, 2, 3, 3, 2]   # area, com y/x, bbox h/w, width_px, height_px


def test_clean_drops_specks_and_fills_holes():
    x = np.zeros((1, 1, 8, 8), np.float32)
    x[0, 0, 1:6, 1:6] = 0.9
    x[0, 0, 3, 3] = 0.1            # a one-pixel hole
    x[0, 0, 7, 7] = 0.8            # a speck
    out = clean(x, min_size=2, max_hole=1)
    assert out[0, 0, 3, 3] == 1 and out[0, 0, 7, 7] == 0 and out.sum() == 25
    assert set(np.unique(out)) == {0.0, 1.0}
