"""evaluate.py end to end on tiny data: every mode, references, compare."""
import json

import numpy as np
import pytest

from src_new.evaluation.evaluate import compare, evaluate_samples, format_table
from src_new.utils.io import save_component_images, write_json

from conftest import make_cfg, run_script

NAMES = ["group_nc", "group_km", "bt", "fpu", "tpc"]


def make_folder(path, images, cfg, mode, **extra):
    save_component_images(images, path, NAMES, extra_arrays=extra.pop("arrays", {}), **extra)
    write_json({"model": "test", "mode": mode, "config": cfg, "options": {}, "seconds_per_image": 0.01},
               path / "manifest.json")
    return path


@pytest.fixture
def real_sets(toy_root):
    from src_new.datasets.multicomponent import build_datasets
    cfg = make_cfg(toy_root)
    sets = build_datasets(cfg, verbose=False)
    return cfg, sets["train"], sets["test"]


def test_real_samples_score_like_real_data(real_sets, tmp_path):
    cfg, train, test = real_sets
    folder = make_folder(tmp_path / "c", test.images_float, cfg, "conditional", conditions=test.raw_conditions)
    result = evaluate_samples(folder)
    m, refs = result["metrics"], result["references"]
    assert m["condition_mae"] == 0.0 and refs["real_test_shuffled_conditions"]["condition_mae"] > 1
    assert m["geometric_fd"] == pytest.approx(0, abs=1e-4) and m["precision"] == 1.0 and m["coverage"] == 1.0
    assert m["binarization"] == 1.0 and m["same_pieces_fraction"] > 0.8
    assert refs["mean_image"]["diversity_ratio"] == 0.0
    assert refs["shift_2px"]["geometric_fd"] > 0.1 and refs["shuffled_components"]["geometric_fd"] > 0.1
    assert json.loads((folder / "metrics.json").read_text())["metrics"]["precision"] == 1.0
    table = format_table(result)
    assert "geometric_fd" in table and "mean_image" in table


def test_inpainting_metrics_and_baseline(real_sets, tmp_path):
    cfg, train, test = real_sets
    truth = test.images_float.numpy()
    mask = np.zeros_like(truth)
    mask[:, [0, 3]] = 1
    folder = make_folder(tmp_path / "i", truth, cfg, "inpainting", arrays={"ground_truth": truth, "mask": mask})
    result = evaluate_samples(folder, references=True)
    m = result["metrics"]
    assert m["iou_generated"] == 1.0 and m["preserved_max_abs_diff"] == 0.0
    assert "iou_group_nc" not in m and "iou_tpc" in m
    base = result["references"]["nearest_train"]
    assert 0 < base["iou_generated"] < 1


def test_script_and_compare(real_sets, tmp_path):
    cfg, train, test = real_sets
    a = make_folder(tmp_path / "a", test.images_float, cfg, "unconditional")
    noise = np.random.default_rng(0).random(test.images_float.shape).astype(np.float32)
    b = make_folder(tmp_path / "b", noise, cfg, "unconditional")
    out = run_script("evaluate.py", "--samples", a, "--no_references").stdout
    assert "geometric_fd" in out and "condition_mae" in out
    run_script("evaluate.py", "--samples", b / "samples.npz", "--no_references")
    table = compare([a, b / "metrics.json"])
    assert "test:a" in table and "test:b" in table
    noise_m = json.loads((b / "metrics.json").read_text())["metrics"]
    assert noise_m["binarization"] < 0.3 and noise_m["coverage"] < 0.5
    proc = run_script("evaluate.py", "--compare", tmp_path / "missing", check=False)
    assert proc.returncode != 0 and "not found" in proc.stderr


def test_postprocessed_run_reports_raw_beside_clean(real_sets, tmp_path):
    from src_new.evaluation.postprocess import clean
    cfg, train, test = real_sets
    raw = np.clip(test.images_float.numpy() + 0.3 * np.random.default_rng(0).random(test.images_float.shape), 0, 1)
    folder = make_folder(tmp_path / "p", clean(raw), cfg, "unconditional", arrays={"images_raw": raw})
    result = evaluate_samples(folder, references=False)
    assert result["raw"]["binarization"] < result["metrics"]["binarization"] == 1.0
