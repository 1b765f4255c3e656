"""What the critic sees (losses.critic_view): DiffAugment (augment.py) and thresholded fakes.

Augmentation applies one draw's parameters to a real/fake pair, is differentiable (the generator
gets gradients through it), never cuts the real design (its measured width and height stay);
binary critic inputs are the thresholded image with straight-through gradients; both train end
to end and old checkpoints (without the keys) load as before."""
import copy

import pytest
import torch

from src_new.models.wgan_gp import WGANGP, augment, build_wgan_gp
from src_new.models.wgan_gp.losses import critic_view
from src_new.models.wgan_gp.sample import load_model_from_checkpoint
from src_new.models.wgan_gp.train import WGANGPTrainer
from src_new.pipeline.config import auto_complete_config, validate_config
from src_new.utils.checkpoint import load_checkpoint, save_checkpoint
from src_new.utils.geometry import measure_dimensions

from conftest import TINY_WGAN, make_cfg


def blocks(n, seed=0, touch_left=False):
    """(n, 2, 64, 32) masks: one filled rectangle per sample, inside the image (or touching
    column 0, as a mirrored half touches its symmetry plane)."""
    g = torch.Generator().manual_seed(seed)
    x = torch.zeros(n, 2, 64, 32)
    for i in range(n):
        top, left = (int(v) for v in torch.randint(0, 20, (2,), generator=g))
        left = 0 if touch_left else left % 10
        x[i, i % 2, top:top + 20 + i % 7, left:left + 8 + i % 5] = 1
    return x


def shifted(x, dy, dx):
    """Reference: ``x`` (C, H, W) moved by (dy, dx) whole pixels, zeros shifted in."""
    out = torch.zeros_like(x)
    h, w = x.shape[1:]
    out[:, max(dy, 0):h + min(dy, 0), max(dx, 0):w + min(dx, 0)] = x[:, max(-dy, 0):h - max(dy, 0),
                                                                      max(-dx, 0):w - max(dx, 0)]
    return out


def test_translation_shares_one_draw_across_a_pair_and_matches_a_plain_shift():
    real, fake = blocks(16), torch.rand(16, 2, 64, 32)
    params = augment.draw(real, ["translation"], p=1.0, generator=torch.Generator().manual_seed(0))
    assert params["shift"].abs().sum() > 0
    out_real, out_fake = augment.apply(real, params), augment.apply(fake, params)
    for i, (dy, dx) in enumerate(params["shift"].tolist()):
        assert abs(dy) <= 64 // 8 and abs(dx) <= 32 // 8
        assert torch.equal(out_real[i], shifted(real[i], dy, dx))
        assert torch.equal(out_fake[i], shifted(fake[i], dy, dx))       # the same parameters
    off = augment.draw(real, ["translation", "cutout"], p=0.0)
    assert torch.equal(augment.apply(fake, off), fake)                   # p = 0: untouched


@pytest.mark.parametrize("touch_left", [False, True])
def test_translation_never_cuts_the_real_design(touch_left):
    real = blocks(64, seed=1, touch_left=touch_left)
    for seed in range(5):
        params = augment.draw(real, ["translation"], p=1.0, generator=torch.Generator().manual_seed(seed))
        moved = augment.apply(real, params)
        assert (measure_dimensions(moved) == measure_dimensions(real)).all()
        assert moved.sum() == real.sum()                                 # nothing left the image
        if touch_left:                                                   # no room on the left: never moved left
            assert (params["shift"][:, 1] >= 0).all()


def test_cutout_hides_a_half_size_box():
    x = torch.ones(8, 2, 64, 32)
    params = augment.draw(x, ["cutout"], p=1.0, generator=torch.Generator().manual_seed(0))
    hidden = (augment.apply(x, params) == 0).all(1).flatten(1).sum(1)
    assert torch.equal(hidden, torch.full((8,), 32 * 16))


def _model(**model):
    cfg = copy.deepcopy(TINY_WGAN)
    cfg["data"].update(root_dir="unused", condition_csv="unused.csv")
    cfg["model"].update(model)
    torch.manual_seed(0)
    return build_wgan_gp(validate_config(auto_complete_config(cfg, verbose=False)))


def test_binary_view_is_the_thresholded_image_with_straight_through_gradients():
    m = _model(critic_input="binary")
    fake = torch.rand(4, 5, 64, 32, requires_grad=True)
    _, seen = critic_view(m, fake)
    assert torch.equal(seen, (fake > 0.5).float())
    (seen * torch.arange(seen.numel()).view_as(seen)).sum().backward()
    assert torch.equal(fake.grad, torch.arange(seen.numel()).view_as(seen).float())   # identity backward


@pytest.mark.parametrize("model", [{"augment_p": 1.0, "augment_policy": ["translation", "cutout"]},
                                   {"critic_input": "binary"}])
def test_the_generator_gets_gradients_through_what_the_critic_sees(model):
    m = _model(**model)
    x, c = (torch.rand(8, 5, 64, 32) > 0.7).float(), torch.randn(8, 2)
    m(x, cond=c, step="generator")["generator_loss"].backward()
    assert all(p.grad is None for p in m.critic.parameters())
    assert sum(float(p.grad.abs().sum()) for p in m.generator.parameters() if p.grad is not None) > 0
    out = m(x, cond=c, step="critic")
    assert torch.isfinite(out["critic_loss"]) and out["gradient_penalty"] >= 0


def test_bad_settings_are_refused():
    m = _model()
    with pytest.raises(ValueError, match="critic_input must be one of"):
        WGANGP(m.encoder, m.generator, m.critic, image_size=(64, 32), latent_dim=10, lambda_gp=10.0, n_critic=1,
               critic_input="hard")
    cfg = copy.deepcopy(TINY_WGAN)
    cfg["model"]["augment_policy"] = ["rotation"]
    with pytest.raises(ValueError, match=r"augment_policy = \['rotation'\]: expected one of \['translation', 'cutout'\]"):
        validate_config(auto_complete_config(cfg, verbose=False))


def test_training_with_both_and_old_checkpoints_without_the_keys(toy_root, tmp_path):
    cfg = make_cfg(toy_root, tmp_path / "out", model={"augment_p": 0.5, "critic_input": "binary"})
    run_dir = WGANGPTrainer(cfg, verbose=False).run()
    model, _ = load_model_from_checkpoint(run_dir / "checkpoint_latest.pt")
    assert (model.augment_p, model.critic_input) == (0.5, "binary")
    ckpt = load_checkpoint(run_dir / "checkpoint_latest.pt")
    for key in ("augment_p", "augment_policy", "critic_input"):      # a checkpoint from before these keys
        del ckpt["config"]["model"][key]
    old = save_checkpoint(ckpt, tmp_path / "old.pt")
    model, _ = load_model_from_checkpoint(old)
    assert (model.augment_p, model.critic_input, model.augment_policy) == (0.0, "soft", ("translation",))
