"""Checkpoint I/O shared by every model: atomic writes, safe (weights_only) loads, and one
validation of what a checkpoint holds before any of it is used."""
from __future__ import annotations

import math
import os
import pickle
import warnings
from pathlib import Path

import torch

NOT_OURS = "not a checkpoint of this project"


def write_atomically(path, write, mode="wb"):
    """Call ``write(f)`` on a temp file in ``path``'s folder (opened with ``mode``), fsync it,
    then rename it over ``path``: a crash or a full disk at any point leaves the previous file
    at ``path`` intact (and no temp file behind, but for a kill: ``remove_stale_temp_files``)."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    try:
        with open(tmp, mode, **({} if "b" in mode else {"newline": ""})) as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path


def save_checkpoint(state, path):
    """Write ``state`` (plain data: tensors, dicts, lists, numbers, strings) atomically
    (``write_atomically``)."""
    return write_atomically(path, lambda f: torch.save(state, f))


def remove_stale_temp_files(folder):
    """Delete temp files a killed process left behind (``.<name>.tmp<pid>``); returns them."""
    stale = sorted(Path(folder).glob(".*.tmp*"))
    for path in stale:
        path.unlink(missing_ok=True)
    return stale


def load_checkpoint(path, map_location="cpu", model_type=None, required=()):
    """Load with ``weights_only=True`` (a file that would run code on load is refused), then
    ``validate_checkpoint(ckpt, path, model_type, required)``; every failure is a one-line
    ValueError (FileNotFoundError when there is no file)."""
    path = Path(path)
    if not path.is_file():
        hint = ""
        if path.parent.is_dir():
            found = sorted(p.name for p in path.parent.glob("checkpoint_*.pt"))
            hint = f"; checkpoints in {path.parent}: {found}" if found else ""
        raise FileNotFoundError(f"checkpoint not found: {path}{hint}")
    if path.stat().st_size == 0:   # torch.load fails on it with an IndexError
        raise ValueError(f"{path}: {NOT_OURS}: the file is empty (0 bytes)")
    try:
        with warnings.catch_warnings():   # the error below says it all in one line
            warnings.filterwarnings("ignore", message="Detected pickle protocol")
            ckpt = torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as err:
        # garbage bytes and pickled code objects fail the same way here: say both
        raise ValueError(
            f"{path}: refused to load: {NOT_OURS} ({_unpickler_detail(err)}): either corrupt, or it "
            f"holds objects other than plain tensors/containers (weights_only=True), which could run "
            f"code on load. Only load checkpoints you trust") from None
    except Exception as err:   # torch.load reports damaged files with many error types
        raise ValueError(f"{path}: {NOT_OURS}: not a readable checkpoint (truncated or corrupt?): "
                         f"{type(err).__name__}: {error_summary(err)}") from None
    return validate_checkpoint(ckpt, path, model_type, required)


def error_summary(err):
    """The first sentence of an error's message, for a one-line report (torch's go on for several)."""
    lines = str(err).strip().splitlines()
    return lines[0].split(". ")[0].rstrip(".") if lines else type(err).__name__


def _unpickler_detail(err):
    """What torch's weights-only unpickler objected to, e.g. "Unsupported operand 149"."""
    text = str(err)
    if "WeightsUnpickler error:" in text:
        rest = [line.strip() for line in text.split("WeightsUnpickler error:", 1)[1].splitlines() if line.strip()]
        if rest:
            return rest[0]
    return error_summary(err)


# ---------------------------------------------------------------- validation
# Each check takes (value, ckpt) and returns what is wrong with the value, or None.

def _describe(value):
    text = repr(value)
    return f"a {type(value).__name__} ({text[:40] + '...' if len(text) > 40 else text})"


def _is_int(value):
    return isinstance(value, int) and not isinstance(value, bool)


def _count(value, ckpt):
    if not _is_int(value) or value < 0:
        return f"is {_describe(value)}, expected an integer >= 0"
    return None


def _text(value, ckpt):
    return None if isinstance(value, str) and value else f"is {_describe(value)}, expected a model name"


def _config(value, ckpt):
    if not isinstance(value, dict):
        return f"is {_describe(value)}, expected the run's config (a dict)"
    model = value.get("model")
    if not isinstance(model, dict) or not isinstance(model.get("type"), str):
        return "has no model.type (the config the run was trained with)"
    for section in ("data", "training", "sampling", "paths"):
        if section in value and not isinstance(value[section], dict):
            return f"section '{section}' is {_describe(value[section])}, expected a dict"
    return None


def _cond_dim(ckpt):
    """len(config.data.condition_columns) when the config says it, else None."""
    config = ckpt.get("config")
    columns = (config.get("data") or {}).get("condition_columns") if isinstance(config, dict) else None
    return len(columns) if isinstance(columns, list) else None


def _normalizer(value, ckpt):
    if not isinstance(value, dict) or not {"mean", "std"} <= set(value):
        return f"is {_describe(value)}, expected {{'mean': [...], 'std': [...]}}"
    numbers = {}
    for key in ("mean", "std"):
        v = value[key]
        v = v.tolist() if torch.is_tensor(v) else v
        if not isinstance(v, (list, tuple)) or not all(isinstance(x, (int, float)) and math.isfinite(x) for x in v):
            return f"'{key}' is {_describe(value[key])}, expected a list of finite numbers"
        numbers[key] = v
    dim = _cond_dim(ckpt)
    if len(numbers["mean"]) != len(numbers["std"]) or (dim is not None and len(numbers["mean"]) != dim):
        return (f"has {len(numbers['mean'])} means and {len(numbers['std'])} stds for "
                f"{dim} condition columns (config.data.condition_columns)")
    return None


def _rng_state(value, ckpt):
    if not isinstance(value, dict) or not torch.is_tensor(value.get("torch")):
        return f"is {_describe(value)}, expected {{'torch': <uint8 tensor>, ...}}"
    for name, state in value.items():
        states = state if name == "cuda" and isinstance(state, (list, tuple)) else [state]
        if not all(torch.is_tensor(s) and s.dtype == torch.uint8 and s.dim() == 1 for s in states):
            return f"'{name}' is {_describe(state)}, expected a 1-D uint8 RNG state tensor"
    return None


def _rng_states(value, ckpt):
    if not isinstance(value, list):
        return f"is {_describe(value)}, expected one RNG state per process (a list)"
    problems = [p for p in (_rng_state(v, ckpt) for v in value) if p]
    return problems[0] if problems else None


def _ema_state(value, ckpt):
    if not isinstance(value, dict) or not all(_is_int(value.get(k)) for k in ("step", "num_updates")):
        return f"is {_describe(value)}, expected {{'step': int, 'num_updates': int}}"
    return None


def _history(value, ckpt):
    if not isinstance(value, list) or not all(isinstance(h, dict) for h in value):
        return f"is {_describe(value)}, expected a list of per-epoch dicts"
    return None


def _phase(value, ckpt):
    if (not isinstance(value, dict) or not isinstance(value.get("name"), str)
            or not _is_int(value.get("start_epoch"))):
        return f"is {_describe(value)}, expected {{'name': str, 'start_epoch': int}}"
    epoch = ckpt.get("epoch")
    if _is_int(epoch) and not 0 <= value["start_epoch"] <= epoch:
        return f"starts at epoch {value['start_epoch']}, outside 0..{epoch} (the checkpoint's epoch)"
    return None


def _state_dict(value, ckpt):
    if not isinstance(value, dict) or not value:
        return f"is {_describe(value)}, expected a network's state dict (tensor name -> tensor)"
    wrong = [k for k, v in value.items() if not isinstance(k, str) or not torch.is_tensor(v)]
    if wrong:
        return f"entry '{wrong[0]}' is {_describe(value[wrong[0]])}, expected a tensor"
    return None


def _optimizer(value, ckpt):
    if (not isinstance(value, dict) or not isinstance(value.get("state"), dict)
            or not isinstance(value.get("param_groups"), list)):
        return f"is {_describe(value)}, expected an optimizer state dict ('state', 'param_groups')"
    return None


def _conditions(value, ckpt):
    """The training split's raw conditions, (N, cond_dim) float."""
    dim = _cond_dim(ckpt)
    if not torch.is_tensor(value) or value.dim() != 2 or not value.is_floating_point() \
            or (dim is not None and value.shape[1] != dim):
        got = f"a tensor of shape {tuple(value.shape)}" if torch.is_tensor(value) else _describe(value)
        return f"is {got}, expected float conditions of shape (N, {dim if dim is not None else 'cond_dim'})"
    return None


# What this project writes (Trainer.state_dict): entry -> its check. The entries named in
# MODEL_ENTRIES must be there in every model checkpoint; the others are checked when present
# (older runs lack some: they are loaded with defaults).
ENTRY_CHECKS = {"model_type": _text, "config": _config, "epoch": _count, "global_step": _count,
                "cond_normalizer": _normalizer, "rng_state": _rng_state, "ema_state": _ema_state,
                "history": _history, "rollbacks": _count, "phase": _phase, "rng_state_per_rank": _rng_states,
                "train_conditions": _conditions}
MODEL_ENTRIES = ("model_type", "config", "epoch", "global_step", "cond_normalizer", "rng_state", "ema_state")


def _check_for(key):
    """The check of an entry: by name, else by suffix (networks and optimizers), else None."""
    if key in ENTRY_CHECKS:
        return ENTRY_CHECKS[key]
    if key.endswith("optimizer_state_dict"):
        return _optimizer
    if key.endswith("_state_dict"):
        return _state_dict
    if key.endswith("_version"):
        return _count
    return None


def validate_checkpoint(ckpt, path, model_type=None, required=()):
    """Check ``ckpt`` against what this project writes before any of it is used; returns it.

    Always: a dict whose known entries (``ENTRY_CHECKS``, ``*_state_dict``, ``*_version``)
    have the types and shapes the trainers write. A checkpoint of a model (``model_type``
    given, or a ``model_type`` entry inside) must also hold ``MODEL_ENTRIES``, and the
    ``required`` entries the model's loader names (its networks). ``model_type`` given:
    a checkpoint of another model type is refused first (``check_model_type``).
    Raises ValueError "<path>: not a checkpoint of this project: <what is missing or wrong>".
    """
    if not isinstance(ckpt, dict):
        raise ValueError(f"{path}: {NOT_OURS}: it holds {_describe(ckpt)}, not a dict of named entries")
    problems = []
    for key, value in ckpt.items():
        check = _check_for(key) if isinstance(key, str) else None
        problem = check(value, ckpt) if check is not None else None
        if problem:
            problems.append(f"'{key}' {problem}")
    if problems:
        raise ValueError(f"{path}: {NOT_OURS}: " + "; ".join(problems))
    if model_type is not None and "config" in ckpt:
        check_model_type(ckpt, model_type, path)
    if model_type is not None or "model_type" in ckpt:
        missing = [k for k in (*MODEL_ENTRIES, *required) if k not in ckpt]
        if missing:
            kind = model_type or ckpt["model_type"]
            raise ValueError(f"{path}: {NOT_OURS}: it lacks {', '.join(repr(k) for k in missing)} "
                             f"(training writes {'it' if len(missing) == 1 else 'them'} into every "
                             f"{kind} checkpoint)")
    return ckpt


def check_finite_weights(ckpt, keys, path, show=4):
    """Refuse (ValueError) a checkpoint whose tensors in the state dicts ``keys`` hold NaN or
    inf, naming them as ``<network>.<tensor>``; entries absent from ``ckpt`` are skipped."""
    bad = [f"{key.removesuffix('_state_dict')}.{name}" for key in keys if key in ckpt
           for name, t in ckpt[key].items() if t.is_floating_point() and not torch.isfinite(t).all()]
    if bad:
        more = f" (+{len(bad) - show} more)" if len(bad) > show else ""
        raise ValueError(f"{path}: refused: non-finite weights (NaN/inf) in {len(bad)} tensor(s): "
                         f"{', '.join(bad[:show])}{more}; the run diverged before this checkpoint was "
                         f"written? Use an earlier checkpoint_<epoch>.pt of the run")
    return ckpt


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
