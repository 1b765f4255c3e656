"""DDPM: shapes, loss decreases on an overfit batch, DDIM determinism, guidance, inpainting
exactness, parameter count, dispatcher routing and training/sampling through the CLI."""
import json

import numpy as np
import pytest
import torch

from src_new.models.ddpm import GaussianDiffusion, UNet, build_ddpm
from src_new.utils.config import auto_complete_config, load_config, validate_config
from src_new.utils.masks import create_mask

from conftest import make_cfg, run_script, write_yaml

C, H, W = 5, 64, 32
NAMES = ["group_nc", "group_km", "bt", "fpu", "tpc"]


def tiny(cond_dim=2, **kw):
    torch.manual_seed(0)
    return GaussianDiffusion(UNet(C, cond_dim, (H, W), dim=8, dim_mults=(1, 2), res_blocks=1), image_size=(H, W),
                             timesteps=50, **kw)


def test_parameter_count_at_default_config():
    cfg = validate_config(auto_complete_config(load_config("ddpm_default"), verbose=False))
    n = sum(p.numel() for p in build_ddpm(cfg).parameters())
    assert 10e6 <= n <= 14e6


def test_shapes_and_loss():
    m = tiny()
    x, c = torch.rand(3, C, H, W), torch.randn(3, 2)
    assert m.unet(x, torch.tensor([0, 10, 49]), c).shape == (3, C, H, W)
    loss = m(x, cond=c)["loss"]
    assert loss.dim() == 0 and loss.requires_grad
    attn = UNet(C, 2, (H, W), dim=8, dim_mults=(1, 2), res_blocks=1, attn_resolutions=[32])
    assert attn(x, torch.tensor([1, 2, 3]), c).shape == (3, C, H, W)


def test_loss_decreases_on_overfit_batch():
    m = tiny()
    x, c = torch.rand(4, C, H, W).round(), torch.randn(4, 2)
    opt = torch.optim.Adam(m.parameters(), 3e-3)

    def held_out_loss():        # the same timesteps and noise before and after training
        torch.manual_seed(123)
        with torch.no_grad():
            return np.mean([m(x, cond=c)["loss"].item() for _ in range(8)])
    before = held_out_loss()
    torch.manual_seed(1)
    for _ in range(40):
        opt.zero_grad()
        m(x, cond=c)["loss"].backward()
        opt.step()
    assert held_out_loss() < 0.7 * before


def test_ddim_determinism_range_and_guidance():
    m = tiny()
    with torch.no_grad():
        m.unet.cond_embed.weight.mul_(50)
    c = torch.randn(2, 2)
    a = m.sample(cond=c, steps=5, generator=torch.Generator().manual_seed(0))
    b = m.sample(cond=c, steps=5, generator=torch.Generator().manual_seed(0))
    g = m.sample(cond=c, steps=5, guidance_scale=2.0, generator=torch.Generator().manual_seed(0))
    assert torch.equal(a, b) and a.shape == (2, C, H, W) and 0 <= a.min() and a.max() <= 1
    assert (a - g).abs().max() > 1e-3
    anc = m.sample(batch_size=2, sampler="ddpm", generator=torch.Generator().manual_seed(0))
    assert anc.shape == (2, C, H, W)
    eta = m.sample(batch_size=2, steps=5, eta=1.0, generator=torch.Generator().manual_seed(0))
    assert eta.shape == (2, C, H, W)


@pytest.mark.parametrize("resample", [1, 2])
def test_inpainting_keeps_known_pixels(resample):
    m = tiny()
    truth = torch.rand(2, C, H, W).round()
    mask = create_mask(["fpu", "group_nc"], NAMES, 2, (H, W))
    out = m.inpaint(truth * mask, mask, num_steps=4, resample=resample, lr=0.1, restarts=3,
                    generator=torch.Generator().manual_seed(0))
    assert torch.equal(out * mask, truth * mask) and out.shape == truth.shape


@pytest.mark.parametrize("call, match", [
    (lambda m: m(torch.rand(2, 4, H, W)), r"expected shape \(B, 5, 64, 32\), got \(2, 4, 64, 32\)"),
    (lambda m: m(torch.rand(2, C, H, W), cond=torch.randn(2, 3)), r"expected condition of shape \(2, 2\)"),
    (lambda m: m.inpaint(torch.rand(1, C, H, W), torch.ones(1, C, 8, 8)), r"inpaint mask: expected shape"),
    (lambda m: m.sample(batch_size=1, sampler="euler"), r"sampler must be 'ddim' or 'ddpm'"),
])
def test_bad_inputs(call, match):
    with pytest.raises(ValueError, match=match):
        call(tiny())


def test_train_and_sample_through_dispatchers(toy_root, tmp_path):
    cfg = make_cfg(toy_root, tmp_path / "out")
    ddpm = {"model": {"type": "ddpm", "image_size": [64, 32], "dim": 8, "dim_mults": [1, 2], "res_blocks": 1,
                      "timesteps": 50},
            "data": cfg["data"], "paths": cfg["paths"],
            "training": {"epochs": 1, "batch_size": 8, "device": "cpu", "eval_every": 1, "check_every": 1,
                         "ema_update_every": 1, "ema_decay": 0.9},
            "sampling": {"ddim_steps": 3, "inpaint_steps": 3, "num_samples": 4, "batch_sz": 4}}
    path = tmp_path / "ddpm.yaml"
    path.write_text(__import__("yaml").safe_dump(ddpm))
    run_script("train.py", "--model", "ddpm", "--config", path, "--run_name", "d")
    run_dir = tmp_path / "out" / "d"
    assert (run_dir / "checkpoint_1.pt").exists() and (run_dir / "samples_epoch_0001.png").exists()
    run_script("train.py", "--resume", run_dir / "checkpoint_latest.pt", "--epochs", 2)
    ckpt = run_dir / "checkpoint_latest.pt"
    for mode, extra in (("unconditional", []), ("conditional", ["--guidance_scale", 2]),
                        ("inpainting", ["--components", "fpu"])):
        out = tmp_path / "s" / mode
        run_script("sample.py", "--checkpoint", ckpt, "--mode", mode, "--out", out, *extra)
        manifest = json.loads((out / "manifest.json").read_text())
        assert manifest["model"] == "ddpm" and manifest["model_options"]
        assert np.load(out / "samples.npz")["images"].shape == (4, C, H, W)
    proc = run_script("sample.py", "--checkpoint", ckpt, "--mode", "interpolate", "--out", tmp_path / "x", check=False)
    assert proc.returncode != 0 and "not available for model 'ddpm'" in proc.stderr
    proc = run_script("train.py", "--model", "wgan_gp", "--config", path, check=False)
    assert proc.returncode != 0 and "is a 'ddpm' config" in proc.stderr
