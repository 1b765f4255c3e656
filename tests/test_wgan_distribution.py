"""The WGAN-GP as a model of p(x | c) and p(x): joint null condition in the critic, the
mode-seeking term, fresh critic minibatches, the within-condition collapse warning, marginal
unconditional sampling, truncation, modulation and the checkpoint format check."""
import warnings

import pytest
import torch
from torch import nn

from src_new.models.wgan_gp import losses
from src_new.models.wgan_gp import Critic, Encoder, Generator, WGANGP
from src_new.models.wgan_gp.sample import load_model_from_checkpoint
from src_new.models.wgan_gp.train import WGANGPTrainer
from src_new.utils.checkpoint import load_checkpoint, save_checkpoint

C, H, W = 5, 64, 32


def tiny_model(critic_cond="projection", style_dim=16, cond_modulation=False, **kw):
    torch.manual_seed(0)
    enc = Encoder(C, 10, (H, W), dim=8)
    gen = Generator(C, 10, 2, (H, W), dim=8, res_blocks=(1, 1, 1), bottleneck_res_blocks=1, style_dim=style_dim,
                    cond_modulation=cond_modulation)
    critic = Critic(C, 2, (H, W), dim=8, cond_mode=critic_cond, minibatch_std_group=0)
    return WGANGP(enc, gen, critic, image_size=(H, W), latent_dim=10, **{"lambda_gp": 10.0, "n_critic": 5, **kw})


class RecordingCritic(nn.Module):
    """A critic that records the drop mask of every call and scores linearly."""

    def __init__(self):
        super().__init__()
        self.w = nn.Parameter(torch.randn(C * H * W) * 0.01)
        self.calls = []

    def forward(self, x, cond=None, drop_mask=None):
        self.calls.append((len(x), None if drop_mask is None else drop_mask.clone()))
        return (x.flatten(1) * self.w).sum(1, keepdim=True)


@pytest.mark.parametrize("joint", [True, False])
def test_critic_gets_the_generators_drop_mask_for_real_fake_and_penalty(joint):
    m = tiny_model(critic_null_condition=joint)
    m.critic = RecordingCritic()
    x, c = torch.rand(6, C, H, W), torch.randn(6, 2)
    noise = m.draw_noise(6, x.device)
    noise["drop_mask"] = torch.tensor([True, False, False, True, False, False])
    m(x, cond=c, step="critic", noise=noise)
    assert [n for n, _ in m.critic.calls] == [12, 6]         # real and fake in one pass, then the penalty
    for n, mask in m.critic.calls:
        expected = torch.cat([noise["drop_mask"]] * (n // 6))
        assert (mask is None) if not joint else torch.equal(mask, expected)


@pytest.mark.parametrize("cond_mode", ["projection", "concat"])
def test_null_embedding_reaches_the_critic_for_dropped_samples_only(cond_mode):
    m = tiny_model(critic_cond=cond_mode)
    with torch.no_grad():
        m.critic.null_embed.add_(torch.randn_like(m.critic.null_embed))
    x, c = torch.rand(4, C, H, W), torch.randn(4, 2)
    drop = torch.tensor([True, False, True, False])
    base = m.critic(x, c, drop)
    assert torch.allclose(base[~drop], m.critic(x, c)[~drop])               # kept: the true condition
    assert torch.allclose(base[drop], m.critic(x, None)[drop])              # dropped: the null token
    assert not torch.allclose(base[drop], m.critic(x, torch.zeros(4, 2))[drop])   # not a zero vector
    with torch.no_grad():                                    # the null token is what dropped samples see
        m.critic.null_embed.add_(1.0)
    after = m.critic(x, c, drop)
    assert torch.equal(after[~drop], base[~drop]) and not torch.allclose(after[drop], base[drop])


def test_fused_critic_pass_equals_separate_passes_with_a_drop_mask():
    """One pass over real and fake together scores each half as separate passes do, with
    minibatch-std groups (the only coupling between samples) inside each half."""
    torch.manual_seed(0)
    critic = Critic(C, 2, (H, W), dim=8, minibatch_std_group=2)
    real, fake, c = torch.rand(4, C, H, W).round(), torch.rand(4, C, H, W), torch.randn(4, 2)
    drop = torch.tensor([True, False, False, True])
    d_real, d_fake, _ = losses.critic_scores(critic, real, fake, c, drop)
    assert torch.allclose(d_real, critic(real, c, drop), atol=1e-5)
    assert torch.allclose(d_fake, critic(fake, c, drop), atol=1e-5)


def test_mode_seeking_term_sign_and_gradient():
    z_a, z_b = torch.zeros(4, 3), torch.ones(4, 3)
    img_a = torch.full((4, 1, 2, 2), 0.5, requires_grad=True)
    img_b = torch.full((4, 1, 2, 2), 0.6)
    loss = WGANGP.mode_seeking_loss(img_a, img_b, z_a, z_b)
    assert loss.item() == pytest.approx(1 / (0.1 / 1.0 + 1e-5), rel=1e-4)
    loss.backward()
    # descending the loss moves img_a away from img_b: the images get more different
    assert (img_a.grad > 0).all()
    same = WGANGP.mode_seeking_loss(img_b, img_b.clone(), z_a, z_b)
    assert same > loss                                       # identical images: the largest loss


def test_mode_seeking_pairs_share_a_condition_and_trains_z_use():
    m = tiny_model(lambda_ms=1.0)
    seen = []
    original = m.generator.forward
    m.generator.forward = lambda z, cond=None, drop_mask=None, **kw: seen.append((cond, drop_mask)) or \
        original(z, cond, drop_mask, **kw)
    x, c = torch.rand(6, C, H, W), torch.randn(6, 2)
    out = m(x, cond=c, step="generator")
    cond, drop = seen[0]
    assert torch.equal(cond[:3], cond[3:]) and torch.equal(cond[:3], c[:3]) and torch.equal(drop[:3], drop[3:])
    assert out["mode_seeking_loss"] > 0
    out["generator_loss"].backward()
    assert m.generator.mapping[0].weight.grad.abs().sum() > 0


def test_each_critic_step_gets_a_fresh_real_minibatch(tiny_cfg):
    trainer = WGANGPTrainer(tiny_cfg, verbose=False)
    assert trainer.batches_per_step == trainer.model.n_critic == 2
    seen, original = [], trainer.model.critic_step
    trainer.model.critic_step = lambda real, cond=None, noise=None: seen.append(real.clone()) or \
        original(real, cond, noise)
    draws = []
    for real, cond in trainer.loader:
        draws.append(real)
        trainer.train_step(real, cond)
    assert len(draws) == len(trainer.loader) == 32 // (8 * 2)      # loader draws: 2 per epoch
    assert len(seen) == 2 * len(draws) and all(len(r) == 8 for r in seen)
    flat = torch.stack([r.flatten(1) for r in seen])                # (steps * n_critic, 8, pixels)
    for i in range(len(flat)):                                      # no two critic steps share a sample
        for j in range(i + 1, len(flat)):
            assert torch.cdist(flat[i], flat[j]).min() > 0


def test_collapse_warning_fires_only_when_the_generator_ignores_z(tiny_cfg):
    trainer = WGANGPTrainer(tiny_cfg, verbose=False)
    trainer.history, trainer.epoch = [{}], 2
    gen = trainer.model.ema_generator
    trainer.collapse_probe["real"] = 0.05
    with torch.no_grad():                            # make z matter a lot: random style weights
        for p in gen.parameters():
            p.normal_(0, 0.5)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert trainer.check_collapse() > 0.3
    assert not [w for w in caught if "ignores its latent" in str(w.message)]
    original = gen.forward
    gen.forward = lambda z, *a, **kw: original(torch.zeros_like(z), *a, **kw)   # ignores z
    with pytest.warns(UserWarning, match="ignores its latent"):
        assert trainer.check_collapse() == 0.0


def test_marginal_unconditional_sampling_draws_stored_training_conditions(tiny_cfg):
    trainer = WGANGPTrainer(tiny_cfg, verbose=False)
    run_dir = trainer.run()
    model, _ = load_model_from_checkpoint(run_dir / "checkpoint_latest.pt")
    assert torch.equal(model.train_conditions, trainer.train_set.raw_conditions)
    drawn = model.draw_train_conditions(50, torch.Generator().manual_seed(0))
    rows = {tuple(r.tolist()) for r in trainer.train_set.raw_conditions}
    assert all(tuple(r.tolist()) in rows for r in drawn) and len({tuple(r.tolist()) for r in drawn}) > 5
    z = torch.randn(4, model.latent_dim)
    g = torch.Generator().manual_seed(1)
    expected_raw = model.draw_train_conditions(4, torch.Generator().manual_seed(1))
    marginal = model.sample(z=z, unconditional="marginal", generator=g)
    assert torch.allclose(marginal, model.sample(z=z, raw_cond=expected_raw), atol=1e-6)
    null = model.sample(z=z, unconditional="null")
    assert not torch.allclose(marginal, null)                                        # null mode differs
    # the default for a trained model is marginal (measured better); without stored conditions, null
    assert torch.equal(model.sample(z=z, generator=torch.Generator().manual_seed(1)), marginal)
    model.train_conditions = None
    assert torch.equal(model.sample(z=z), null)
    with pytest.raises(ValueError, match="unconditional='marginal' needs the training conditions"):
        model.sample(batch_size=2, unconditional="marginal")


@pytest.mark.parametrize("style_dim, cond_modulation", [(16, False), (0, False), (0, True)])
def test_truncation_psi_zero_gives_the_mean_style_image(style_dim, cond_modulation):
    m = tiny_model(style_dim=style_dim, cond_modulation=cond_modulation)
    c = torch.randn(1, 2).repeat(3, 1)
    out = m.sample(z=torch.randn(3, 10), cond=c, truncation_psi=0.0)
    assert torch.allclose(out, out[:1].expand_as(out), atol=1e-6)                    # z no longer matters
    g = m.sampling_generator
    with torch.no_grad():
        assert torch.allclose(out, torch.sigmoid(g.synthesize(g.mean_style(c))), atol=1e-6)
        full = m.sample(z=torch.randn(3, 10), cond=c)
    assert torch.equal(m.sample(z=torch.ones(3, 10), cond=c, truncation_psi=1.0),
                       m.sample(z=torch.ones(3, 10), cond=c))
    with pytest.raises(ValueError, match="truncation_psi"):
        m.sample(batch_size=2, truncation_psi=1.5)
    assert full.shape == out.shape


def test_modulation_reaches_every_norm():
    m = tiny_model(style_dim=16)
    norms = [mod for mod in m.generator.modules() if type(mod).__name__ == "AdaGroupNorm"]
    assert len(norms) == 1 + 2 * 4 + 3 and all(n.style_dim == 16 for n in norms)
    # with nonzero modulation weights, changing z changes the output of every stage's norm
    with torch.no_grad():
        for n in norms:
            n.affine.weight.normal_(0, 0.1)
    z1, z2, c = torch.randn(2, 10), torch.randn(2, 10), torch.randn(2, 2)
    assert not torch.allclose(m.generator(z1, c), m.generator(z2, c))


def test_condition_modulation_feeds_every_norm_the_condition_alone():
    """cond_modulation: every norm is modulated by embed(cond), never by z, while z still changes
    the image (it enters through the projection); it cannot be combined with a style."""
    m = tiny_model(style_dim=0, cond_modulation=True)
    g = m.generator
    norms = [mod for mod in g.modules() if type(mod).__name__ == "AdaGroupNorm"]
    assert len(norms) == 1 + 2 * 4 + 3 and all(n.style_dim == g.null_embed.numel() for n in norms)
    seen = []
    hooks = [n.register_forward_hook(lambda mod, args, out: seen.append(args[1])) for n in norms]
    with torch.no_grad():
        for n in norms:
            n.affine.weight.normal_(0, 0.1)
        c = torch.randn(2, 2)
        a, b = g(torch.randn(2, 10), c), g(torch.randn(2, 10), c)
        other = g(torch.randn(2, 10), torch.randn(2, 2))
        embedding = g.embed_condition(c, 2)
    for h in hooks:
        h.remove()
    assert all(torch.equal(v, embedding) for v in seen[:len(norms)])        # the first call's norms saw embed(c)
    assert not torch.allclose(a, b) and not torch.allclose(a, other)
    with pytest.raises(ValueError, match="cond_modulation needs style_dim = 0"):
        Generator(C, 10, 2, (H, W), dim=8, style_dim=16, cond_modulation=True)


def test_old_checkpoint_format_fails_with_a_clear_message(tiny_cfg, tmp_path):
    run_dir = WGANGPTrainer(tiny_cfg, verbose=False).run()
    ckpt = load_checkpoint(run_dir / "checkpoint_latest.pt")
    del ckpt["wgan_gp_version"]
    save_checkpoint(ckpt, tmp_path / "old.pt")
    with pytest.raises(ValueError, match="format 1, this code reads format 2.*mapping network"):
        load_model_from_checkpoint(tmp_path / "old.pt")
