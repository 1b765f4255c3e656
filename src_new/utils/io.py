"""Writing and reading sample folders in the dataset layout (so samples read back like data)."""
from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import numpy as np
import torch

# data.type image_folder: data.component_dirs names the picture's channels (and grids show
# such samples as pictures, not as component overlays).
PICTURE_CHANNELS = {"rgb": ["red", "green", "blue"], "gray": ["gray"]}

# Overlay colours (RGB) per component name; unknown names get a colour from the fallback list.
COMPONENT_COLORS = {
    "group_nc": (255, 0, 0),      # carcass: red
    "group_km": (0, 0, 255),      # crown: blue
    "bt": (255, 255, 0),          # belt: yellow
    "fpu": (0, 200, 0),           # sidewall: green
    "tpc": (0, 255, 255),         # tread: cyan
}
_FALLBACK = [(255, 0, 255), (255, 128, 0), (128, 128, 255), (128, 255, 128), (200, 200, 200)]


def to_numpy(images):
    """(N, C, H, W) tensor/array -> float32 numpy in [0, 1]."""
    if isinstance(images, torch.Tensor):
        images = images.detach().float().cpu().numpy()
    return np.clip(np.asarray(images, dtype=np.float32), 0.0, 1.0)


MIRROR_SIDES = ("auto", "left", "right", "none")


def mirror_side(images, setting="auto", threshold=0.5):
    """The side of the image its symmetry axis (mid-plane) is on -> "left" | "right" | "none".

    setting: "left" / "right" / "none" are returned as given (True means "left", False/None
    "none": the old boolean); "auto" detects it from ``images`` (N, C, H, W) in [0, 1]: a
    half-section touches its axis, so the side whose edge column is occupied more often (any
    component above ``threshold``) wins; "none" when neither edge column is occupied."""
    if setting is True:
        return "left"
    if setting is False or setting is None:
        return "none"
    if setting not in MIRROR_SIDES:
        raise ValueError(f"mirror = {setting!r}: use one of {MIRROR_SIDES} (data.mirror)")
    if setting != "auto":
        return setting
    union = (to_numpy(images) > threshold).any(1)              # (N, H, W)
    left, right = float(union[:, :, 0].mean()), float(union[:, :, -1].mean())
    if max(left, right) == 0:
        return "none"
    return "left" if left >= right else "right"


def overlay(sample, component_names, mirror="left"):
    """One sample (C, H, W) in [0, 1] -> uint8 RGB (H, W or 2W, 3) colour composite.

    Components are painted in order, each blended by its intensity. ``mirror`` (the side of
    the symmetry axis: "left" | "right" | "none", or a bool, see ``mirror_side``) adds the
    flipped half on that side so the full cross-section shows. Picture channels
    (``[red, green, blue]`` or ``[gray]``, data.type image_folder) show as the picture
    itself, never mirrored."""
    if list(component_names) in PICTURE_CHANNELS.values():
        rgb = np.repeat(sample, 3, axis=0) if len(sample) == 1 else sample
        return (rgb.transpose(1, 2, 0) * 255).round().astype(np.uint8)
    rgb = np.zeros(sample.shape[1:] + (3,), dtype=np.float32)
    for c, name in enumerate(component_names):
        color = np.array(COMPONENT_COLORS.get(name, _FALLBACK[c % len(_FALLBACK)]), np.float32)
        alpha = sample[c][..., None]
        rgb = rgb * (1 - alpha) + color * alpha
    return mirrored(rgb, mirror_side(sample[None], mirror)).round().astype(np.uint8)


def mirrored(image, side):
    """(H, W, ...) -> (H, W or 2W, ...): the flipped half added on ``side`` ("left" | "right";
    "none": unchanged), so the full cross-section shows."""
    if side == "left":
        return np.concatenate([image[:, ::-1], image], axis=1)
    if side == "right":
        return np.concatenate([image, image[:, ::-1]], axis=1)
    return image


def make_grid(samples, component_names, ncol=8, mirror="auto", pad=2, scale=2):
    """(N, C, H, W) -> uint8 RGB grid image of overlays (white padding), upscaled by ``scale``.
    mirror: see ``mirror_side`` ("auto": detected once from these samples)."""
    samples = to_numpy(samples)
    side = mirror_side(samples, mirror)
    tiles = [overlay(s, component_names, side) for s in samples]
    h, w = tiles[0].shape[:2]
    ncol = max(1, min(ncol, len(tiles)))
    nrow = (len(tiles) + ncol - 1) // ncol
    grid = np.full((nrow * (h + pad) + pad, ncol * (w + pad) + pad, 3), 255, np.uint8)
    for i, tile in enumerate(tiles):
        r, c = divmod(i, ncol)
        grid[pad + r * (h + pad):pad + r * (h + pad) + h, pad + c * (w + pad):pad + c * (w + pad) + w] = tile
    return grid.repeat(scale, 0).repeat(scale, 1)


def save_grid(samples, path, component_names, ncol=8, mirror="auto"):
    """Write ``make_grid``'s image to ``path`` (PNG) and return it, (H, W, 3) uint8. mirror: the
    side of the symmetry axis (``mirror_side``): pass the one detected from the data
    (``data.mirror``); "auto" detects it from ``samples``."""
    from PIL import Image

    grid = make_grid(samples, component_names, ncol, mirror)
    Image.fromarray(grid).save(path)
    return grid


def save_component_images(images, save_dir, component_names, prefix="sample", conditions=None,
                          condition_columns=("width_px", "height_px"), mirror="auto", extra_arrays=None,
                          start_index=0):
    """Write a sample folder readable by MultiComponentDataset and evaluate.py.

    images: (N, C, H, W) in [0, 1]. Writes
      <save_dir>/<component>/<prefix>_<i>_<component>.png   (8-bit grayscale, dataset layout;
                                                             filename_pattern '{prefix}_{component}.png')
      <save_dir>/composite/<prefix>_<i>.png                 (colour overlay, mirrored to 2W about
                                                             the ``mirror`` side, see ``mirror_side``)
      <save_dir>/grid.png                                   (overlay grid of up to 64 samples)
      <save_dir>/dimensions.csv                             (matching, train, measured width/height)
      <save_dir>/samples.npz                                (``images`` float32 + ``extra_arrays``)
    conditions: optional raw (N, k) requested conditions, stored in the npz as ``conditions``.
    Returns the list of sample prefixes.
    """
    import pandas as pd
    from PIL import Image

    from .geometry import measure_dimensions

    arr = to_numpy(images)
    if arr.ndim != 4 or arr.shape[1] != len(component_names):
        raise ValueError(f"save_component_images: expected (N, {len(component_names)}, H, W) images "
                         f"for components {list(component_names)}, got shape {arr.shape}")
    out = Path(save_dir)
    mirror = mirror_side(arr, mirror)
    for name in list(component_names) + ["composite"]:
        (out / name).mkdir(parents=True, exist_ok=True)
    names = [f"{prefix}_{start_index + i:05d}" for i in range(len(arr))]
    quantized = (arr * 255).round().astype(np.uint8)
    for i, name in enumerate(names):
        for c, comp in enumerate(component_names):
            Image.fromarray(quantized[i, c], mode="L").save(out / comp / f"{name}_{comp}.png")
        Image.fromarray(overlay(arr[i], component_names, mirror)).save(out / "composite" / f"{name}.png")
    save_grid(arr[:64], out / "grid.png", component_names, mirror=mirror)
    dims = measure_dimensions(arr)
    table = {"matching": names, "train": [True] * len(names)}
    for k, col in enumerate(list(condition_columns)[:2]):
        table[col] = dims[:, k]
    pd.DataFrame(table).to_csv(out / "dimensions.csv", index=False)
    arrays = {"images": arr}
    if conditions is not None:
        arrays["conditions"] = to_numpy_raw(conditions)
    arrays.update({k: to_numpy_raw(v) for k, v in (extra_arrays or {}).items()})
    np.savez_compressed(out / "samples.npz", **arrays)
    return names


def to_numpy_raw(x):
    """Tensor/array -> float32 numpy without clipping."""
    if isinstance(x, torch.Tensor):
        x = x.detach().float().cpu().numpy()
    return np.asarray(x, dtype=np.float32)


def load_samples(path):
    """Read a ``samples.npz`` (or its folder) -> dict of numeric numpy arrays. Anything else
    (an empty, truncated or corrupt file, another format, object or text arrays) is a
    one-line ValueError "<path>: not a samples file of this project: <what is wrong>"."""
    import zipfile
    import zlib

    from .checkpoint import error_summary

    path = Path(path)
    if path.is_dir():
        path = path / "samples.npz"
    if not path.is_file():
        raise FileNotFoundError(f"samples file not found: {path}")
    not_ours = f"{path}: not a samples file of this project"
    if path.stat().st_size == 0:
        raise ValueError(f"{not_ours}: the file is empty (0 bytes)")
    try:
        data = np.load(path, allow_pickle=False)
        if isinstance(data, np.lib.npyio.NpzFile):
            with data:
                arrays = {k: data[k] for k in data.files}   # reads (and CRC-checks) every member
    except (zipfile.BadZipFile, zlib.error, EOFError, OSError, ValueError) as err:
        # np.load reports truncation and corruption with any of these
        raise ValueError(f"{not_ours}: {error_summary(err)} (truncated or corrupt? sample again)") from None
    if not isinstance(data, np.lib.npyio.NpzFile):
        raise ValueError(f"{not_ours}: a single .npy array, not an .npz archive of named arrays")
    odd = [f"'{k}' ({a.dtype})" for k, a in arrays.items() if not (np.issubdtype(a.dtype, np.number)
                                                                   or a.dtype == bool)]
    if odd:
        raise ValueError(f"{not_ours}: non-numeric array(s) {', '.join(odd)}")
    return arrays


def prepare_output_dir(path, overwrite=False, what="output folder"):
    """Create ``path``; refuse a non-empty existing one unless ``overwrite``; check it is writable."""
    path = Path(path)
    if path.is_dir() and any(path.iterdir()):
        if not overwrite:
            raise FileExistsError(f"{what} {path} already exists and is not empty; choose another "
                                  f"name or pass --overwrite to replace its contents")
        shutil.rmtree(path)   # asked for explicitly: stale files must not mix with the new ones
    try:
        path.mkdir(parents=True, exist_ok=True)
        probe = path / ".write_test"
        probe.write_text("ok")
        probe.unlink()
    except OSError as err:
        raise PermissionError(f"{what} {path} is not writable ({err.strerror}); pick another "
                              f"location (--output_dir / --out)") from None
    return path


def write_json(obj, path):
    """Write JSON atomically (temp file + rename)."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    tmp.write_text(json.dumps(obj, indent=2, default=str))
    os.replace(tmp, path)
