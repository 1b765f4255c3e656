"""Hostile input files: every script refuses a file that is not a checkpoint (or samples file)
of this project with one line naming what is missing or wrong, no traceback, and leaves the
file as it was; NaN weights are refused before sampling."""
import hashlib
import json

import numpy as np
import pytest
import torch

from src_new.utils.checkpoint import load_checkpoint, save_checkpoint, validate_checkpoint
from src_new.utils.io import load_samples, save_component_images

from conftest import make_cfg, run_script


@pytest.fixture(scope="module")
def good(tmp_path_factory, toy_root):
    """A trained tiny WGAN-GP: (checkpoint path, its contents)."""
    from src_new.models.wgan_gp.train import WGANGPTrainer
    out = tmp_path_factory.mktemp("good")
    path = WGANGPTrainer(make_cfg(toy_root, out), verbose=False).run() / "checkpoint_latest.pt"
    return path, load_checkpoint(path)


@pytest.fixture(scope="module")
def samples_dir(tmp_path_factory, good):
    """A samples folder (unconditional, 8 real-looking images) evaluate.py can read."""
    _, ckpt = good
    folder = tmp_path_factory.mktemp("samples") / "s"
    names = ckpt["config"]["data"]["component_dirs"]
    images = (torch.rand(8, len(names), 64, 32) > 0.5).float()
    save_component_images(images, folder, names)
    (folder / "manifest.json").write_text(json.dumps({"mode": "unconditional", "config": ckpt["config"]}))
    return folder


def without(key):
    return lambda c: {k: v for k, v in c.items() if k != key}


def nan_ema(c):
    ema = {k: v * float("nan") if v.is_floating_point() else v for k, v in c["ema_generator_state_dict"].items()}
    return dict(c, ema_generator_state_dict=ema)


# name -> (how the file is made from the good checkpoint: a function of its contents, or raw bytes
# from its bytes; the item the message must name)
CASES = {
    "zero_bytes": (lambda raw: b"", "the file is empty (0 bytes)"),
    "truncated": (lambda raw: raw[:len(raw) // 2], "not a readable checkpoint (truncated or corrupt?)"),
    "no_cond_normalizer": (without("cond_normalizer"), "it lacks 'cond_normalizer'"),
    "no_ema_generator": (without("ema_generator_state_dict"), "it lacks 'ema_generator_state_dict'"),
    "no_global_step": (without("global_step"), "it lacks 'global_step'"),
    "epoch_is_text": (lambda c: dict(c, epoch="3"), "'epoch' is a str ('3'), expected an integer >= 0"),
    "config_is_text": (lambda c: dict(c, config="wgan_gp"), "'config' is a str ('wgan_gp'), expected the run's config"),
}
RAW = {"zero_bytes", "truncated"}
NOT_OURS = "not a checkpoint of this project: "


def make_file(good, name, folder):
    path, ckpt = good
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / "checkpoint_latest.pt"
    make = CASES[name][0] if name in CASES else nan_ema
    if name in RAW:
        target.write_bytes(make(path.read_bytes()))
    else:
        save_checkpoint(make(ckpt), target)
    return target


def digest(path):
    return hashlib.sha256(path.read_bytes()).hexdigest()


def assert_one_line_error(proc, message):
    assert proc.returncode != 0
    assert "Traceback" not in proc.stderr, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0], proc.stderr


@pytest.mark.parametrize("name", sorted(CASES))
def test_sample_and_resume_refuse_with_one_line(good, tmp_path, name):
    bad = make_file(good, name, tmp_path / "run")
    before, listing = digest(bad), sorted(p.name for p in bad.parent.iterdir())
    message = NOT_OURS + CASES[name][1]
    proc = run_script("sample.py", "--checkpoint", bad, "--out", tmp_path / "s", check=False)
    assert_one_line_error(proc, message)
    assert not (tmp_path / "s").exists()
    proc = run_script("train.py", "--resume", bad, "--epochs", 2, check=False)
    assert_one_line_error(proc, message)
    assert digest(bad) == before and sorted(p.name for p in bad.parent.iterdir()) == listing


@pytest.mark.parametrize("name", ["zero_bytes", "truncated", "config_is_text", "no_global_step"])
def test_evaluate_config_and_plot_run_refuse_with_one_line(good, samples_dir, tmp_path, name):
    bad = make_file(good, name, tmp_path / "run")
    before = digest(bad)
    message = NOT_OURS + CASES[name][1]
    proc = run_script("evaluate.py", "--samples", samples_dir, "--config", bad, "--no_references", check=False)
    assert_one_line_error(proc, message)
    # plot_run.py reads the evaluations of the run's checkpoint_latest.pt
    (bad.parent / "losses.csv").write_text("step,epoch,critic_loss\n1,1,0.5\n")
    proc = run_script("plot_run.py", bad.parent, check=False)
    assert_one_line_error(proc, message)
    assert digest(bad) == before and not (bad.parent / "curves.png").exists()


def test_nan_weights_are_refused_for_sampling_naming_the_tensors(good, tmp_path):
    bad = make_file(good, "nan_ema", tmp_path / "run")
    before = digest(bad)
    proc = run_script("sample.py", "--checkpoint", bad, "--out", tmp_path / "s", check=False)
    assert_one_line_error(proc, "refused: non-finite weights (NaN/inf) in")
    first = next(k for k, v in good[1]["ema_generator_state_dict"].items() if v.is_floating_point())
    assert f"ema_generator.{first}" in proc.stderr
    assert not (tmp_path / "s").exists() and digest(bad) == before


@pytest.mark.parametrize("damage, message", [
    (lambda raw: raw[:len(raw) // 2], "not a samples file of this project: "),
    (lambda raw: b"", "not a samples file of this project: the file is empty (0 bytes)"),
])
def test_evaluate_refuses_a_damaged_samples_file(samples_dir, tmp_path, damage, message):
    folder = tmp_path / "s"
    folder.mkdir()
    (folder / "manifest.json").write_bytes((samples_dir / "manifest.json").read_bytes())
    npz = folder / "samples.npz"
    npz.write_bytes(damage((samples_dir / "samples.npz").read_bytes()))
    before = digest(npz)
    proc = run_script("evaluate.py", "--samples", folder, "--no_references", check=False)
    assert_one_line_error(proc, message)
    assert digest(npz) == before and not (folder / "metrics.json").exists()


def test_shapes_and_nested_types_are_checked(good, tmp_path):
    path, ckpt = good
    cases = {
        "cond_normalizer": (dict(ckpt, cond_normalizer={"mean": [1.0], "std": [1.0]}),
                            "has 1 means and 1 stds for 2 condition columns"),
        "train_conditions": (dict(ckpt, train_conditions=torch.zeros(4, 3)), "expected float conditions of shape (N, 2)"),
        "rng_state": (dict(ckpt, rng_state={"torch": torch.zeros(3)}), "expected a 1-D uint8 RNG state tensor"),
        "generator_state_dict": (dict(ckpt, generator_state_dict={"w": [1, 2]}), "entry 'w' is a list"),
        "phase": (dict(ckpt, phase={"name": "gan", "start_epoch": 9}), "outside 0..1"),
    }
    for key, (bad, message) in cases.items():
        with pytest.raises(ValueError) as err:
            validate_checkpoint(bad, path)
        assert f"{NOT_OURS}'{key}' " in str(err.value) and message in str(err.value), (key, str(err.value))
    assert validate_checkpoint(ckpt, path) is ckpt
    # a dict that does not claim to be a model checkpoint is only type-checked
    assert validate_checkpoint({"epoch": 1, "w": torch.ones(2)}, path)["epoch"] == 1
    with pytest.raises(ValueError, match="it lacks 'unet_state_dict'"):
        validate_checkpoint(dict(ckpt, config={**ckpt["config"], "model": {"type": "ddpm"}}), path, "ddpm",
                            ("unet_state_dict",))


def test_load_samples_refuses_other_arrays(tmp_path):
    np.save(tmp_path / "one.npy", np.zeros(3))
    (tmp_path / "one.npy").rename(tmp_path / "one.npz")
    with pytest.raises(ValueError, match="not a samples file of this project: a single .npy array"):
        load_samples(tmp_path / "one.npz")
    np.savez(tmp_path / "text.npz", images=np.zeros((2, 1, 4, 4)), names=np.array(["a", "b"]))
    with pytest.raises(ValueError, match=r"non-numeric array\(s\) 'names'"):
        load_samples(tmp_path / "text.npz")
