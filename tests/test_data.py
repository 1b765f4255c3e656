"""Synthetic data, the multi-component dataset (both layouts, every bad input) and I/O."""
import shutil

import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image

from src_new.utils.geometry import measure_dimensions
from src_new.datasets.multicomponent import ConditionNormalizer, MultiComponentDataset
from src_new.datasets.factory import build_datasets
from src_new.datasets.synthetic import COMPONENTS, generate, write_dataset
from src_new.utils.io import load_samples, save_component_images

from conftest import make_cfg


def data_cfg(root, **kw):
    cfg = {"root_dir": str(root), "condition_csv": str(root / "dimensions.csv"), "component_dirs": COMPONENTS,
           "condition_columns": ["width_px", "height_px"], "prefix_column": "matching",
           "filename_pattern": "mdbk_{prefix}_{component}.png", "split_column": "train", "normalized": False}
    cfg.update(kw)
    return cfg


@pytest.fixture
def toy_copy(toy_root, tmp_path):
    dst = tmp_path / "toy"
    shutil.copytree(toy_root, dst)
    return dst


def test_synthetic_is_deterministic_varied_and_binary():
    a, b = generate(64, seed=3), generate(64, seed=3)
    assert np.array_equal(a, b)
    assert not np.array_equal(a, generate(64, seed=4))
    assert set(np.unique(a)) <= {0.0, 1.0}
    # varied: no two samples identical, every component present in every sample
    flat = a.reshape(len(a), -1)
    assert len({row.tobytes() for row in flat}) == len(a)
    assert (a.sum(axis=(2, 3)) > 0).all()
    dims = measure_dimensions(a)
    assert dims[:, 0].std() > 2 and dims[:, 1].std() > 2


def test_components_are_geometrically_related():
    x = generate(32, seed=1)
    # On the mid-plane (column 0), from the outside in: tread, belt, crown, then carcass.
    first_row = lambda c: x[:, c, :, 0].argmax(1)
    tread, belt, crown, carcass = first_row(4), first_row(2), first_row(1), first_row(0)
    assert (x[:, [0, 1, 2, 4], :, 0].max(2) == 1).all()
    assert (tread < belt).all() and (belt < crown).all() and (crown < carcass).all()
    overlap = (x[:, :, None] * x[:, None, :]).sum(axis=(3, 4))  # pairwise pixel overlap
    assert overlap[:, np.triu_indices(5, 1)[0], np.triu_indices(5, 1)[1]].max() == 0  # disjoint masks


def test_csv_equals_measurement(toy_root):
    ds = MultiComponentDataset(data_cfg(toy_root), "all", verbose=False)
    measured = measure_dimensions(ds.images_float)
    assert np.allclose(measured, ds.raw_conditions.numpy())


def test_measure_dimensions_definition():
    img = np.zeros((1, 2, 8, 6), np.float32)
    img[0, 0, 2:5, 1] = 1      # rows 2-4, col 1
    img[0, 1, 6, 4] = 0.9      # row 6, col 4
    assert measure_dimensions(img).tolist() == [[4.0, 5.0]]   # width cols 1..4, height rows 2..6
    assert measure_dimensions(np.zeros((1, 2, 8, 6))).tolist() == [[0.0, 0.0]]


def test_dataset_items_and_normalization(toy_root):
    sets = build_datasets({"data": data_cfg(toy_root), "model": {"image_size": [64, 32]}}, verbose=False)
    train, test = sets["train"], sets["test"]
    assert (len(train), len(test)) == (32, 8)
    img, cond = train[0]
    assert img.shape == (5, 64, 32) and img.dtype == torch.float32 and 0 <= img.min() and img.max() <= 1
    assert cond.shape == (2,)
    assert torch.allclose(train.conditions.mean(0), torch.zeros(2), atol=1e-5)   # train statistics
    assert test.normalizer is train.normalizer
    assert torch.allclose(train.normalizer.denormalize(train.conditions), train.raw_conditions, atol=1e-4)
    restored = ConditionNormalizer.from_state_dict(train.normalizer.state_dict())
    assert torch.allclose(restored.normalize(test.raw_conditions), test.conditions)


def test_split_layout_and_split_values(toy_copy, tmp_path):
    frame = pd.read_csv(toy_copy / "dimensions.csv", dtype={"matching": str})
    split_root = tmp_path / "split"
    for _, row in frame.iterrows():
        split = "train" if row["train"] else "test"
        for comp in COMPONENTS:
            dst = split_root / split / comp
            dst.mkdir(parents=True, exist_ok=True)
            shutil.copy(toy_copy / comp / f"mdbk_{row['matching']}_{comp}.png", dst)
    frame["train"] = frame["train"].map({True: "true", False: "false"})
    frame.to_csv(split_root / "dimensions.csv", index=False)
    flat = MultiComponentDataset(data_cfg(toy_copy), "test", verbose=False)
    nested = MultiComponentDataset(data_cfg(split_root), "test", verbose=False)
    assert torch.equal(flat.images, nested.images)
    frame["train"] = frame["train"].map({"true": 1, "false": 0})
    frame.to_csv(split_root / "dimensions.csv", index=False)
    assert len(MultiComponentDataset(data_cfg(split_root), "train", verbose=False)) == 32


def test_reads_rgb_rgba_la(toy_copy):
    ref = MultiComponentDataset(data_cfg(toy_copy), "all", verbose=False)
    for mode, comp in (("RGB", "group_nc"), ("RGBA", "bt"), ("LA", "tpc")):
        for path in (toy_copy / comp).glob("*.png"):
            Image.open(path).convert(mode).save(path)
    again = MultiComponentDataset(data_cfg(toy_copy), "all", verbose=False)
    assert torch.equal(ref.images, again.images)


def test_no_condition_columns_gives_empty_condition(toy_root):
    ds = MultiComponentDataset(data_cfg(toy_root, condition_columns=[]), "train", verbose=False)
    assert ds[0][1].shape == (0,)


# ---------------------------------------------------------------- bad inputs
def test_missing_csv(tmp_path):
    with pytest.raises(FileNotFoundError, match="condition CSV not found.*make_toy_data.py"):
        MultiComponentDataset(data_cfg(tmp_path), verbose=False)


def test_missing_column_lists_available(toy_root):
    with pytest.raises(ValueError, match=r"missing column\(s\) \['depth_px'\]; available columns: \['matching'"):
        MultiComponentDataset(data_cfg(toy_root, condition_columns=["depth_px"]), verbose=False)


def test_missing_images_reported_with_count(toy_copy):
    for path in list((toy_copy / "fpu").glob("*.png"))[:3]:
        path.unlink()
    with pytest.raises(FileNotFoundError, match=r"image file\(s\) of the 'all' split are missing.*first: \["):
        MultiComponentDataset(data_cfg(toy_copy), "all", verbose=False)


def test_wrong_image_size(toy_root):
    with pytest.raises(ValueError, match=r"image is 64x32 \(HxW\) but model.image_size is \[32, 32\]"):
        MultiComponentDataset(data_cfg(toy_root), "train", image_size=(32, 32), verbose=False)


def test_png_of_wrong_size(toy_copy):
    path = next((toy_copy / "bt").glob("*.png"))
    Image.new("L", (16, 16)).save(path)
    with pytest.raises(ValueError, match=f"{path.name}: image is 16x16"):
        MultiComponentDataset(data_cfg(toy_copy), "all", verbose=False)


def test_corrupt_png(toy_copy):
    path = next((toy_copy / "tpc").glob("*.png"))
    path.write_bytes(path.read_bytes()[:40])          # truncated
    with pytest.raises(ValueError, match=f"{path.name}: cannot decode image"):
        MultiComponentDataset(data_cfg(toy_copy), "all", verbose=False)


def test_empty_split(toy_copy):
    frame = pd.read_csv(toy_copy / "dimensions.csv")
    frame["train"] = True
    frame.to_csv(toy_copy / "dimensions.csv", index=False)
    with pytest.raises(ValueError, match="the 'test' split is empty"):
        MultiComponentDataset(data_cfg(toy_copy), "test", verbose=False)


def test_empty_dataset(toy_copy):
    frame = pd.read_csv(toy_copy / "dimensions.csv").iloc[:0]
    frame.to_csv(toy_copy / "dimensions.csv", index=False)
    with pytest.raises(ValueError, match="split is empty"):
        MultiComponentDataset(data_cfg(toy_copy), "train", verbose=False)


@pytest.mark.parametrize("bad", ["nan", "wide"])
def test_bad_condition_value(toy_copy, bad):
    frame = pd.read_csv(toy_copy / "dimensions.csv", dtype={"matching": str})
    frame["width_px"] = frame["width_px"].astype(object)
    frame.loc[3, "width_px"] = float("nan") if bad == "nan" else bad
    frame.to_csv(toy_copy / "dimensions.csv", index=False)
    prefix = frame.loc[3, "matching"]
    with pytest.raises(ValueError, match=f"condition 'width_px' of sample '{prefix}'.*not a finite number"):
        MultiComponentDataset(data_cfg(toy_copy), "all", verbose=False)


def test_duplicate_prefixes(toy_copy):
    frame = pd.read_csv(toy_copy / "dimensions.csv", dtype={"matching": str})
    frame.loc[1, "matching"] = frame.loc[0, "matching"]
    frame.to_csv(toy_copy / "dimensions.csv", index=False)
    with pytest.raises(ValueError, match="duplicate matching value"):
        MultiComponentDataset(data_cfg(toy_copy), "all", verbose=False)


def test_bad_split_value(toy_copy):
    frame = pd.read_csv(toy_copy / "dimensions.csv")
    frame["train"] = frame["train"].astype(object)
    frame.loc[0, "train"] = "maybe"
    frame.to_csv(toy_copy / "dimensions.csv", index=False)
    with pytest.raises(ValueError, match="split value 'maybe'"):
        MultiComponentDataset(data_cfg(toy_copy), "all", verbose=False)


# ---------------------------------------------------------------- I/O
def test_save_component_images_round_trip(tmp_path):
    images = torch.rand(6, 5, 64, 32)
    save_component_images(images, tmp_path / "s", COMPONENTS, prefix="sample")
    assert (tmp_path / "s" / "grid.png").exists()
    assert len(list((tmp_path / "s" / "composite").glob("*.png"))) == 6
    composite = np.asarray(Image.open(next((tmp_path / "s" / "composite").glob("*.png"))))
    assert composite.shape == (64, 64, 3)           # mirrored to 64x64
    back = MultiComponentDataset(data_cfg(tmp_path / "s", filename_pattern="{prefix}_{component}.png"),
                                 "train", verbose=False)
    assert torch.allclose(back.images_float, images, atol=1 / 255 / 2 + 1e-6)
    npz = load_samples(tmp_path / "s")
    assert np.allclose(npz["images"], images.numpy())


def test_overlay_colors(tmp_path):
    from src_new.utils.io import overlay
    sample = np.zeros((5, 4, 4), np.float32)
    sample[0, 0, 0] = 1    # group_nc red
    sample[3, 1, 1] = 1    # fpu green
    rgb = overlay(sample, COMPONENTS, mirror=False)
    assert rgb[0, 0].tolist() == [255, 0, 0] and rgb[1, 1].tolist() == [0, 200, 0] and rgb[2, 2].tolist() == [0, 0, 0]


def test_make_toy_data_cli(tmp_path):
    from conftest import run_script
    run_script("make_toy_data.py", "--out", tmp_path / "t", "--n", 10, "--seed", 1)
    frame = pd.read_csv(tmp_path / "t" / "dimensions.csv")
    assert list(frame.columns) == ["matching", "train", "width_px", "height_px"] and len(frame) == 10
    cfg = make_cfg(tmp_path / "t")
    assert len(build_datasets(cfg, verbose=False)["test"]) == 2


def test_grids_mirror_about_the_side_of_the_symmetry_axis(tmp_path):
    from src_new.utils.io import make_grid, mirror_side, overlay
    left = np.zeros((3, 5, 8, 4), np.float32)
    left[:, 0, 2:6, 0:2] = 1                             # a half-section touching column 0 (the toy data)
    right = left[..., ::-1].copy()                       # the same, axis on the right edge
    assert mirror_side(left) == "left" and mirror_side(right) == "right"
    assert mirror_side(np.zeros_like(left)) == "none" and mirror_side(right, "left") == "left"
    # the full section is the same picture either way: the axis ends up in the middle
    a, b = overlay(left[0], COMPONENTS, "left"), overlay(right[0], COMPONENTS, "right")
    assert a.shape == b.shape == (8, 8, 3) and np.array_equal(a, b)
    assert np.array_equal(overlay(right[0], COMPONENTS, "auto"), a)
    assert not np.array_equal(overlay(right[0], COMPONENTS, "left"), a)   # the fixed side got it wrong
    assert make_grid(right, COMPONENTS, mirror="none").shape[1] < make_grid(right, COMPONENTS).shape[1]
    with pytest.raises(ValueError, match="data.mirror"):
        mirror_side(left, "up")
    with pytest.raises(ValueError, match=r"data.mirror = 'up'"):
        make_cfg(tmp_path, data={"mirror": "up"})
