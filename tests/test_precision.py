"""bf16 autocast (training.precision, sampling.precision): the losses match fp32 within bf16's
resolution, the penalty's norm and the losses are fp32, weights and optimizer state stay fp32,
checkpoints cross precisions, and a CPU without bf16 units falls back to fp32 with a note.

bf16 autocast runs on any CPU (emulated where the units are absent), so these tests do not
depend on the machine; ``bf16_supported`` is forced where the trainer's choice matters."""
import copy
import json

import numpy as np
import pytest
import torch
from torch import nn

from src_new.models.wgan_gp import build_wgan_gp
from src_new.models.wgan_gp.train import WGANGPTrainer
from src_new.utils import precision as P
from src_new.utils.checkpoint import load_checkpoint

from conftest import make_cfg, run_script, write_yaml


@pytest.fixture
def bf16_units(monkeypatch):
    """Make the trainer and samplers see fast bf16 units (or not: ``bf16_units(False)``)."""
    def force(available=True):
        monkeypatch.setattr(P, "bf16_supported", lambda device_type: available)
    force()
    return force


def tiny_model(tiny_cfg):
    torch.manual_seed(0)
    return build_wgan_gp(tiny_cfg)


def fixed_batch(model, batch=8):
    gen = torch.Generator().manual_seed(1)
    real = torch.rand(batch, model.channels, *model.image_size, generator=gen).round()
    cond = torch.randn(batch, model.cond_dim, generator=gen)
    noise = {"z": torch.randn(batch, model.latent_dim, generator=gen),
             "drop_mask": torch.rand(batch, generator=gen) < 0.3, "eps": torch.rand(batch, 1, 1, 1, generator=gen)}
    return real, cond, noise


def test_resolve_precision_names_and_fallback(bf16_units):
    assert P.resolve_precision("fp32", "cpu") == "fp32"
    assert P.resolve_precision("bf16", "cpu", say=lambda m: None) == "bf16"
    with pytest.raises(ValueError, match="training.precision = 'fp16'"):
        P.resolve_precision("fp16", "cpu")
    bf16_units(False)
    notes = []
    assert P.resolve_precision("bf16", "cpu", "sampling.precision", say=notes.append) == "fp32"
    assert len(notes) == 1 and "sampling.precision = bf16" in notes[0] and "running in fp32" in notes[0]


def test_bf16_on_a_cpu_needs_amx_not_only_avx512_bf16(monkeypatch):
    """On a host with AVX-512 BF16 and no AMX the training step ran slower in bf16 than in fp32
    (bench/results/step_time_no_amx.json): bf16 falls back to fp32 there."""
    monkeypatch.setattr(torch.ops.mkldnn, "_is_mkldnn_bf16_supported", lambda: True)
    try:
        for amx in (False, True):
            monkeypatch.setattr(P, "cpu_has_amx", lambda: amx)
            P.bf16_supported.cache_clear()
            assert P.bf16_supported("cpu") is amx
            notes = []
            assert P.resolve_precision("bf16", "cpu", say=notes.append) == ("bf16" if amx else "fp32")
            assert len(notes) == (0 if amx else 1)
    finally:
        P.bf16_supported.cache_clear()                   # later tests see this machine's own answer
    assert isinstance(P.cpu_has_amx(), bool)


def test_group_norm32_is_group_norm_in_fp32_and_normalizes_bf16_in_fp32():
    torch.manual_seed(0)
    x = torch.randn(4, 16, 8, 4).contiguous(memory_format=torch.channels_last)
    ours, ref = P.GroupNorm32(8, 16), nn.GroupNorm(8, 16)
    with torch.no_grad():
        ref.weight.normal_(), ref.bias.normal_()
    ours.load_state_dict(ref.state_dict())
    assert torch.equal(ours(x), ref(x))                              # fp32: the same op
    out = ours(x.bfloat16())
    assert out.dtype == torch.float32
    assert (out - ref(x.bfloat16().float())).abs().max() < 1e-5      # statistics of the bf16 values, exact


def test_bf16_losses_match_fp32_and_stay_fp32(tiny_cfg):
    model = tiny_model(tiny_cfg)
    real, cond, noise = fixed_batch(model)
    out32 = {**model.critic_step(real, cond, noise), **model.generator_step(real, cond, noise)}
    with P.autocast("bf16", "cpu"):
        out16 = {**model.critic_step(real, cond, noise), **model.generator_step(real, cond, noise)}
        enc = model.encoder_loss(real, cond)
    for key in ("critic_loss", "gradient_penalty", "wasserstein_distance", "generator_loss"):
        assert out16[key].dtype == torch.float32, key       # the penalty's norm and every loss in fp32
        # bf16 keeps 8 bits of mantissa: each value within 5% of the fp32 one (or 0.02 absolute)
        assert abs(out16[key].item() - out32[key].item()) <= 0.05 * abs(out32[key].item()) + 0.02, \
            (key, out16[key].item(), out32[key].item())
    assert enc["encoder_loss"].dtype == torch.float32


def test_bf16_training_keeps_fp32_weights_and_optimizer_state(tiny_cfg, bf16_units, capsys):
    cfg = copy.deepcopy(tiny_cfg)
    cfg["training"]["precision"] = "bf16"
    trainer = WGANGPTrainer(cfg, verbose=False)
    assert trainer.precision == "bf16"
    run_dir = trainer.run()
    ckpt = load_checkpoint(run_dir / "checkpoint_latest.pt")
    for key in ("generator_state_dict", "ema_generator_state_dict", "critic_state_dict", "encoder_state_dict"):
        assert all(v.dtype == torch.float32 for v in ckpt[key].values() if v.is_floating_point()), key
    for key in ("g_optimizer_state_dict", "c_optimizer_state_dict", "e_optimizer_state_dict"):
        states = ckpt[key]["state"].values()
        assert states and all(t.dtype == torch.float32 for s in states for n, t in s.items() if n != "step"), key
    # the fallback: no bf16 units -> fp32, said once
    bf16_units(False)
    cfg["training"]["run_name"] = "fallback"
    trainer = WGANGPTrainer(cfg, verbose=True)
    assert trainer.precision == "fp32"
    assert "training.precision = bf16 but this cpu has no fast bf16 units" in capsys.readouterr().out
    trainer.dist.close()


def test_checkpoints_cross_precisions(toy_root, tmp_path):
    """A bf16-trained checkpoint samples in fp32 and an fp32 one in bf16 (the CLI, end to end);
    the two precisions' samples of one checkpoint agree to bf16's resolution."""
    for train_precision in ("bf16", "fp32"):
        out = tmp_path / train_precision
        cfg = make_cfg(toy_root, out, training={"precision": train_precision, "run_name": "run"})
        run_script("train.py", "--config", write_yaml(cfg, tmp_path / f"{train_precision}.yaml"))
        ckpt = out / "run" / "checkpoint_latest.pt"
        images = {}
        for sample_precision in ("fp32", "bf16"):
            folder = out / f"samples_{sample_precision}"
            run_script("sample.py", "--checkpoint", ckpt, "--mode", "conditional", "--num_samples", 8,
                       "--precision", sample_precision, "--out", folder)
            manifest = json.loads((folder / "manifest.json").read_text())
            with np.load(folder / "samples.npz") as data:
                images[sample_precision] = data["images"]
            # on a CPU without bf16 units the sampler falls back (and says so)
            assert manifest["precision"] in ("fp32", sample_precision)
        assert images["fp32"].dtype == images["bf16"].dtype
        assert abs(images["fp32"].astype(float) - images["bf16"].astype(float)).max() <= 0.1


def test_ddpm_loss_and_ddim_sampling_under_bf16_match_fp32():
    from src_new.models.ddpm import GaussianDiffusion, UNet

    torch.manual_seed(0)
    ddpm = GaussianDiffusion(UNet(5, 2, (16, 8), dim=8, dim_mults=(1, 2), res_blocks=1), image_size=(16, 8),
                             timesteps=50)
    x = torch.rand(4, 5, 16, 8).round()
    cond = torch.randn(4, 2)
    losses = {}
    for precision in ("fp32", "bf16"):
        torch.manual_seed(1)                                   # the same t, noise and dropout
        with P.autocast(precision, "cpu"):
            losses[precision] = ddpm(x, cond=cond)["loss"]
    assert losses["bf16"].dtype == torch.float32
    assert abs(losses["bf16"].item() - losses["fp32"].item()) <= 0.05 * losses["fp32"].item()
    samples = {}
    for precision in ("fp32", "bf16"):
        with P.autocast(precision, "cpu"):
            samples[precision] = ddpm.sample(batch_size=4, cond=cond, sampler="ddim", steps=5, eta=0.0,
                                             generator=torch.Generator().manual_seed(0))
    assert samples["bf16"].dtype == torch.float32
    assert (samples["bf16"] - samples["fp32"]).abs().mean() < 0.05
