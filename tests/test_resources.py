"""Memory estimates before allocation: exact parameter counts, activations that scale with the
batch, a quick bound that really bounds, and refusals in one line before anything is built."""
import copy

import pytest

from src_new.models.ddpm import build_ddpm
from src_new.models.wgan_gp import build_wgan_gp
from src_new.pipeline.config import auto_complete_config, load_config, validate_config
from src_new.utils import resources
from src_new.utils.resources import (check_sampling_memory, check_training_memory, rough_training_bytes,
                                     training_memory)


def resolved(name):
    return validate_config(auto_complete_config(load_config(name), verbose=False))


def test_estimate_counts_parameters_exactly_and_scales_with_batch(tiny_cfg):
    real = sum(p.numel() for p in build_wgan_gp(tiny_cfg).parameters())
    small, large = training_memory(build_wgan_gp, tiny_cfg, 4), training_memory(build_wgan_gp, tiny_cfg, 8)
    assert small["parameters"] == large["parameters"] == real
    assert large["activation_bytes"] == pytest.approx(2 * small["activation_bytes"], rel=0.05)
    assert large["total_bytes"] == large["parameter_bytes"] + large["activation_bytes"]


@pytest.mark.parametrize("name, build", [("wgan_gp_toy", build_wgan_gp), ("ddpm_toy", build_ddpm)])
def test_quick_bound_covers_the_estimate(name, build):
    """The gate skips the estimate only when the bound is small, so the bound must not under-state."""
    cfg = resolved(name)
    need = training_memory(build, cfg, cfg["training"]["batch_size"])["total_bytes"]
    assert rough_training_bytes(cfg) >= need


def test_training_beyond_memory_is_refused_with_the_estimate(tiny_cfg, monkeypatch):
    monkeypatch.setattr(resources, "available_bytes", lambda device="cpu": 2 ** 20)   # 1 MB
    with pytest.raises(ValueError, match=r"needs about .* GB .*parameters.*batch of 8.*lower model.dim"):
        check_training_memory(build_wgan_gp, tiny_cfg)
    monkeypatch.setattr(resources, "available_bytes", lambda device="cpu": 2 ** 40)   # 1 TB: the bound suffices
    assert check_training_memory(build_wgan_gp, tiny_cfg) is None


def test_train_cli_refuses_a_huge_model_before_reading_data(tiny_cfg, tmp_path, capsys):
    from conftest import write_yaml
    from test_scripts import load_cli
    train = load_cli("train")
    cfg = copy.deepcopy(tiny_cfg)
    cfg["model"].update(dim=4096, critic_dim=4096)
    cfg["data"]["root_dir"] = str(tmp_path / "no_data_here")     # the estimate comes first
    with pytest.raises(SystemExit) as stop:
        train.main(["--config", str(write_yaml(cfg, tmp_path / "huge.yaml"))])
    assert str(stop.value.code).startswith("error: training this model needs about")
    assert not (tmp_path / "no_data_here").exists()


def test_sampling_beyond_memory_is_refused(monkeypatch):
    monkeypatch.setattr(resources, "available_bytes", lambda device="cpu": 10 * 2 ** 30)
    assert check_sampling_memory(1000, 5, 64, 32) == 1000 * 5 * 64 * 32 * 4 * resources.SAMPLE_COPIES
    with pytest.raises(ValueError, match=r"--num_samples 10000000 needs about 762.9 GB.*--num_samples <= 131072"):
        check_sampling_memory(10 ** 7, 5, 64, 32)
