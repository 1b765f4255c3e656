"""Ordinary pictures as data (``data.type: image_folder``): a folder of images (PNG, JPEG, ...;
RGB or grayscale, any size), each resized to cover ``model.image_size`` and center-cropped,
so the same models train on photographs or video frames (``video_to_frames.py``).

Channels come from ``data.component_dirs``: ``[red, green, blue]`` (RGB) or ``[gray]``.
Without conditions every image file of ``data.root_dir`` is used and a fixed random
``data.test_fraction`` of them forms the test split. With ``data.condition_columns`` the CSV
(``data.condition_csv``) lists the files: ``data.prefix_column`` holds the file name
(relative to root_dir), plus the condition columns and the optional ``data.split_column``.
"""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import torch

from ..utils.io import PICTURE_CHANNELS
from .multicomponent import SPLITS, CachedImageDataset, decode_image, read_split_table

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp")


def fit_image(img, size_hw):
    """PIL image -> the same picture scaled to cover (H, W) and center-cropped to it."""
    from PIL import Image, ImageOps

    h, w = size_hw
    if img.size == (w, h):
        return img
    return ImageOps.fit(img, (w, h), Image.Resampling.BICUBIC)


def read_image(path, size_hw, channels):
    """Decode one image -> uint8 (channels, H, W): converted to RGB (3) or grayscale (1),
    fitted to ``size_hw``. A clear error for an unreadable file."""
    img = decode_image(path, "RGB" if channels == 3 else "L",
                       f"the file is corrupt or not an image, remove it from {Path(path).parent}")
    arr = np.array(fit_image(img, size_hw), dtype=np.uint8)
    return arr[None] if arr.ndim == 2 else arr.transpose(2, 0, 1)


def list_images(root):
    """Image files directly in ``root``, sorted by name."""
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"image folder not found: {root} (data.root_dir); extract frames with "
                                f"`python src_new/scripts/video_to_frames.py VIDEO --out {root}`")
    files = sorted(p for p in root.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS)
    if not files:
        raise ValueError(f"{root}: no image files ({', '.join(IMAGE_EXTENSIONS)}) in data.root_dir")
    return files


def random_split(n, test_fraction, seed=0):
    """Boolean is_train of n items: a fixed random ``test_fraction`` (at least one item, and at
    least one train item) is the test split."""
    n_test = min(max(1, math.ceil(n * test_fraction)), n - 1)
    is_train = np.ones(n, dtype=bool)
    is_train[np.random.default_rng(seed).permutation(n)[:n_test]] = False
    return is_train


class ImageFolderDataset(CachedImageDataset):
    """Items: ``(image (C, H, W) float32 in [0, 1], cond (cond_dim,) float32)``, C = 3 or 1.

    Same interface as MultiComponentDataset (``images`` uint8 cache, ``prefixes`` = file
    names, ``raw_conditions``, ``conditions``, ``normalizer``)."""

    def __init__(self, data_cfg, split="train", image_size=(64, 64), normalizer=None, verbose=True):
        if split not in SPLITS:
            raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
        self.split = split
        self.components = list(data_cfg["component_dirs"])
        if self.components not in PICTURE_CHANNELS.values():
            raise ValueError(f"data.type image_folder: data.component_dirs = {self.components} must name the "
                             f"picture's channels: {PICTURE_CHANNELS['rgb']} or {PICTURE_CHANNELS['gray']}")
        self.condition_columns = list(data_cfg.get("condition_columns") or [])
        self.image_size = tuple(image_size)
        root = Path(data_cfg["root_dir"])
        if self.condition_columns:
            _, self.prefixes, raw, _, _ = read_split_table(data_cfg, split, self.condition_columns)
            paths = [root / name for name in self.prefixes]
            missing = [str(p) for p in paths if not p.is_file()]
            if missing:
                raise FileNotFoundError(f"{len(missing)} image file(s) named in the CSV's "
                                        f"'{data_cfg['prefix_column']}' column are missing under {root}; "
                                        f"first: {missing[:3]}")
        else:
            files = list_images(root)
            if len(files) < 2:
                raise ValueError(f"{root}: {len(files)} image; a train and a test split need at least 2")
            is_train = random_split(len(files), data_cfg.get("test_fraction", 0.1))
            keep = {"train": is_train, "test": ~is_train, "all": np.ones(len(files), bool)}[split]
            paths = [f for f, k in zip(files, keep) if k]
            self.prefixes = [p.name for p in paths]
            raw = torch.zeros(len(paths), 0)
        self.images = self._decode_all(paths, verbose)
        self._set_conditions(raw, normalizer, data_cfg.get("normalized", False))

    def _decode_all(self, paths, verbose):
        from tqdm import tqdm

        images = torch.empty((len(paths), len(self.components), *self.image_size), dtype=torch.uint8)
        for i, path in enumerate(tqdm(paths, desc=f"decoding {self.split} images", leave=False,
                                      disable=not verbose or len(paths) < 200)):
            images[i] = torch.from_numpy(read_image(path, self.image_size, len(self.components)))
        return images
