"""Pictures as data (data.type: image_folder) and video frames: any size and colour mode in,
fitted to model.image_size; a synthetic video round trip through video_to_frames.py; the
WGAN-GP trains on the frames and draws RGB grids."""
import numpy as np
import pandas as pd
import pytest
from PIL import Image

from src_new.datasets.image_folder import ImageFolderDataset
from src_new.datasets.factory import build_datasets
from src_new.datasets.video import extract_frames
from src_new.models.wgan_gp.train import WGANGPTrainer
from src_new.pipeline.config import auto_complete_config, load_config, validate_config

from conftest import make_cfg, run_script

RGB, GRAY = ["red", "green", "blue"], ["gray"]


def folder_cfg(root, channels=RGB, **data):
    return {"type": "image_folder", "root_dir": str(root), "component_dirs": channels, "condition_columns": [],
            "test_fraction": 0.25, "prefix_column": "file", "split_column": None, "normalized": False, **data}


def write_pictures(root):
    """8 pictures of mixed size and mode; picture i is a left half of grey level 30 i."""
    root.mkdir(parents=True, exist_ok=True)
    for i in range(8):
        w, h = (40, 20) if i % 2 else (24, 48)
        arr = np.zeros((h, w, 3), np.uint8)
        arr[:, : w // 2] = 30 * i
        mode = ("RGB", "L", "RGBA")[i % 3]
        img = Image.fromarray(arr).convert(mode)
        img.save(root / f"pic_{i}.{'jpg' if mode == 'L' else 'png'}", quality=95)
    (root / "notes.txt").write_text("not an image: ignored")
    return root


def test_folder_of_mixed_pictures(tmp_path):
    root = write_pictures(tmp_path / "pics")
    splits = {s: ImageFolderDataset(folder_cfg(root, GRAY), s, (16, 16), verbose=False) for s in ("train", "test", "all")}
    assert len(splits["all"]) == 8 and len(splits["test"]) == 2 and len(splits["train"]) == 6
    assert set(splits["train"].prefixes).isdisjoint(splits["test"].prefixes)
    image, cond = splits["all"][3]
    assert image.shape == (1, 16, 16) and cond.shape == (0,)
    # scaled to cover 16x16 and center-cropped: picture 3 (40x20 -> 32x16 -> crop) keeps its half edge
    left, right = image[0, :, :6].mean() * 255, image[0, :, 10:].mean() * 255
    assert abs(left - 90) < 3 and right < 3
    rgb = ImageFolderDataset(folder_cfg(root), "all", (16, 16), verbose=False)
    assert rgb.images.shape == (8, 3, 16, 16)
    again = ImageFolderDataset(folder_cfg(root, GRAY), "test", (16, 16), verbose=False)
    assert again.prefixes == splits["test"].prefixes                           # a fixed split


def test_folder_with_a_conditions_csv(tmp_path):
    root = write_pictures(tmp_path / "pics")
    names = sorted(p.name for p in root.glob("pic_*"))
    pd.DataFrame({"file": names, "brightness": np.arange(8.0), "train": [1] * 6 + [0] * 2}).to_csv(
        root / "conds.csv", index=False)
    cfg = folder_cfg(root, condition_columns=["brightness"], condition_csv=str(root / "conds.csv"),
                     split_column="train")
    train = ImageFolderDataset(cfg, "train", (16, 16), verbose=False)
    test = ImageFolderDataset(cfg, "test", (16, 16), train.normalizer, verbose=False)
    assert train.prefixes == names[:6] and test.raw_conditions[:, 0].tolist() == [6.0, 7.0]
    assert abs(float(train.conditions.mean())) < 1e-6                          # standardized on train


def test_image_folder_errors(tmp_path):
    root = write_pictures(tmp_path / "pics")
    with pytest.raises(ValueError, match=r"must name the picture's channels"):
        make_cfg(tmp_path, data=folder_cfg(root, ["group_nc", "bt", "tpc"]))
    with pytest.raises(FileNotFoundError, match="image folder not found.*video_to_frames"):
        ImageFolderDataset(folder_cfg(tmp_path / "nowhere"), verbose=False)
    (root / "pic_0.png").write_bytes(b"\x89PNG\r\n\x1a\n broken")
    with pytest.raises(ValueError, match=r"pic_0.png: cannot decode image"):
        ImageFolderDataset(folder_cfg(root), "all", (16, 16), verbose=False)


def test_frames_config_resolves():
    cfg = validate_config(auto_complete_config(load_config("wgan_gp_frames"), verbose=False))
    assert cfg["model"]["channels"] == 3 and cfg["model"]["cond_dim"] == 0
    assert cfg["model"]["image_size"] == [200, 200] and all(s % 8 == 0 for s in cfg["model"]["image_size"])


def write_video(path, n=40, size=(48, 64)):
    """An mpeg4 video whose frame i has red level 6 i and a green left half (PyAV itself)."""
    import av

    with av.open(str(path), "w") as container:
        stream = container.add_stream("mpeg4", rate=10)
        stream.height, stream.width = size
        stream.pix_fmt = "yuv420p"
        for i in range(n):
            frame = np.zeros((*size, 3), np.uint8)
            frame[..., 0] = 6 * i
            frame[:, : size[1] // 2, 1] = 200
            for packet in stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)


def test_video_frames_train_the_wgan(tmp_path):
    video = tmp_path / "clip.mp4"
    write_video(video)
    frames = tmp_path / "frames"
    done = run_script("video_to_frames.py", video, "--every", "2", "--out", frames, "--size", "32")
    assert "wrote 20 frames" in done.stdout
    files = sorted(frames.glob("*.png"))
    assert [f.name for f in files[:3]] == ["frame_000000.png", "frame_000002.png", "frame_000004.png"]
    assert len(files) == 20
    for f in files[::6]:
        arr = np.asarray(Image.open(f))
        index = int(f.stem.split("_")[1])
        assert arr.shape == (32, 32, 3)
        assert abs(arr[..., 0].mean() - 6 * index) < 8, f.name                # this frame's red level
        assert arr[4:-4, 2:10, 1].mean() > 180 and arr[4:-4, 22:30, 1].mean() < 20   # green left half
    cfg = make_cfg(tmp_path, tmp_path / "out", data=folder_cfg(frames, test_fraction=0.2),
                   model={"image_size": [32, 32]}, training={"batch_size": 4, "epochs": 1})
    assert cfg["model"]["channels"] == 3 and cfg["model"]["cond_dim"] == 0
    assert len(build_datasets(cfg, verbose=False)["train"]) == 16
    run_dir = WGANGPTrainer(cfg, verbose=False).run()
    losses = pd.read_csv(run_dir / "losses.csv")
    assert len(losses) == 2 and np.isfinite(losses["critic_loss"]).all()       # two steps of 2 x 4 images
    grid = np.asarray(Image.open(run_dir / "samples_epoch_0001.png"))
    # 32 RGB samples, 8 per row, 32x32 each (not mirrored), 2-px padding, upscaled 2x
    assert grid.shape == (2 * (4 * 34 + 2), 2 * (8 * 34 + 2), 3)
    tile = grid[4:68, 4:68].astype(int)
    assert np.abs(tile[..., 0] - tile[..., 1]).max() > 0                      # colour, not a grey overlay
    out = tmp_path / "samples"
    run_script("sample.py", "--checkpoint", run_dir / "checkpoint_latest.pt", "--mode", "unconditional",
               "--num_samples", "4", "--out", out, "--device", "cpu")
    assert {p.name for p in out.iterdir()} >= {"red", "green", "blue", "composite", "grid.png", "samples.npz"}
    picture = Image.open(next((out / "composite").glob("*.png")))
    assert picture.mode == "RGB" and picture.size == (32, 32)                  # the picture, not mirrored


def test_unreadable_video_is_a_clear_error(tmp_path):
    bad = tmp_path / "notes.mp4"
    bad.write_text("this is not a video")
    done = run_script("video_to_frames.py", bad, "--out", tmp_path / "f", check=False)
    assert done.returncode != 0 and "notes.mp4: cannot read it as a video" in done.stderr
    with pytest.raises(FileNotFoundError, match="video not found"):
        extract_frames(tmp_path / "missing.mp4", tmp_path / "f")
