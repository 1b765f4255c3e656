"""Property-based fuzzing of every input the project reads (hypothesis): configs, condition CSVs,
PNG components, checkpoints, samples files and command lines. Whatever the input, the entry
points answer with the project's own one-line error (``SystemExit("error: ...")`` from a script,
ValueError / FileNotFoundError from the library) or succeed, and the input file is left as it was.

The examples are bounded so the suite stays well under a minute of ``make test``; a longer
campaign: ``FUZZ_PROFILE=campaign python -m pytest tests/test_fuzz.py`` (25x the examples, about 10 minutes).
"""
import copy
import hashlib
import io
import math
import os

import numpy as np
import pytest
import torch
import yaml
from hypothesis import HealthCheck, given, settings, strategies as st
from PIL import Image

from conftest import TINY_WGAN, make_cfg, write_yaml
from test_scripts import load_cli

settings.register_profile("quick", max_examples=20, deadline=None, derandomize=True,
                          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
settings.register_profile("campaign", max_examples=500, deadline=None,
                          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
settings.load_profile(os.environ.get("FUZZ_PROFILE", "quick"))
EXAMPLES = settings().max_examples      # the slow targets (a model loaded per example) run fewer
LIBRARY_ERRORS = (ValueError, FileNotFoundError)

# Hostile scalars: wrong types, non-finite and huge numbers, empty and odd strings, containers.
scalars = st.one_of(
    st.none(), st.booleans(), st.integers(-10 ** 12, 10 ** 12),
    st.floats(allow_nan=True, allow_infinity=True), st.sampled_from([1e25, -1.0, 0, 0.5, 8.5, 10 ** 7]),
    st.text(max_size=12), st.sampled_from(["abc", "", "{nope}", "10", "../..", "null"]))
values = st.recursive(scalars, lambda inner: st.one_of(st.lists(inner, max_size=4),
                                                       st.dictionaries(st.text(max_size=6), inner, max_size=3)),
                      max_leaves=6)


def digest(path):
    return hashlib.sha256(path.read_bytes()).hexdigest()


def cli_answers(main, argv):
    """Run a script's main in-process: return None on success, the message of its SystemExit
    otherwise; any other exception (a traceback a user would see) fails the test."""
    try:
        main(argv)
    except SystemExit as stop:
        if stop.code in (0, None):
            return None
        message = str(stop.code)
        assert message == "2" or message.startswith("error:"), message   # 2: argparse's usage line
        return message
    return None


# ------------------------------------------------------------------ configs
def leaves(tree, prefix=()):
    for key, value in tree.items():
        if isinstance(value, dict):
            yield from leaves(value, prefix + (key,))
        else:
            yield prefix + (key,)


CONFIG_PATHS = sorted(leaves(TINY_WGAN))


@st.composite
def mutated_configs(draw):
    cfg = copy.deepcopy(TINY_WGAN)
    for _ in range(draw(st.integers(1, 3))):
        path = draw(st.sampled_from(CONFIG_PATHS + [("model", "unknown_key"), ("model",), ("training",)]))
        node = cfg
        for key in path[:-1]:
            node = node.setdefault(key, {}) if isinstance(node, dict) else {}
        if isinstance(node, dict):
            if draw(st.booleans()):
                node[path[-1]] = draw(values)
            else:
                node.pop(path[-1], None)
    return cfg


@given(cfg=mutated_configs())
def test_fuzz_train_config(cfg, toy_root, tmp_path, monkeypatch):
    """train.py on a mutated config: refused in one line, or a valid config reaches the trainer."""
    import src_new.models.ddpm.train as ddpm_train
    import src_new.models.wgan_gp.train as wgan_train
    reached = []
    for module in (wgan_train, ddpm_train):      # a config that passes is recorded, not trained
        monkeypatch.setattr(module, "train", lambda cfg, **kw: reached.append(cfg))
    if isinstance(cfg.get("data"), dict):
        cfg["data"].setdefault("root_dir", str(toy_root))
    cfg["paths"] = {"output_dir": str(tmp_path / "out")}
    path = tmp_path / "cfg.yaml"
    path.write_text(yaml.safe_dump(cfg))
    before = digest(path)
    answer = cli_answers(load_cli("train").main, ["--config", str(path)])
    assert digest(path) == before
    assert (answer is None) == bool(reached)


@given(text=st.text(max_size=200) | st.sampled_from([
    "a: &a [1, 2]\nb: *a\n", "model: [1, 2]\n", "- 1\n- 2\n", "model: {dim: !!python/object:os.system ls}\n",
    "model:\n  dim: 8\n  dim: 9\n", "\x00\x01", "model: {type: wgan_gp}\n" * 3]))
def test_fuzz_train_config_text(text, tmp_path):
    """train.py on arbitrary YAML text (aliases, tags, duplicates, binary): one line, no hang."""
    path = tmp_path / "cfg.yaml"
    path.write_text(text)
    before = digest(path)
    assert cli_answers(load_cli("train").main, ["--config", str(path)]) is not None
    assert digest(path) == before


# ------------------------------------------------------------------ condition CSVs
@given(rows=st.lists(st.tuples(st.sampled_from(["", "x", "nan", "-3", "0", "1e30", "24", "inf"]),
                               st.sampled_from(["", "nan", "-1", "0", "48", "1e300", "abc"])), min_size=1, max_size=5),
       drop_column=st.sampled_from([None, "width_px", "height_px", "matching", "train"]))
def test_fuzz_condition_csv(rows, drop_column, toy_root, tmp_path):
    """A conditions CSV with broken values or columns: a ValueError naming it, or datasets."""
    import pandas as pd
    from src_new.datasets.factory import build_datasets
    table = pd.read_csv(toy_root / "dimensions.csv").astype({"width_px": object, "height_px": object})
    for i, (width, height) in enumerate(rows):
        table.loc[i % len(table), "width_px"] = width
        table.loc[i % len(table), "height_px"] = height
    if drop_column:
        table = table.drop(columns=[drop_column])
    csv = tmp_path / "dimensions.csv"
    table.to_csv(csv, index=False)
    before = digest(csv)
    cfg = make_cfg(toy_root, tmp_path / "out", data={"condition_csv": str(csv)})
    try:
        sets = build_datasets(cfg, verbose=False)
        assert torch.isfinite(sets["train"].conditions).all()
    except LIBRARY_ERRORS:
        pass
    assert digest(csv) == before


# ------------------------------------------------------------------ PNG components
@st.composite
def png_bytes(draw):
    kind = draw(st.sampled_from(["random", "truncated", "valid", "huge_header"]))
    if kind == "random":
        return draw(st.binary(max_size=64))
    buf = io.BytesIO()
    mode = draw(st.sampled_from(["L", "LA", "RGB", "RGBA", "1", "I;16", "P"]))
    h, w = draw(st.integers(1, 80)), draw(st.integers(1, 80))
    Image.new(mode, (w, h)).save(buf, format="PNG")
    data = buf.getvalue()
    if kind == "truncated":
        return data[:draw(st.integers(0, len(data) - 1))]
    if kind == "huge_header":      # IHDR width/height fields (bytes 16-24) announce 30000 x 30000
        return data[:16] + (30000).to_bytes(4, "big") * 2 + data[24:]
    return data


@given(data=png_bytes())
def test_fuzz_png(data, tmp_path):
    """Any bytes as a component PNG: a ValueError in our words, or an (H, W) uint8 array."""
    from src_new.datasets.multicomponent import read_png
    path = tmp_path / "component.png"
    path.write_bytes(data)
    try:
        arr = read_png(path)
        assert arr.dtype == np.uint8 and arr.ndim == 2
    except LIBRARY_ERRORS:
        pass
    assert path.read_bytes() == data


# ------------------------------------------------------------------ checkpoints and sampling flags
@pytest.fixture(scope="module")
def trained(tmp_path_factory, toy_root):
    """A trained tiny WGAN-GP checkpoint: (path, its bytes, its contents)."""
    from src_new.models.wgan_gp.train import WGANGPTrainer
    from src_new.utils.checkpoint import load_checkpoint
    path = WGANGPTrainer(make_cfg(toy_root, tmp_path_factory.mktemp("fuzz")), verbose=False).run() / "checkpoint_latest.pt"
    return path, path.read_bytes(), load_checkpoint(path)


@st.composite
def mutated_checkpoints(draw, ckpt):
    """A checkpoint dict with keys dropped or replaced, tensors reshaped or poisoned."""
    ckpt = copy.copy(ckpt)
    for _ in range(draw(st.integers(1, 3))):
        key = draw(st.sampled_from(sorted(ckpt)))
        action = draw(st.sampled_from(["drop", "replace", "tensor"]))
        if action == "drop":
            ckpt.pop(key)
        elif action == "replace":
            ckpt[key] = draw(st.one_of(scalars, st.just({}), st.just([])))
        elif isinstance(ckpt[key], dict) and ckpt[key]:
            inner = dict(ckpt[key])
            name = draw(st.sampled_from(sorted(inner)))
            inner[name] = draw(st.sampled_from([torch.zeros(3), torch.full((2, 2), math.nan), "text", None]))
            ckpt[key] = inner
    return ckpt


@settings(max_examples=EXAMPLES * 3 // 5)
@given(data=st.data())
def test_fuzz_checkpoint(data, trained, tmp_path):
    """sample.py on a damaged checkpoint (keys, types, NaN weights, truncated or random bytes)."""
    path, raw, ckpt = trained
    kind = data.draw(st.sampled_from(["dict", "truncated", "random"]))
    bad = tmp_path / "bad.pt"
    if kind == "dict":
        torch.save(data.draw(mutated_checkpoints(ckpt)), bad)
    elif kind == "truncated":
        bad.write_bytes(raw[:data.draw(st.integers(0, len(raw) - 1))])
    else:
        bad.write_bytes(data.draw(st.binary(max_size=256)))
    before = digest(bad)
    cli_answers(load_cli("sample").main, ["--checkpoint", str(bad), "--num_samples", "4", "--batch_sz", "4",
                                          "--out", str(tmp_path / "s"), "--overwrite"])
    assert digest(bad) == before


FLAG_VALUES = {
    "--mode": st.sampled_from(["unconditional", "conditional", "inpainting", "bogus", ""]),
    "--num_samples": st.sampled_from(["-1", "0", "3", "8", "1e3", "nan", "100000000000", "x"]),
    "--batch_sz": st.sampled_from(["0", "-4", "2", "8", "1000000", "2.5"]),
    "--guidance_scale": st.sampled_from(["nan", "inf", "-1", "0", "1.5", "1e30", "x"]),
    "--per_condition": st.sampled_from(["0", "-2", "1", "2", "3"]),
    "--cond": st.sampled_from(["24,48", "1e30,1e30", "nan,1", "1", "a,b", "-5,-5", ""]),
    "--components": st.sampled_from(["fpu", "nope", "group_nc"]),
    "--inpaint_steps": st.sampled_from(["0", "-1", "2", "x"]),
    "--truncation": st.sampled_from(["0", "-1", "0.5", "nan", "1e9"]),
    "--seed": st.sampled_from(["0", "-1", "x", "99999999999999999999"]),
    "--postprocess": st.sampled_from(["clean", "none", "bogus"]),
}


@settings(max_examples=EXAMPLES * 5 // 4)
@given(flags=st.dictionaries(st.sampled_from(sorted(FLAG_VALUES)), st.none(), max_size=4), data=st.data())
def test_fuzz_sample_flags(flags, data, trained, tmp_path):
    """sample.py with hostile flag values: argparse's usage line, our one-line error, or samples."""
    path, raw, _ = trained
    argv = ["--checkpoint", str(path), "--out", str(tmp_path / "s"), "--overwrite"]
    for flag in flags:
        argv += [flag, data.draw(FLAG_VALUES[flag])]
    if "--num_samples" not in flags:
        argv += ["--num_samples", "4"]
    cli_answers(load_cli("sample").main, argv)
    assert path.read_bytes() == raw


# ------------------------------------------------------------------ samples files
@pytest.fixture(scope="module")
def samples_folder(tmp_path_factory, trained):
    path, _, _ = trained
    folder = tmp_path_factory.mktemp("fuzz_samples") / "s"
    load_cli("sample").main(["--checkpoint", str(path), "--num_samples", "8", "--batch_sz", "8", "--out", str(folder)])
    return folder


@given(data=st.data())
def test_fuzz_samples_npz(data, samples_folder, tmp_path):
    """evaluate.py on a samples folder whose samples.npz is truncated, random or mis-shaped."""
    import shutil
    folder = tmp_path / "s"
    shutil.rmtree(folder, ignore_errors=True)
    shutil.copytree(samples_folder, folder)
    npz = folder / "samples.npz"
    raw = npz.read_bytes()
    kind = data.draw(st.sampled_from(["truncated", "random", "arrays"]))
    if kind == "truncated":
        npz.write_bytes(raw[:data.draw(st.integers(0, len(raw) - 1))])
    elif kind == "random":
        npz.write_bytes(data.draw(st.binary(max_size=128)))
    else:
        shape = data.draw(st.lists(st.integers(0, 6), min_size=0, max_size=5))
        fill = data.draw(st.sampled_from([0.0, math.nan, 2.0, -1.0]))
        np.savez(npz, images=np.full(shape, fill, dtype=np.float32))
    before = digest(npz)
    cli_answers(load_cli("evaluate").main, ["--samples", str(folder)])
    assert digest(npz) == before
