"""Multi-component image dataset: one grayscale PNG per component, conditions from a CSV
(and the shared pieces of every dataset type: the CSV reader, the cached-split base class).

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


MAX_IMAGE_PIXELS = 50_000_000    # an image file larger than this is refused from its header, undecoded


class ImageTooLarge(ValueError):
    """An image file whose header announces more than MAX_IMAGE_PIXELS pixels."""


def decode_image(path, mode, remedy):
    """Open, check and decode one image file -> PIL image converted to ``mode`` ("L" | "RGB").
    A header announcing more than MAX_IMAGE_PIXELS pixels is refused before decoding (it would
    exhaust memory); an unreadable file is a ValueError ending with ``remedy``."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as img:
            w, h = img.size
            if w * h > MAX_IMAGE_PIXELS:
                raise ImageTooLarge(f"{path}: its header announces {w} x {h} pixels, above the limit of "
                                    f"{MAX_IMAGE_PIXELS:,}; not decoded (remove the file or shrink it)")
            img.load()
            return img.convert(mode)
    except ImageTooLarge:
        raise
    except Image.DecompressionBombError:
        raise ImageTooLarge(f"{path}: its header announces an image far above {MAX_IMAGE_PIXELS:,} pixels; "
                            f"not decoded (remove the file)") from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as err:
        raise ValueError(f"{path}: cannot decode image ({err}); {remedy}") from None


def read_png(path, expected_hw=None):
    """Decode one PNG (L, LA, RGB or RGBA; converted to grayscale) -> uint8 (H, W)."""
    arr = np.array(decode_image(path, "L", "the file is corrupt or truncated, regenerate or remove that sample"),
                   dtype=np.uint8)
    if expected_hw is not None and tuple(arr.shape) != tuple(expected_hw):
        raise ValueError(f"{path}: image is {arr.shape[0]}x{arr.shape[1]} (HxW) but "
                         f"model.image_size is {list(expected_hw)}; resize the data or "
                         f"set model.image_size: [{arr.shape[0]}, {arr.shape[1]}]")
    return arr


def locate_csv(data_cfg):
    """The condition CSV: ``data.condition_csv`` as given, else its name inside ``data.root_dir``."""
    root, csv_path = Path(data_cfg["root_dir"]), Path(data_cfg["condition_csv"])
    if not csv_path.is_file() and (root / csv_path.name).is_file():
        csv_path = root / csv_path.name
    if not csv_path.is_file():
        raise FileNotFoundError(
            f"condition CSV not found: {data_cfg['condition_csv']} (data.condition_csv). "
            f"Generate the toy set with `python src_new/scripts/make_toy_data.py --out "
            f"{root}` or point data.root_dir/condition_csv at your data.")
    return csv_path


def read_split_table(data_cfg, split, condition_columns):
    """Read and check the CSV, keep the rows of ``split``.

    Returns (csv_path, prefixes (list of str), raw conditions (N, k) float32, keep (bool per
    CSV row), is_train (bool per CSV row))."""
    import pandas as pd

    csv_path = locate_csv(data_cfg)
    prefix_col, split_col = data_cfg["prefix_column"], data_cfg.get("split_column")
    # Prefixes are names ("00012" must stay "00012"), never numbers.
    frame = pd.read_csv(csv_path, dtype={prefix_col: str})
    needed = [prefix_col] + list(condition_columns) + ([split_col] if split_col else [])
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
    prefixes = frame[prefix_col].astype(str).tolist()
    return csv_path, prefixes, read_conditions(frame, condition_columns, prefixes, csv_path), keep, is_train


def read_conditions(frame, columns, prefixes, csv_path):
    """The condition columns of ``frame`` -> (N, k) float32, each value checked finite."""
    if not columns:
        return torch.zeros(len(frame), 0)
    import pandas as pd

    values = frame[columns].apply(pd.to_numeric, errors="coerce")
    bad = values.isna() | ~np.isfinite(values.to_numpy(dtype=float, na_value=np.nan))
    if bad.to_numpy().any():
        row, col = np.argwhere(bad.to_numpy())[0]
        raise ValueError(f"{csv_path}: condition '{columns[col]}' of sample "
                         f"'{prefixes[row]}' is {frame[columns[col]].iloc[row]!r}, "
                         f"not a finite number ({int(bad.to_numpy().sum())} bad value(s) in all)")
    return torch.tensor(values.to_numpy(dtype=np.float32))


class CachedImageDataset(Dataset):
    """A split decoded once into ``images`` uint8 (N, C, H, W), with ``prefixes``,
    ``raw_conditions`` and standardized ``conditions`` (N, cond_dim). Items:
    ``(image (C, H, W) float32 in [0, 1], cond (cond_dim,) float32)``."""

    def _set_conditions(self, raw_conditions, normalizer, normalized):
        """Fit the normalizer on this split when none is given (identity if ``normalized``)."""
        self.raw_conditions = raw_conditions
        dim = raw_conditions.shape[1]
        if normalizer is None:
            normalizer = ConditionNormalizer.identity(dim) if normalized else ConditionNormalizer.fit(raw_conditions)
        self.normalizer = normalizer
        self.conditions = normalizer.normalize(raw_conditions) if dim else raw_conditions

    def __len__(self):
        return len(self.images)

    def __getitem__(self, idx):
        return self.images[idx].float().div_(255.0), self.conditions[idx]

    @property
    def images_float(self):
        """All images as float32 (N, C, H, W) in [0, 1]."""
        return self.images.float().div_(255.0)


class MultiComponentDataset(CachedImageDataset):
    """One grayscale PNG per component and sample (``data.type: multicomponent``).

    data_cfg: the config's ``data`` section. split: train | test | all. image_size: (H, W).
    normalizer: a fitted ConditionNormalizer (pass the train split's to the test split);
    when None, it is fitted here (on this split) or set to identity if ``normalized``.
    """

    def __init__(self, data_cfg, split="train", image_size=(64, 32), normalizer=None, verbose=True):
        if split not in SPLITS:
            raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
        self.split = split
        self.components = list(data_cfg["component_dirs"])
        self.condition_columns = list(data_cfg.get("condition_columns") or [])
        self.image_size = tuple(image_size)
        csv_path, self.prefixes, raw, keep, is_train = read_split_table(data_cfg, split, self.condition_columns)
        paths = self._find_files(Path(data_cfg["root_dir"]), data_cfg["filename_pattern"], keep, is_train)
        self.images = self._decode_all(paths, verbose)
        self._set_conditions(raw, normalizer, data_cfg.get("normalized", False))

    def _find_files(self, root, pattern, keep, is_train):
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
