"""evaluate.py end to end on tiny data: every mode, references, raw vs clean, compare, errors."""
import json

import numpy as np
import pytest
import torch

from src_new.evaluation import metrics as M
from src_new.pipeline.evaluate import compare, evaluate_samples, format_table
from src_new.utils.io import save_component_images, write_json

from conftest import make_cfg, run_script, write_yaml

NAMES = ["group_nc", "group_km", "bt", "fpu", "tpc"]


def make_folder(path, images, cfg, mode, with_config=True, **extra):
    save_component_images(images, path, NAMES, extra_arrays=extra.pop("arrays", {}), **extra)
    manifest = {"model": "test", "mode": mode, "options": {}, "seconds_per_image": 0.01}
    if with_config:
        manifest["config"] = cfg
    write_json(manifest, path / "manifest.json")
    return path


@pytest.fixture
def real_sets(toy_root):
    from src_new.datasets.factory import build_datasets
    cfg = make_cfg(toy_root)
    sets = build_datasets(cfg, verbose=False)
    return cfg, sets["train"], sets["test"]


def test_real_samples_score_like_real_data(real_sets, tmp_path):
    cfg, train, test = real_sets
    folder = make_folder(tmp_path / "c", test.images_float, cfg, "conditional", conditions=test.raw_conditions)
    result = evaluate_samples(folder)
    m, refs = result["metrics"], result["references"]
    assert m["condition_mae"] == 0.0 and refs["real_test_shuffled_conditions"]["condition_mae"] > 1
    assert refs["real_test_own_conditions"]["condition_mae"] == 0.0
    assert m["geometric_fd"] == pytest.approx(0, abs=1e-4) and m["precision"] == 1.0 and m["coverage"] == 1.0
    assert m["pixel_precision"] == 1.0 and m["pixel_coverage"] == 1.0 and m["n"] == len(test)
    assert m["binarization"] == 1.0 and m["same_pieces_fraction"] > 0.8
    assert m["diversity_ratio"] == pytest.approx(1.0)
    assert refs["mean_image"]["diversity_ratio"] == 0.0 and refs["mean_image"]["binarization"] < 1
    assert refs["shift_2px"]["geometric_fd"] > 0.1 and refs["shuffled_components"]["geometric_fd"] > 0.1
    assert set(result["details"]["piece_count_error"]) == set(NAMES)
    assert any("Inception FID skipped" in n for n in result["notes"])       # no weights: a clear note
    assert json.loads((folder / "metrics.json").read_text())["metrics"]["precision"] == 1.0
    table = format_table(result, full=True)
    assert "geometric_fd" in table and "mean_image" in table and "Inception FID skipped" in table
    short = format_table(result)                               # the summary: one screen, the main references
    assert "geometric_fd" in short and "mean_image" not in short and "binarization" not in short
    assert "real_train" in short and "seconds_per_image" in short


def test_inpainting_metrics_and_baseline(real_sets, tmp_path):
    cfg, train, test = real_sets
    truth = test.images_float.numpy()
    mask = np.zeros_like(truth)
    mask[:, [0, 3]] = 1                                        # group_nc and fpu preserved
    folder = make_folder(tmp_path / "i", truth, cfg, "inpainting", arrays={"ground_truth": truth, "mask": mask})
    result = evaluate_samples(folder, references=True)
    m = result["metrics"]
    assert m["iou_generated"] == 1.0 and m["dice_generated"] == 1.0 and m["preserved_max_abs_diff"] == 0.0
    assert "iou_group_nc" not in m and "iou_tpc" in m and m["com_dist_tpc"] == 0.0
    base = result["references"]["nearest_train"]
    assert 0 < base["iou_generated"] < 1 and base["preserved_max_abs_diff"] == 0.0
    # a changed preserved pixel and a wrong generated component show up
    bad = truth.copy()
    bad[:, 0, 10, 5] = 1 - bad[:, 0, 10, 5]
    bad[:, 4] = np.roll(bad[:, 4], 3, axis=1)
    folder = make_folder(tmp_path / "j", bad, cfg, "inpainting", arrays={"ground_truth": truth, "mask": mask})
    m = evaluate_samples(folder, references=False)["metrics"]
    assert m["preserved_max_abs_diff"] == 1.0 and m["iou_tpc"] < 1 and m["com_dist_tpc"] == pytest.approx(3)
    assert m["iou_bt"] == 1.0


def test_inpainting_consistency_figures_on_completions_built_to_differ(real_sets, tmp_path):
    cfg, train, test = real_sets
    truth = test.images_float.numpy()
    n = len(truth)
    mask = np.zeros_like(truth)
    mask[:, [0, 3]] = 1                                        # group_nc and fpu kept; group_km, bt, tpc made
    arrays = {"ground_truth": truth, "mask": mask, "test_indices": np.arange(n)}
    folder = make_folder(tmp_path / "same", truth, cfg, "inpainting", conditions=test.raw_conditions, arrays=arrays)
    result = evaluate_samples(folder, references=True, write=False)
    m, base = result["metrics"], result["references"]["nearest_train"]
    # the ground truth as the completion: its own overlap, its piece counts, its conditions
    assert m["overlap_kept_generated"] == m["overlap_kept_truth"] and m["same_pieces_generated"] == 1.0
    assert m["piece_error_generated"] == 0 and m["pieces_tpc"] == m["pieces_truth_tpc"]
    assert m["condition_mae"] == 0 and m["condition_mae_truth"] == 0
    assert "overlap_kept_group_nc" not in m and "pieces_fpu" not in m          # kept: not scored
    for key in ("overlap_kept_generated", "same_pieces_generated", "condition_mae", "pieces_bt"):
        assert key in base                                     # the baseline gets every figure
    assert base["overlap_kept_truth"] == m["overlap_kept_truth"]
    table = format_table(result, full=True)
    assert "overlap_kept_bt" in table and "same_pieces_generated" in table and "nearest_train" in table
    short = format_table(result)
    assert "iou_generated" in short and "nearest_train" in short and "overlap_kept_bt" not in short
    # bt drawn over the kept carcass, tpc in two pieces
    made = truth.copy()
    made[:, 2] = truth[:, 0]
    made[:, 4] = 0
    made[:, 4, 10:13, 0:4] = made[:, 4, 20:22, 0:4] = 1
    folder = make_folder(tmp_path / "made", made, cfg, "inpainting", conditions=test.raw_conditions, arrays=arrays)
    m = evaluate_samples(folder, references=False, write=False)["metrics"]
    assert m["overlap_kept_bt"] == 1.0 and m["pieces_tpc"] == 2.0
    assert m["same_pieces_generated"] == pytest.approx((2 * n + (M.count_pieces(truth)[:, 4] == 2).sum()) / (3 * n))
    # one tpc pixel 3 rows below the design (column 0: the width is unchanged): 3 px too tall
    taller = truth.copy()
    bottom = 63 - (truth > 0.5).any(1).any(2)[:, ::-1].argmax(1)     # last occupied row of each design
    taller[np.arange(n), 4, bottom + 3, 0] = 1
    folder = make_folder(tmp_path / "taller", taller, cfg, "inpainting", conditions=test.raw_conditions,
                         arrays=arrays)
    m = evaluate_samples(folder, references=False, write=False)["metrics"]
    assert m["condition_mae_height"] == 3.0 and m["condition_mae_width"] == 0.0 and m["condition_mae"] == 1.5
    assert m["condition_mae_truth"] == 0.0 and m["pieces_tpc"] == m["pieces_truth_tpc"] + 1
    # older folders: the conditions from test_indices, the same figures; --no_cond: none, with a note
    folder = make_folder(tmp_path / "old", taller, cfg, "inpainting", arrays=arrays)
    assert evaluate_samples(folder, references=False, write=False)["metrics"]["condition_mae_height"] == 3.0
    manifest = json.loads((folder / "manifest.json").read_text())
    write_json({**manifest, "used_conditions": False}, folder / "manifest.json")
    result = evaluate_samples(folder, references=False, write=False)
    assert "condition_mae" not in result["metrics"] and any("--no_cond" in note for note in result["notes"])


def test_nearest_train_baseline_matches_on_known_pixels_per_mask(real_sets):
    from src_new.pipeline.evaluate import nearest_train_inpainting
    cfg, train, test = real_sets
    pool = train.images_float.numpy()
    truth = pool[:4].copy()                                    # train samples: their own nearest
    mask = np.zeros_like(truth)
    mask[:2, 0] = 1
    mask[2:, 4] = 1                                            # two different masks in one run
    out = nearest_train_inpainting(truth, mask, pool)
    assert np.array_equal(out, truth)


def test_nearest_train_baseline_k_takes_the_pixelwise_majority_of_the_k_closest():
    from src_new.pipeline.evaluate import nearest_train_inpainting
    truth = np.zeros((1, 2, 2, 2), np.float32)
    truth[0, 0, 0, 0] = 1                                      # known channel 0: one pixel on
    pool = np.zeros((4, 2, 2, 2), np.float32)
    pool[:3, 0, 0, 0] = 1                                      # the three closest on channel 0 ...
    pool[0, 1] = [[1, 1], [0, 0]]                              # ... disagree on the hidden channel 1
    pool[1, 1] = [[1, 0], [0, 0]]
    pool[2, 1] = [[1, 1], [1, 0]]
    pool[3, 1] = 1                                             # far on the known pixels: never used
    mask = np.zeros_like(truth)
    mask[:, 0] = 1
    vote = nearest_train_inpainting(truth, mask, pool, k=3)
    assert np.array_equal(vote[0, 1], [[1, 1], [0, 0]])        # 3/3, 2/3, 1/3, 0/3 votes
    assert np.array_equal(vote[0, 0], truth[0, 0])             # known pixels kept
    assert np.array_equal(nearest_train_inpainting(truth, mask, pool, k=1)[0, 1], pool[0, 1])


def test_postprocessed_run_reports_raw_beside_clean(real_sets, tmp_path):
    from src_new.evaluation.postprocess import clean
    cfg, train, test = real_sets
    raw = np.clip(test.images_float.numpy() + 0.3 * np.random.default_rng(0).random(test.images_float.shape), 0, 1)
    raw[0, 0, 0, 0] = 1.2                                      # an unclamped sampler output
    folder = make_folder(tmp_path / "p", clean(raw), cfg, "conditional", conditions=test.raw_conditions,
                         arrays={"images_raw": raw})
    result = evaluate_samples(folder, references=False)
    assert result["raw"]["binarization"] < result["metrics"]["binarization"] == 1.0
    assert "condition_mae" in result["raw"] and "condition_mae" in result["metrics"]
    assert "raw (before clean)" in format_table(result)
    assert any("'images_raw' range" in n and "clipped" in n for n in result["notes"])


def test_config_from_yaml_or_checkpoint_and_max_real(real_sets, tmp_path):
    cfg, train, test = real_sets
    folder = make_folder(tmp_path / "u", test.images_float, cfg, "unconditional", with_config=False)
    with pytest.raises(ValueError, match="no 'config'; pass --config"):
        evaluate_samples(folder)
    yaml_path = write_yaml(cfg, tmp_path / "cfg.yaml")
    result = evaluate_samples(folder / "samples.npz", yaml_path, max_real=5)
    assert result["num_real"] == 5 and result["references"]["real_train"]["n"] == 5
    assert any("random test conditions" in n for n in result["notes"])
    torch.save({"config": {k: v for k, v in cfg.items() if not k.startswith("_")}}, tmp_path / "ckpt.pt")
    again = evaluate_samples(folder, tmp_path / "ckpt.pt", max_real=5, references=False, write=False)
    assert again["metrics"]["geometric_fd"] == pytest.approx(result["metrics"]["geometric_fd"])


def test_inception_feature_space_is_reported_when_available(real_sets, tmp_path):
    cfg, train, test = real_sets
    folder = make_folder(tmp_path / "f", test.images_float, cfg, "unconditional")
    fake_inception = lambda images: M.geometric_features(images)      # stands in for the 2048-d network
    result = evaluate_samples(folder, references=True, inception=fake_inception, write=False)
    assert result["metrics"]["inception_fid"] == pytest.approx(0, abs=1e-3)   # unstandardized: rounding
    assert result["references"]["shift_2px"]["inception_fid"] > 0.1
    assert not any("Inception" in n for n in result["notes"])


def test_bad_samples_give_clear_errors(real_sets, tmp_path):
    cfg, train, test = real_sets
    x = test.images_float.numpy()
    save_component_images(x[:, :3], tmp_path / "three", NAMES[:3])
    write_json({"mode": "unconditional", "config": cfg}, tmp_path / "three" / "manifest.json")
    with pytest.raises(ValueError, match=r"shape .* config expects"):
        evaluate_samples(tmp_path / "three")
    folder = make_folder(tmp_path / "i", x, cfg, "inpainting")
    with pytest.raises(ValueError, match="ground_truth"):
        evaluate_samples(folder)
    nan = x.copy()
    nan[0, 0, 0, 0] = np.nan
    folder = make_folder(tmp_path / "n", x, cfg, "unconditional", arrays={"images_raw": nan})
    with pytest.raises(ValueError, match="NaN"):
        evaluate_samples(folder)
    folder = make_folder(tmp_path / "m", x, cfg, "sideways")
    with pytest.raises(ValueError, match="mode"):
        evaluate_samples(folder)


def test_script_and_compare(real_sets, tmp_path):
    cfg, train, test = real_sets
    a = make_folder(tmp_path / "a", test.images_float, cfg, "unconditional")
    noise = np.random.default_rng(0).random(test.images_float.shape).astype(np.float32)
    b = make_folder(tmp_path / "b", noise, cfg, "unconditional")
    evaluate_samples(b / "samples.npz", references=False)
    out = run_script("evaluate.py", "--samples", a, "--no_references", "--compare", a, b / "metrics.json").stdout
    assert "geometric_fd" in out and "Inception FID skipped" in out
    assert "test:a" not in out and any(line.split()[:3] == ["metric", "a", "b"] for line in out.splitlines())
    assert (a / "metrics.json").is_file()
    noise_m = json.loads((b / "metrics.json").read_text())["metrics"]
    assert noise_m["binarization"] < 0.3 and noise_m["coverage"] < 0.5
    table = compare([a, b], full=True)
    rows = {line.split()[0]: line.split()[1:] for line in table.splitlines()[2:]}
    assert rows["binarization"][0] == "1" and float(rows["binarization"][1]) < 0.3
    proc = run_script("evaluate.py", "--compare", a, tmp_path / "missing", check=False)
    assert proc.returncode != 0 and "not found" in proc.stderr and "Traceback" not in proc.stderr


# ---------------------------------------------------------------- the protocol
@pytest.fixture(scope="module")
def toy240(tmp_path_factory):
    """240 synthetic samples (120 train, 120 test): enough for the k-NN metrics to rank sets."""
    from src_new.datasets.factory import build_datasets
    from src_new.datasets.synthetic import write_dataset
    root = tmp_path_factory.mktemp("toy240")
    write_dataset(root, n=240, seed=0, test_fraction=0.5)
    cfg = make_cfg(root)
    return cfg, build_datasets(cfg, verbose=False)["test"].images_float.numpy()


def test_sets_that_differ_in_known_ways_rank_in_that_order(toy240, tmp_path):
    cfg, test = toy240
    shifted = np.zeros_like(test)
    shifted[:, :, 2:] = test[:, :, :-2]                       # 2 px down: a near miss
    rng = np.random.default_rng(0)
    shuffled = np.stack([test[rng.permutation(len(test)), c] for c in range(test.shape[1])], 1)
    scores = {name: evaluate_samples(make_folder(tmp_path / name, x, cfg, "unconditional"), references=False,
                                     write=False)["metrics"]
              for name, x in (("identity", test), ("shifted", shifted), ("shuffled", shuffled))}
    ident, shift, shuf = scores["identity"], scores["shifted"], scores["shuffled"]
    assert ident["geometric_fd"] < shift["geometric_fd"] < shuf["geometric_fd"]
    for key in ("pixel_density", "pixel_coverage", "pixel_precision"):   # (recall: shuffled parts spread wide)
        assert ident[key] > shift[key] > shuf[key], (key, ident[key], shift[key], shuf[key])
    for key in ("density", "coverage", "precision"):     # a 2-px shift is nearly invisible to geometry
        assert ident[key] >= shift[key] > shuf[key], (key, ident[key], shift[key], shuf[key])
    assert ident["density"] == 1.0 and ident["coverage"] == 1.0      # strict `<`: identity is exactly 1


def test_repeated_conditions_are_refused_and_n_is_equal(real_sets, tmp_path):
    cfg, train, test = real_sets
    x = test.images_float.numpy()
    twice = np.concatenate([x, x])                            # every test condition used twice
    idx = np.arange(len(twice)) % len(x)
    folder = make_folder(tmp_path / "twice", twice, cfg, "conditional", conditions=test.raw_conditions[idx],
                         arrays={"test_indices": idx})
    with pytest.raises(ValueError, match=r"only 8 distinct conditions \(2.0 per condition\).*--num_samples <= 8"):
        evaluate_samples(folder)
    # more unconditional samples than the real set: subsampled to the same n as every reference
    folder = make_folder(tmp_path / "many", twice, cfg, "unconditional")
    result = evaluate_samples(folder, write=False)
    n = result["metrics"]["n"]
    assert n == len(x) and all(r["n"] == n for k, r in result["references"].items() if "n" in r)
    assert any("use 8 of the 16 samples" in note for note in result["notes"])


@pytest.fixture
def convention_data(tmp_path):
    """A toy dataset whose width / height columns are not the bounding box, and a column that
    no measurement fits -> (cfg, build_datasets' dict)."""
    import pandas as pd

    from src_new.datasets.factory import build_datasets
    from src_new.datasets.synthetic import write_dataset
    write_dataset(tmp_path / "d", n=40, seed=0, test_fraction=0.2)
    csv = tmp_path / "d" / "dimensions.csv"
    frame = pd.read_csv(csv, dtype={"matching": str})
    frame["width_px"] = 2 * frame["width_px"] - 1               # full width of the mirrored section
    frame["height_px"] = frame["height_px"] + 3                 # counted with a 3-row margin
    frame["load"] = np.random.default_rng(0).normal(100, 20, len(frame))   # not geometric at all
    frame.to_csv(csv, index=False)
    cfg = make_cfg(tmp_path / "d", data={"condition_columns": ["width_px", "height_px", "load"]}, model={"cond_dim": None})
    return cfg, build_datasets(cfg, verbose=False)


def test_condition_error_follows_the_dataset_convention(convention_data, tmp_path):
    cfg, sets = convention_data
    test = sets["test"]
    folder = make_folder(tmp_path / "c", test.images_float, cfg, "conditional", conditions=test.raw_conditions)
    result = evaluate_samples(folder)
    m = result["metrics"]
    # real test images at their own conditions: exact under the fitted convention (bbox: off by 20 px)
    assert m["condition_mae_width"] == 0 and m["condition_mae_height"] == 0 and m["condition_mae"] == 0
    assert result["references"]["real_test_own_conditions"]["condition_mae_width"] == 0
    conv = result["details"]["condition_conventions"]
    assert (conv["width_px"]["slope"], conv["width_px"]["intercept"], conv["height_px"]["intercept"]) == (2, -1, 3)
    assert not conv["load"]["ok"]
    assert any("no measurement convention fits condition column 'load'" in n for n in result["notes"])


def test_fewer_samples_than_test_images_get_an_equal_real_reference_and_kid_subsets_below_n(real_sets, tmp_path):
    """An inpainting folder of 5 completions (8 test images) is scored against 5 real images,
    drawn with the seed; KID subsets are at most half the smaller set, so they differ."""
    cfg, train, test = real_sets
    truth = test.images_float.numpy()[:5]
    mask = np.zeros_like(truth)
    mask[:, [0, 3]] = 1
    folder = make_folder(tmp_path / "few", truth, cfg, "inpainting", arrays={"ground_truth": truth, "mask": mask,
                                                                            "test_indices": np.arange(5)})
    result = evaluate_samples(folder, write=False)
    assert result["num_real"] == result["metrics"]["n"] == 5
    assert any("5 of the 8 test images" in note for note in result["notes"])
    assert 2 <= result["kid"]["subset_size"] <= 5 // 2 and result["kid"]["subsets"] > 1
    # the full test split as samples: the whole real set, a KID subset of half of it
    folder = make_folder(tmp_path / "all", test.images_float, cfg, "conditional", conditions=test.raw_conditions)
    result = evaluate_samples(folder, write=False)
    assert result["num_real"] == len(test) and result["kid"]["subset_size"] == len(test) // 2
    assert result["metrics"]["geometric_kid_std"] > 0                # subsets that differ have a spread



# ---------------------------------------------------------------- the steps, and the benches that use them
def test_load_evaluation_reads_the_folder_clips_and_loads_both_splits(real_sets, tmp_path):
    from src_new.pipeline.evaluate import load_evaluation
    cfg, train, test = real_sets
    x = test.images_float.numpy()
    raw = x.copy()
    raw[0, 0, 0, 0] = 1.5                                      # an unclamped sampler output
    folder = make_folder(tmp_path / "c", x, cfg, "conditional", conditions=test.raw_conditions,
                         arrays={"images_raw": raw})
    ev = load_evaluation(folder / "samples.npz", max_real=6, seed=4)
    assert ev.folder == folder and ev.mode == "conditional" and ev.names == NAMES and ev.per_condition == 1
    assert ev.columns == ["width_px", "height_px"] and (ev.max_real, ev.seed) == (6, 4)
    assert ev.arrays["images_raw"].max() == 1.0 and any("'images_raw' range" in n for n in ev.notes)
    assert np.array_equal(ev.train, train.images_float.numpy()) and np.array_equal(ev.test, test.images_float.numpy())
    assert np.array_equal(ev.test_conditions, test.raw_conditions.numpy())
    with pytest.raises(ValueError, match="max_real=3 is too small"):
        load_evaluation(folder, max_real=3)


def test_comparison_sets_take_one_sample_per_condition_and_an_equal_real_set(real_sets, tmp_path):
    from src_new.pipeline.evaluate import SKIP_MESSAGE, comparison_sets, load_evaluation
    cfg, train, test = real_sets
    x = test.images_float.numpy()
    idx = np.repeat(np.arange(len(x)), 2)                       # 2 draws per test condition
    folder = make_folder(tmp_path / "k2", x[idx], cfg, "conditional", conditions=test.raw_conditions[idx],
                         arrays={"condition_index": idx})
    write_json({**json.loads((folder / "manifest.json").read_text()), "per_condition": 2}, folder / "manifest.json")
    ev = load_evaluation(folder)
    rows, real, n = comparison_sets(ev)
    assert np.array_equal(rows, 2 * np.arange(len(x))) and n == len(x)          # the first draw of each
    assert np.array_equal(real.images, x) and np.array_equal(real.index, np.arange(len(x)))
    assert SKIP_MESSAGE in ev.notes and any("first of the 2 draws" in note for note in ev.notes)
    # fewer real images allowed: a seeded subset, the samples subsampled to as many; no Inception note
    ev = load_evaluation(folder, max_real=5, seed=1)
    rows, real, n = comparison_sets(ev, inception=False)
    assert n == len(rows) == len(real.images) == 5 and np.array_equal(real.images, x[real.index])
    assert SKIP_MESSAGE not in ev.notes and any("use 5 of the 8 samples" in note for note in ev.notes)


def test_condition_targets_and_sample_metrics_on_the_test_images_themselves(convention_data, tmp_path):
    from src_new.pipeline.evaluate import comparison_sets, condition_targets, evaluation_of, sample_metrics
    cfg, sets = convention_data
    x, raw = sets["test"].images_float.numpy(), sets["test"].raw_conditions.numpy()
    ev = evaluation_of({"images": x.copy(), "conditions": raw}, {"mode": "conditional"}, cfg, sets)
    requested, conventions = condition_targets(ev)
    assert requested is raw and conventions["width_px"]["slope"] == 2 and not conventions["load"]["ok"]
    rows, real, _ = comparison_sets(ev)
    m = sample_metrics(ev, x, rows, real, requested, conventions)
    assert m["condition_mae"] == 0 and m["condition_mae_width"] == 0 and m["geometric_fd"] == pytest.approx(0, abs=1e-4)
    assert set(m["_pieces"]) == set(NAMES) and "iou_generated" not in m
    # unconditional: against random test conditions (a level above 0), said in the notes
    ev = evaluation_of({"images": x.copy()}, {"mode": "unconditional"}, cfg, sets)
    requested, _ = condition_targets(ev)
    assert requested.shape == raw.shape and any("random test conditions" in note for note in ev.notes)
    assert condition_targets(evaluation_of({"images": x.copy()}, {"mode": "interpolate"}, cfg, sets))[0] is None


def test_reference_metrics_score_every_reference_at_the_samples_n(real_sets, tmp_path):
    from src_new.pipeline.evaluate import comparison_sets, condition_targets, load_evaluation, reference_metrics
    cfg, train, test = real_sets
    truth = test.images_float.numpy()
    mask = np.zeros_like(truth)
    mask[:, [0, 3]] = 1
    folder = make_folder(tmp_path / "i", truth, cfg, "inpainting", conditions=test.raw_conditions,
                         arrays={"ground_truth": truth, "mask": mask})
    ev = load_evaluation(folder, max_real=6)
    rows, real, n = comparison_sets(ev)
    refs = reference_metrics(ev, real, n, *condition_targets(ev))
    assert {"real_train", "shift_2px", "shuffled_components", "mean_image"} <= set(refs)
    assert all(refs[k]["n"] == n == 6 for k in ("real_train", "mean_image"))
    assert refs["real_test_own_conditions"]["condition_mae"] == 0 and 0 < refs["nearest_train"]["iou_generated"] < 1
    assert refs["nearest_train"]["condition_mae_truth"] == 0


def bench_module(name):
    import sys

    from conftest import ROOT
    sys.path.insert(0, str(ROOT / "bench"))
    return __import__(name)


def test_ablation_rows_and_evaluate_samples_agree_on_the_same_samples(real_sets, tmp_path):
    """bench/ablation.py measures samples as evaluate.py measures a folder of them: the same FD,
    precision, recall, density, coverage and condition MAE (conditional and unconditional)."""
    measure = bench_module("ablation").measure
    cfg, train, test = real_sets
    sets = {"train": train, "test": test}
    x = train.images_float.numpy()[:len(test)]                 # other designs, half of them mirrored:
    x[::2] = x[::2, :, :, ::-1].copy()                         # each figure away from its best value
    rows = {}
    for mode, conditions in (("conditional", test.raw_conditions.numpy()), ("unconditional", None)):
        extra = {} if conditions is None else {"conditions": conditions}
        m = evaluate_samples(make_folder(tmp_path / mode, x, cfg, mode, **extra), write=False)["metrics"]
        row, real = measure(x.copy(), cfg, sets, conditions)
        assert row["fd"] == m["geometric_fd"] > 0.1 and len(real.images) == m["n"]
        assert {k: v for k, v in row.items() if k != "fd"} == {k: m[k] for k in row if k != "fd"}
        rows[mode] = row
    assert 0 < rows["conditional"]["precision"] < 1 and rows["conditional"]["condition_mae"] > 0
    assert "condition_mae" not in rows["unconditional"]       # random conditions: not a row's figure


def test_ablation_condition_error_uses_the_fitted_conventions(convention_data):
    """Real test images at their own conditions: 0 px under the fitted conventions (the bounding
    box the ablation used before is off by about the section's width)."""
    measure = bench_module("ablation").measure
    cfg, sets = convention_data
    x, raw = sets["test"].images_float.numpy(), sets["test"].raw_conditions.numpy()
    row, _ = measure(x, cfg, sets, raw)
    assert row["condition_mae"] == 0 and row["fd"] == pytest.approx(0, abs=1e-4) and row["coverage"] == 1.0
    bbox = M.condition_error(x, raw[:, :2], ["width_px", "height_px"]).mean()
    assert bbox > 3


def test_the_demo_comparison_fits_one_screen(tmp_path):
    """Four folders of every mode, every metric present: the summary is <= 100 columns and
    <= 40 lines, and --full shows the rest."""
    keys = ["n", "geometric_fd", "geometric_kid", "precision", "recall", "density", "coverage", "pixel_precision",
            "pixel_recall", "piece_count_error", "same_pieces_fraction", "diversity_ratio", "binarization",
            "condition_mae_width", "condition_mae_height", "condition_mae", "iou_bt", "dice_bt", "iou_generated",
            "dice_generated", "overlap_kept_generated", "same_pieces_generated", "piece_error_generated"]
    folders = []
    for name, mode in (("unconditional", "unconditional"), ("conditional_g0", "conditional"),
                       ("conditional_g2", "conditional"), ("inpainting", "inpainting")):
        folder = tmp_path / name
        folder.mkdir()
        metrics = {k: 0.123456789 for k in keys}
        folder.joinpath("metrics.json").write_text(json.dumps({
            "model": "wgan_gp", "mode": mode, "samples": str(folder), "seconds_per_image": 0.0123456,
            "metrics": metrics, "references": {"real_train": metrics}}))
        folders.append(folder)
    table = compare(folders)
    assert len(table.splitlines()) <= 40 and max(map(len, table.splitlines())) <= 100, table
    assert "condition_mae" in table and "iou_generated" in table and "binarization" not in table
    assert "binarization" in compare(folders, full=True)
