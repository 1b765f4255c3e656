"""The picture path (`make frames`): the synthetic clip is deterministic and reads back through
video_to_frames.py; picture samples are scored with picture figures (pooled-pixel FD/KID,
precision/recall/coverage, nearest-training-frame distances), never with the mask metrics; copies
of training frames are caught by the memorisation check; the grid CLI draws real beside generated."""
import json

import numpy as np
import pytest
from PIL import Image

from src_new.datasets.factory import build_datasets
from src_new.datasets.toy_video import toy_frames, write_toy_video
from src_new.evaluation import metrics as M
from src_new.pipeline.config import auto_complete_config, load_config, validate_config
from src_new.pipeline.evaluate import evaluate_pictures, evaluate_samples, evaluation_of, format_table
from src_new.utils.io import save_component_images

from conftest import run_script

MASK_METRICS = ("geometric_fd", "geometric_kid", "precision", "recall", "coverage", "piece_count_error",
                "same_pieces_fraction", "binarization", "condition_mae", "iou_generated")
PICTURE_METRICS = ("pixel_fd", "pixel_kid", "pixel_precision", "pixel_recall", "pixel_density", "pixel_coverage",
                   "nearest_train_median", "nearest_train_ratio", "near_copy_fraction")


def read_video(path):
    import av

    with av.open(str(path)) as container:
        return np.stack([f.to_ndarray(format="rgb24") for f in container.decode(video=0)])


def test_toy_video_is_deterministic_and_readable(tmp_path):
    a = write_toy_video(tmp_path / "a.mp4", n_frames=30, size=48, seed=3)
    b = write_toy_video(tmp_path / "b.mp4", n_frames=30, size=48, seed=3)
    assert a.read_bytes() == b.read_bytes()                                   # same seed, same file
    drawn = np.stack(list(toy_frames(30, 48, seed=3)))
    assert not np.array_equal(drawn, np.stack(list(toy_frames(30, 48, seed=4))))
    decoded = read_video(a)
    assert decoded.shape == (30, 48, 48, 3)
    assert np.abs(decoded.astype(int) - drawn).mean() < 8                    # close to as drawn (lossy codec)
    assert np.abs(np.diff(drawn.astype(int), axis=0)).mean() > 0.2            # the shapes move
    # coloured shapes: some pixels far from grey, in more than one hue
    rgb = drawn.reshape(-1, 3).astype(int)
    saturated = rgb[rgb.max(1) - rgb.min(1) > 120]
    assert len(saturated) > 0.05 * len(rgb) and len(np.unique(saturated.argmax(1))) >= 2
    done = run_script("video_to_frames.py", a, "--every", "3", "--out", tmp_path / "frames", "--size", "32")
    assert "wrote 10 frames" in done.stdout
    frame = np.asarray(Image.open(tmp_path / "frames" / "frame_000003.png"))
    assert frame.shape == (32, 32, 3)


def test_make_toy_video_cli(tmp_path):
    out = tmp_path / "clip.mp4"
    done = run_script("make_toy_video.py", "--out", out, "--frames", "12", "--size", "32")
    assert out.is_file() and "wrote 12 frames of 32 x 32" in done.stdout
    again = run_script("make_toy_video.py", "--out", out, "--frames", "12", "--size", "32", check=False)
    assert again.returncode != 0 and "already exists; pass --overwrite" in again.stderr
    run_script("make_toy_video.py", "--out", out, "--frames", "12", "--size", "32", "--overwrite")
    for args, message in ((["--size", "33"], "--size 33: use an even number"), (["--frames", "0"], "--frames 0"),
                          (["--shapes", "9"], "--shapes 9: use 1 to 6")):
        bad = run_script("make_toy_video.py", "--out", tmp_path / "x.mp4", *args, check=False)
        assert bad.returncode != 0 and message in bad.stderr and "Traceback" not in bad.stderr
        assert not (tmp_path / "x.mp4").exists()


@pytest.fixture(scope="module")
def frames(tmp_path_factory):
    """A 32 x 32 frames folder of the toy clip (120 frames: 96 train, 24 test) and its config."""
    root = tmp_path_factory.mktemp("frames")
    video = write_toy_video(root / "clip.mp4", n_frames=120, size=64, seed=0)
    run_script("video_to_frames.py", video, "--every", "1", "--out", root / "frames", "--size", "32")
    cfg = load_config("wgan_gp_frames_toy")
    cfg["data"]["root_dir"] = str(root / "frames")
    cfg["model"]["image_size"] = [32, 32]
    cfg = validate_config(auto_complete_config(cfg, verbose=False))
    return cfg, build_datasets(cfg, verbose=False)


def picture_result(cfg, sets, images):
    ev = evaluation_of({"images": images.astype(np.float32)}, {"mode": "unconditional"}, cfg, sets)
    return evaluate_pictures(ev)


def test_picture_samples_get_picture_metrics_and_no_mask_metrics(frames, tmp_path):
    cfg, sets = frames
    rng = np.random.default_rng(0)
    fake = np.clip(sets["test"].images_float.numpy() + 0.05 * rng.standard_normal((24, 3, 32, 32)), 0, 1)
    out = tmp_path / "samples"
    save_component_images(fake, out, cfg["data"]["component_dirs"], condition_columns=[])
    (out / "manifest.json").write_text(json.dumps({"mode": "unconditional", "model": "wgan_gp", "config": cfg}))
    result = evaluate_samples(out)
    assert result["data_type"] == "image_folder" and (out / "metrics.json").is_file()
    metrics = result["metrics"]
    assert set(PICTURE_METRICS) <= set(metrics) and not set(MASK_METRICS) & set(metrics)
    assert all(np.isfinite(metrics[k]) for k in PICTURE_METRICS)
    assert metrics["n"] == 24 and 0 <= metrics["pixel_precision"] <= 1
    assert {"real_train", "shift_2px", "mean_image", "real_test"} <= set(result["references"])
    for name, values in result["references"].items():
        assert not set(MASK_METRICS) & set(values), name
    # noisy test frames are no closer to a training frame than the test frames are
    assert metrics["nearest_train_ratio"] > 0.8
    table = format_table(result)
    assert "pixel_fd" in table and "nearest_train_median" in table and "real_test" in table
    assert "geometric_fd" not in table and "same_pieces" not in table


def test_copies_of_training_frames_are_caught(frames):
    """The property the memorisation check exists for: samples that are training frames sit at
    ~0 from their nearest training frame, far below the held-out test frames; the mean picture
    (a collapse) recalls none of the real frames."""
    cfg, sets = frames
    train = sets["train"].images_float.numpy()
    copies = picture_result(cfg, sets, train[:24])
    test_median = copies["references"]["real_test"]["nearest_train_median"]
    assert test_median > 0.01
    assert copies["metrics"]["nearest_train_median"] < 1e-4 < 0.05 * test_median
    assert copies["metrics"]["near_copy_fraction"] == 1.0
    # shifted frames are new pictures: nowhere near zero
    shifted = np.roll(train[:24], 3, axis=3)
    assert picture_result(cfg, sets, shifted)["metrics"]["nearest_train_ratio"] > 0.5
    refs = copies["references"]
    assert refs["mean_image"]["pixel_recall"] == 0 < refs["real_train"]["pixel_recall"]
    assert refs["real_train"]["nearest_train_median"] < 1e-4                   # the copying reference reads ~0


def test_pooled_features_and_nearest_distances():
    x = np.zeros((2, 3, 8, 8), np.float32)
    x[1, 0, :4, :4] = 1.0                                                    # a red top-left quarter
    f = M.pooled_pixel_features(x, 2)
    assert f.shape == (2, 12) and f[1, 0] == 1.0 and f[1, 1:].sum() == 0
    assert M.nearest_distances(f[1:], f).tolist() == [0.0]
    assert M.nearest_distances(f[:1], f[1:]).tolist() == [1.0]
    with pytest.raises(ValueError, match="size"):
        M.pooled_pixel_features(x, 9)


def test_frames_grid_cli(frames, tmp_path):
    cfg, sets = frames
    out = tmp_path / "samples"
    save_component_images(sets["test"].images_float.numpy()[:6], out, cfg["data"]["component_dirs"],
                          condition_columns=[])
    (out / "manifest.json").write_text(json.dumps({"mode": "unconditional", "config": cfg}))
    png = tmp_path / "docs" / "grid.png"
    done = run_script("frames_grid.py", "--samples", out, "--out", png, "--n", "4", "--ncol", "2")
    assert "4 real training frames beside 4 generated" in done.stdout
    picture = np.asarray(Image.open(png))
    # two panels of 2 x 2 tiles of 32 px (2-px padding, upscaled 2x) under a caption strip
    side = 2 * (2 * 34 + 2)
    assert picture.shape == (14 + side, 2 * side + 12, 3)
    assert picture[14:, side:side + 12].min() == 255                          # the white gap between panels
