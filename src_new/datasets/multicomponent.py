"""Multi-component image dataset: one grayscale PNG per component, conditions from a CSV.

Everything is validated and decoded once, in the constructor: a split is cached as a
uint8 tensor (N, C, H, W), so an epoch costs no PNG decoding and nothing can fail halfway
through training.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

SPLITS = ("train", "test", "all")
_TRUE = {"true", "1", "yes", "train", "1.0"}
_FALSE = {"false", "0", "no", "test", "0.0"}


class ConditionNormalizer:
    """Standardizes raw conditions (e.g. pixels) with train-split mean/std; invertible.

    Stored with the model (``state_dict`` is plain lists) so sampling accepts raw conditions.
    An identity normalizer (mean 0, std 1) is used when the CSV is already normalized.
    """

    def __init__(self, mean, std):
        self.mean = torch.as_tensor(mean, dtype=torch.float32).flatten()
        self.std = torch.as_tensor(std, dtype=torch.float32).flatten().clamp_min(1e-6)

    @classmethod
    def fit(cls, raw):
        raw = torch.as_tensor(raw, dtype=torch.float32)
        if raw.shape[0] < 2 or raw.shape[1] == 0:
            return cls(raw.mean(0) if len(raw) else torch.zeros(raw.shape[1]), torch.ones(raw.shape[1]))
        return cls(raw.mean(0), raw.std(0))

    @classmethod
    def identity(cls, dim):
        return cls(torch.zeros(dim), torch.ones(dim))

    def normalize(self, raw):
        """(B, cond_dim) raw -> normalized, same device/dtype handling as the input."""
        raw = torch.as_tensor(raw, dtype=torch.float32)
        return (raw - self.mean.to(raw.device)) / self.std.to(raw.device)

    def denormalize(self, cond):
        cond = torch.as_tensor(cond, dtype=torch.float32)
        return cond * self.std.to(cond.device) + self.mean.to(cond.device)

    def state_dict(self):
        return {"mean": self.mean.tolist(), "std": self.std.tolist()}

    @classmethod
    def from_state_dict(cls, state):
        return cls(state["mean"], state["std"])


def parse_split_value(value, where):
    """True/False, 1/0, "true"/"false" -> bool (True = train)."""
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    text = str(value).strip().lower()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise ValueError(f"{where}: split value {value!r} is not one of True/False, 1/0, 'true'/'false'")


def read_png(path, expected_hw=None):
    """Decode one PNG (L, LA, RGB or RGBA; converted to grayscale) -> uint8 (H, W)."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as img:
            img.load()
            arr = np.array(img.convert("L"), dtype=np.uint8)
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as err:
        raise ValueError(f"{path}: cannot decode image ({err}); the file is corrupt or "
                         f"truncated, regenerate or remove that sample") from None
    if expected_hw is not None and tuple(arr.shape) != tuple(expected_hw):
        raise ValueError(f"{path}: image is {arr.shape[0]}x{arr.shape[1]} (HxW) but "
                         f"model.image_size is {list(expected_hw)}; resize the data or "
                         f"set model.image_size: [{arr.shape[0]}, {arr.shape[1]}]")
    return arr


class MultiComponentDataset(Dataset):
    """Items: ``(image (C, H, W) float32 in [0, 1], cond (cond_dim,) float32)``.

    data_cfg: the config's ``data`` section. split: train | test | all. image_size: (H, W).
    normalizer: a fitted ConditionNormalizer (pass the train split's to the test split);
    when None, it is fitted here (on this split) or set to identity if ``normalized``.
    """

    def __init__(self, data_cfg, split="train", image_size=(64, 32), normalizer=None, verbose=True):
        import pandas as pd

        if split not in SPLITS:
            raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
        self.split = split
        self.components = list(data_cfg["component_dirs"])
        self.condition_columns = list(data_cfg.get("condition_columns") or [])
        self.image_size = tuple(image_size)
        root = Path(data_cfg["root_dir"])
        csv_path = Path(data_cfg["condition_csv"])
        if not csv_path.is_file() and (root / csv_path.name).is_file():
            csv_path = root / csv_path.name
        if not csv_path.is_file():
            raise FileNotFoundError(
                f"condition CSV not found: {data_cfg['condition_csv']} (data.condition_csv). "
                f"Generate the toy set with `python src_new/scripts/make_toy_data.py --out "
                f"{root}` or point data.root_dir/condition_csv at your data.")
        prefix_col, split_col = data_cfg["prefix_column"], data_cfg.get("split_column")
        # Prefixes are names ("00012" must stay "00012"), never numbers.
        frame = pd.read_csv(csv_path, dtype={prefix_col: str})
        needed = [prefix_col] + self.condition_columns + ([split_col] if split_col else [])
        missing = [c for c in needed if c not in frame.columns]
        if missing:
            raise ValueError(f"{csv_path}: missing column(s) {missing}; available columns: "
                             f"{list(frame.columns)} (check data.prefix_column / "
                             f"condition_columns / split_column)")
        prefixes = frame[prefix_col].astype(str)
        dup = prefixes[prefixes.duplicated()].unique().tolist()
        if dup:
            raise ValueError(f"{csv_path}: duplicate {prefix_col} value(s) {dup[:5]} "
                             f"({len(dup)} in all); every sample needs a unique prefix")
        if split_col:
            is_train = np.array([parse_split_value(v, f"{csv_path} row {i + 2} column '{split_col}'")
                                 for i, v in enumerate(frame[split_col])], dtype=bool)
        else:
            is_train = np.ones(len(frame), dtype=bool)
        keep = {"train": is_train, "test": ~is_train, "all": np.ones(len(frame), bool)}[split]
        frame = frame[keep].reset_index(drop=True)
        if len(frame) == 0:
            raise ValueError(f"{csv_path}: the '{split}' split is empty "
                             f"(column '{split_col}' marks no row as {split})")
        self.prefixes = frame[prefix_col].astype(str).tolist()
        self.raw_conditions = self._read_conditions(frame, csv_path)
        paths = self._find_files(root, data_cfg["filename_pattern"], frame, keep, is_train)
        self.images = self._decode_all(paths, verbose)
        if normalizer is None:
            dim = len(self.condition_columns)
            normalizer = (ConditionNormalizer.identity(dim) if data_cfg.get("normalized", False)
                          else ConditionNormalizer.fit(self.raw_conditions))
        self.normalizer = normalizer
        self.conditions = normalizer.normalize(self.raw_conditions) if self.condition_columns \
            else self.raw_conditions

    def _read_conditions(self, frame, csv_path):
        if not self.condition_columns:
            return torch.zeros(len(frame), 0)
        import pandas as pd

        values = frame[self.condition_columns].apply(pd.to_numeric, errors="coerce")
        bad = values.isna() | ~np.isfinite(values.to_numpy(dtype=float, na_value=np.nan))
        if bad.to_numpy().any():
            row, col = np.argwhere(bad.to_numpy())[0]
            raise ValueError(f"{csv_path}: condition '{self.condition_columns[col]}' of sample "
                             f"'{self.prefixes[row]}' is {frame[self.condition_columns[col]].iloc[row]!r}, "
                             f"not a finite number ({int(bad.to_numpy().sum())} bad value(s) in all)")
        return torch.tensor(values.to_numpy(dtype=np.float32))

    def _find_files(self, root, pattern, frame, keep, is_train):
        """Paths (N, C); either ROOT/<component>/<file> or ROOT/<train|test>/<component>/<file>."""
        flat = root.is_dir() and all((root / c).is_dir() for c in self.components)
        paths, missing = [], []
        for i, prefix in enumerate(self.prefixes):
            row = []
            for comp in self.components:
                name = pattern.format(prefix=prefix, component=comp)
                if flat:
                    path = root / comp / name
                else:
                    train_row = is_train[np.flatnonzero(keep)[i]]
                    path = root / ("train" if train_row else "test") / comp / name
                if not path.is_file():
                    missing.append(str(path))
                row.append(path)
            paths.append(row)
        if missing:
            raise FileNotFoundError(
                f"{len(missing)} image file(s) of the '{self.split}' split are missing under "
                f"{root} (layouts: ROOT/<component>/<file> or ROOT/<train|test>/<component>/<file>, "
                f"data.filename_pattern = {pattern!r}); first: {missing[:3]}")
        return paths

    def _decode_all(self, paths, verbose):
        from tqdm import tqdm

        n, c = len(paths), len(self.components)
        images = torch.empty((n, c, *self.image_size), dtype=torch.uint8)
        rows = tqdm(paths, desc=f"decoding {self.split} split", disable=not verbose or n < 500,
                    leave=False)
        for i, row in enumerate(rows):
            for j, path in enumerate(row):
                images[i, j] = torch.from_numpy(read_png(path, self.image_size))
        return images

    def __len__(self):
        return len(self.images)

    def __getitem__(self, idx):
        return self.images[idx].float().div_(255.0), self.conditions[idx]

    @property
    def images_float(self):
        """All images as float32 (N, C, H, W) in [0, 1]."""
        return self.images.float().div_(255.0)


def build_datasets(cfg, splits=("train", "test"), verbose=True):
    """Datasets for ``splits`` sharing the train split's condition normalizer."""
    data, size = cfg["data"], cfg["model"]["image_size"]
    train = MultiComponentDataset(data, "train", size, verbose=verbose)
    out = {"train": train}
    for split in splits:
        if split != "train":
            out[split] = MultiComponentDataset(data, split, size, train.normalizer, verbose)
    return out
