"""Checkpoint I/O shared by every model: atomic writes, safe (weights_only) loads."""
from __future__ import annotations

import os
import pickle
from pathlib import Path

import torch


def save_checkpoint(state, path):
    """Write ``state`` (plain data: tensors, dicts, lists, numbers, strings) atomically.

    The bytes go to a temp file in the same folder, are fsynced, then renamed over ``path``;
    a crash or a full disk at any point leaves the previous file at ``path`` intact.
    """
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    try:
        with open(tmp, "wb") as f:
            torch.save(state, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path


def remove_stale_temp_files(folder):
    """Delete temp files a killed process left behind (``.<name>.tmp<pid>``); returns them."""
    stale = sorted(Path(folder).glob(".*.tmp*"))
    for path in stale:
        path.unlink(missing_ok=True)
    return stale


def load_checkpoint(path, map_location="cpu"):
    """Load with ``weights_only=True``: a file that would run code on load is refused."""
    path = Path(path)
    if not path.is_file():
        hint = ""
        if path.parent.is_dir():
            found = sorted(p.name for p in path.parent.glob("checkpoint_*.pt"))
            hint = f"; checkpoints in {path.parent}: {found}" if found else ""
        raise FileNotFoundError(f"checkpoint not found: {path}{hint}")
    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as err:
        raise ValueError(
            f"{path}: refused to load: it holds objects other than plain tensors/containers "
            f"(weights_only=True). Only load checkpoints you trust; this one is not from this "
            f"code or was tampered with. Details: {str(err).splitlines()[0]}") from None
    except (RuntimeError, EOFError, OSError) as err:
        raise ValueError(f"{path}: not a readable checkpoint (truncated or corrupt?): "
                         f"{str(err).splitlines()[0]}") from None


def check_model_type(ckpt, expected, path):
    """Raise if the checkpoint's config says another model type."""
    found = (ckpt.get("config") or {}).get("model", {}).get("type")
    if found != expected:
        raise ValueError(f"{path}: checkpoint is for model type '{found}', not '{expected}'; "
                         f"use --model {found} (or omit --model to infer it)")


def load_state_strict(module, state, what, path):
    """``module.load_state_dict`` with an error naming the first mismatched tensor."""
    own = module.state_dict()
    for key, value in state.items():
        if key not in own:
            raise ValueError(f"{path}: {what} has unexpected tensor '{key}'; the checkpoint was made "
                             f"with a different architecture config")
        if tuple(own[key].shape) != tuple(value.shape):
            raise ValueError(f"{path}: {what} tensor '{key}' has shape {tuple(value.shape)} in the "
                             f"checkpoint but {tuple(own[key].shape)} in the model built from the config")
    missing = [k for k in own if k not in state]
    if missing:
        raise ValueError(f"{path}: {what} lacks tensor '{missing[0]}' ({len(missing)} missing)")
    module.load_state_dict(state)
