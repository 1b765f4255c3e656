"""The dataset a config names (``data.type``), and the train/test pair sharing one normalizer."""
from __future__ import annotations

from .image_folder import ImageFolderDataset
from .multicomponent import MultiComponentDataset

# data.type -> class: multicomponent (one PNG per component) | image_folder (pictures)
DATASET_CLASSES = {"multicomponent": MultiComponentDataset, "image_folder": ImageFolderDataset}
DATA_TYPES = tuple(DATASET_CLASSES)


def make_dataset(data_cfg, split, image_size, normalizer=None, verbose=True):
    """The dataset class ``data.type`` names: multicomponent (default) or image_folder."""
    kind = data_cfg.get("type", "multicomponent")
    if kind not in DATASET_CLASSES:
        raise ValueError(f"data.type = {kind!r}: use one of {list(DATA_TYPES)}")
    return DATASET_CLASSES[kind](data_cfg, split, image_size, normalizer, verbose)


def build_datasets(cfg, splits=("train", "test"), verbose=True):
    """Datasets for ``splits`` sharing the train split's condition normalizer."""
    data, size = cfg["data"], cfg["model"]["image_size"]
    train = make_dataset(data, "train", size, verbose=verbose)
    out = {"train": train}
    for split in splits:
        if split != "train":
            out[split] = make_dataset(data, split, size, train.normalizer, verbose)
    return out
