"""WGAN-GP networks and wrapper: shapes, ranges, exact penalty, step isolation, sampling,
inpainting, batch independence and input checks."""
import copy

import numpy as np
import pytest
import torch
from torch import nn
import torch.nn.functional as F

from src_new.models.wgan_gp import Critic, Encoder, Generator, WGANGP, build_wgan_gp, create_mask
from src_new.pipeline.config import auto_complete_config, load_config, validate_config

C, H, W = 5, 64, 32
NAMES = ["group_nc", "group_km", "bt", "fpu", "tpc"]


def tiny_model(cond_dim=2, **kw):
    torch.manual_seed(0)
    enc = Encoder(C, 10, (H, W), dim=8, cond_dim=cond_dim)
    gen = Generator(C, 10, cond_dim, (H, W), dim=8, res_blocks=(1, 1, 1), bottleneck_res_blocks=1,
                    style_dim=128)
    critic = Critic(C, cond_dim, (H, W), dim=8, cond_mode="concat", minibatch_std_group=0)
    return WGANGP(enc, gen, critic, image_size=(H, W), latent_dim=10, **{"lambda_gp": 10.0, "n_critic": 5, **kw})


def count(module):
    return sum(p.numel() for p in module.parameters())


def test_parameter_counts_at_default_config():
    cfg = validate_config(auto_complete_config(load_config("wgan_gp_default"), verbose=False))
    model = build_wgan_gp(cfg)
    assert 9.5e6 <= count(model.encoder) <= 10.5e6      # encoder_pool: flatten, a Linear over the 512 x 8 x 4 map
    assert 10e6 <= count(model.generator) <= 12e6
    assert 3e6 <= count(model.critic) <= 5e6
    assert model.latent_dim == 20


def test_shapes_and_ranges():
    m = tiny_model()
    x, c = torch.rand(3, C, H, W), torch.randn(3, 2)
    assert m.encoder(x).shape == (3, 10)
    out = m.generator(torch.randn(3, 10), c)
    assert out.shape == (3, C, H, W) and out.min() >= 0 and out.max() <= 1
    assert m.generator(torch.randn(3, 10), None).shape == (3, C, H, W)
    assert m.critic(x, c).shape == (3, 1)
    for up in ("nearest_conv",):
        g = Generator(C, 10, 2, (H, W), dim=8, res_blocks=(1, 1, 1), upsample=up)
        assert g(torch.randn(2, 10), torch.randn(2, 2)).shape == (2, C, H, W)
    sn = Critic(C, 2, (H, W), dim=8, spectral_norm=True, minibatch_std_group=0)
    assert sn(x, c).shape == (3, 1)


def test_other_image_sizes_and_channels():
    g = Generator(3, 6, 0, (32, 48), dim=8, res_blocks=(1, 1, 1))
    d = Critic(3, 0, (32, 48), dim=8, minibatch_std_group=0)
    e = Encoder(3, 6, (32, 48), dim=8)
    x = g(torch.randn(2, 6))
    assert x.shape == (2, 3, 32, 48) and d(x).shape == (2, 1) and e(x).shape == (2, 6)


def test_no_cross_sample_coupling():
    m = tiny_model()
    x, c, z = torch.rand(4, C, H, W), torch.randn(4, 2), torch.randn(4, 10)
    x2, c2, z2 = x.clone(), c.clone(), z.clone()
    x2[1:], c2[1:], z2[1:] = torch.rand(3, C, H, W), torch.randn(3, 2), torch.randn(3, 10)
    for net, a, b in ((m.critic, (x, c), (x2, c2)), (m.generator, (z, c), (z2, c2)), (m.encoder, (x,), (x2,))):
        assert torch.allclose(net(*a)[0], net(*b)[0], atol=1e-5), type(net).__name__


class LinearCritic(nn.Module):
    def __init__(self, w):
        super().__init__()
        self.w = nn.Parameter(w)

    def forward(self, x, cond=None, drop_mask=None):
        return (x.flatten(1) * self.w.flatten()).sum(1, keepdim=True)


def test_gradient_penalty_exact_on_linear_critic():
    torch.manual_seed(0)
    w = torch.randn(C, H, W) * 0.02
    m = tiny_model(lambda_gp=10.0)
    m.critic = LinearCritic(w)
    gp = m.compute_gradient_penalty(torch.rand(6, C, H, W), torch.rand(6, C, H, W), None)
    expected = 10.0 * (w.norm() - 1) ** 2
    assert torch.allclose(gp, expected, rtol=1e-5)
    # a per-pixel (wrong) norm would give a different value: guard against that bug
    wrong = 10.0 * ((w.abs() - 1) ** 2).mean()
    assert not torch.allclose(gp, wrong, rtol=1e-2)


def test_forward_keys_and_step_isolation():
    m = tiny_model()
    x, c = torch.rand(4, C, H, W), torch.randn(4, 2)
    out = m(x, cond=c, step="critic")
    assert set(out) == {"critic_loss", "wasserstein_distance", "gradient_penalty"}
    assert out["critic_loss"].requires_grad and not out["wasserstein_distance"].requires_grad
    assert torch.allclose(out["critic_loss"], -out["wasserstein_distance"] + out["gradient_penalty"])
    g_before = copy.deepcopy(m.generator.state_dict())
    opt_c = torch.optim.Adam(m.critic.parameters(), 1e-2)
    out["critic_loss"].backward()
    opt_c.step()
    assert all(p.grad is None for p in m.generator.parameters())
    assert all(torch.equal(g_before[k], v) for k, v in m.generator.state_dict().items())

    m.zero_grad(set_to_none=True)
    d_before = copy.deepcopy(m.critic.state_dict())
    out = m(x, cond=c, step="generator")
    assert set(out) == {"generator_loss"}      # the Wasserstein estimate is the critic step's
    out["generator_loss"].backward()
    torch.optim.Adam(m.generator.parameters(), 1e-2).step()
    assert all(p.grad is None for p in m.critic.parameters())
    assert all(torch.equal(d_before[k], v) for k, v in m.critic.state_dict().items())
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in m.generator.parameters())


def test_condition_dropout_only_for_generator():
    m = tiny_model(cond_drop_prob=1.0)       # always drop
    z, c = torch.randn(3, 10), torch.randn(3, 2)
    noise = {"z": z, "drop_mask": torch.ones(3, dtype=torch.bool), "eps": torch.rand(3, 1, 1, 1)}
    fake_dropped = m.generator(z, c, noise["drop_mask"])
    assert torch.allclose(fake_dropped, m.generator(z, None))
    assert not torch.allclose(m.generator(z, c), m.generator(z, None))
    # the critic sees the true condition: its score changes with the condition
    x = torch.rand(3, C, H, W)
    assert not torch.allclose(m.critic(x, c), m.critic(x, c + 1))


def test_sample_reproducible_and_guidance():
    m = tiny_model()
    with torch.no_grad():  # make the condition matter more than at init
        m.ema_generator.cond_embed.weight.mul_(50)
    c = torch.randn(4, 2)
    a = m.sample(cond=c, guidance_scale=0, generator=torch.Generator().manual_seed(1))
    b = m.sample(cond=c, guidance_scale=0, generator=torch.Generator().manual_seed(1))
    g2 = m.sample(cond=c, guidance_scale=2, generator=torch.Generator().manual_seed(1))
    assert torch.equal(a, b)
    assert a.shape == (4, C, H, W) and 0 <= g2.min() and g2.max() <= 1
    assert (a - g2).abs().max() > 1e-3
    u = m.sample(batch_size=5)
    assert u.shape == (5, C, H, W)


def test_sample_uses_ema_generator():
    m = tiny_model()
    z = torch.randn(2, 10)
    with torch.no_grad():
        for p in m.ema_generator.parameters():
            p.add_(0.1)
    assert torch.allclose(m.sample(z=z), m.ema_generator(z, None))
    assert not torch.allclose(m.sample(z=z), m.generator(z, None))


def test_sample_raw_conditions_use_stored_normalization():
    from src_new.datasets.multicomponent import ConditionNormalizer
    m = tiny_model()
    m.cond_normalizer = ConditionNormalizer([20.0, 40.0], [5.0, 8.0])
    raw = torch.tensor([[25.0, 48.0]])
    z = torch.randn(1, 10)
    assert torch.allclose(m.sample(z=z, raw_cond=raw), m.sample(z=z, cond=torch.tensor([[1.0, 1.0]])))


def make_inpaint_case(m, batch=3):
    torch.manual_seed(3)
    truth = m.generator(torch.randn(batch, 10), None).detach()
    mask = create_mask(["group_nc", "fpu"], NAMES, batch, (H, W))
    return truth * mask, mask


def test_inpaint_keeps_known_pixels_and_lowers_loss():
    m = tiny_model()
    m.ema_generator.load_state_dict(m.generator.state_dict())
    partial, mask = make_inpaint_case(m)
    grads_before = [p.grad for p in m.parameters()]
    result, info = m.inpaint(partial, mask, num_steps=0, lr=0.05, return_info=True)
    start_loss = info["loss"]
    result, info = m.inpaint(partial, mask, num_steps=30, lr=0.05, restarts=2, return_info=True)
    assert torch.equal(result * mask, partial * mask)                 # bit-exact
    assert (info["loss"] < start_loss).all()
    assert result.shape == partial.shape and 0 <= result.min() and result.max() <= 1
    assert all(p.grad is None for p in m.parameters()) and grads_before == [None] * len(grads_before)
    assert all(p.requires_grad for p in m.generator.parameters())     # freezing was undone


@pytest.mark.parametrize("context", [torch.no_grad, torch.inference_mode])
def test_inpaint_works_under_outer_no_grad(context):
    m = tiny_model()
    partial, mask = make_inpaint_case(m)
    _, first = m.inpaint(partial, mask, num_steps=0, return_info=True)
    with context():
        result, info = m.inpaint(partial, mask, num_steps=10, lr=0.05, return_info=True)
    assert (info["loss"] < first["loss"]).all()
    assert torch.equal(result * mask, partial * mask)


def test_inpaint_l1_and_prior_options():
    m = tiny_model()
    partial, mask = make_inpaint_case(m, 2)
    r = m.inpaint(partial, mask, num_steps=3, loss="l1", prior_weight=0.01)
    assert torch.equal(r * mask, partial * mask)
    with pytest.raises(ValueError, match=r"loss must be one of \('bce', 'mse', 'l1'\), got 'huber'"):
        m.inpaint(partial, mask, loss="huber")
    with pytest.raises(ValueError, match="lr_schedule must be one of"):
        m.inpaint(partial, mask, lr_schedule="step")
    for kw in ({"loss": "bce"}, {"lr_schedule": "constant", "noise": 0.5}):
        r = m.inpaint(partial, mask, num_steps=3, restarts=3, **kw)
        assert torch.equal(r * mask, partial * mask)


def test_inpaint_bce_loss_equals_hand_computed_value():
    """num_steps=0: the reported loss is the masked BCE of G's logits at the encoder's latent."""
    m = tiny_model()
    partial, mask = make_inpaint_case(m, 2)
    _, info = m.inpaint(partial, mask, num_steps=0, loss="bce", return_info=True)
    with torch.no_grad():
        known = partial * mask
        logits = m.ema_generator(m.encoder(known, mask), None, logits=True)
        p = torch.sigmoid(logits)
        bce = -(known * p.log() + (1 - known) * (1 - p).log())           # by hand
        expected = (bce * mask).flatten(1).sum(1) / mask.flatten(1).sum(1)
    assert torch.allclose(info["loss"], expected, rtol=1e-4, atol=1e-5)


def test_batched_restarts_keep_the_best_final_masked_loss():
    m = tiny_model()
    partial, mask = make_inpaint_case(m, 3)
    gen = torch.Generator().manual_seed(0)
    result, info = m.inpaint(partial, mask, num_steps=4, restarts=4, loss="bce", generator=gen, return_info=True)
    # each restart alone (restart 0: the encoder; k > 0: the k-th random start of the same stream)
    alone = []
    gen = torch.Generator().manual_seed(0)
    starts = [None] + [torch.randn(3, m.latent_dim, generator=gen) for _ in range(3)]
    for k in range(4):
        r, i = run_single_restart(m, partial, mask, starts[k])
        alone.append(i)
    losses = torch.stack(alone)                                        # (restarts, B)
    assert torch.allclose(info["loss"], losses.min(0).values, rtol=1e-4, atol=1e-6)
    assert torch.equal(info["best_restart"], losses.argmin(0))


def run_single_restart(m, partial, mask, z_start):
    """One restart of inpaint (bce, 4 steps, cosine) by hand from z_start (None: the encoder)."""
    gen = m.ema_generator
    with torch.no_grad():
        z = m.encoder(partial * mask, mask) if z_start is None else z_start.clone()
    z.requires_grad_(True)
    opt = torch.optim.Adam([z], lr=0.01)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, 4)

    def loss_of(latent):
        err = torch.nn.functional.binary_cross_entropy_with_logits(gen(latent, None, logits=True), partial * mask,
                                                                    reduction="none")
        return (err * mask).flatten(1).sum(1) / mask.flatten(1).sum(1)
    for _ in range(4):
        opt.zero_grad()
        loss_of(z).sum().backward()
        opt.step()
        sched.step()
    with torch.no_grad():
        return None, loss_of(z)


def test_encoder_reads_mask_and_condition():
    m = tiny_model()
    x, c = torch.rand(2, C, H, W), torch.randn(2, 2)
    full = m.encoder(x, None, c)
    assert torch.allclose(full, m.encoder(x, torch.ones_like(x), c))
    mask = torch.ones_like(x)
    mask[:, 2] = 0
    assert not torch.allclose(full, m.encoder(x, mask, c))               # hiding a component changes it
    assert torch.allclose(m.encoder(x * mask, mask, c), m.encoder(x, mask, c))   # hidden pixels are ignored
    assert not torch.allclose(full, m.encoder(x, None, c + 1))           # the condition matters


def test_encoder_pool_mean_is_blind_to_position_flatten_is_not():
    # A blob far from the borders, moved by the encoder's total stride (8 px): the feature map
    # moves by one cell, so a global average pool cannot tell the two apart; a flatten can.
    x = torch.zeros(1, 1, 96, 96)
    x[..., 40:46, 40:44] = 1
    moved = torch.roll(x, shifts=(8, 8), dims=(2, 3))
    torch.manual_seed(0)
    for pool, blind in (("mean", True), ("flatten", False)):
        e = Encoder(1, 6, (96, 96), dim=8, pool=pool)
        a, b = e(x), e(moved)
        assert torch.allclose(a, b, atol=1e-5) == blind, pool
    assert Encoder(3, 6, (30, 45), dim=8, pool="flatten")(torch.rand(2, 3, 30, 45)).shape == (2, 6)
    with pytest.raises(ValueError, match="pool must be one of"):
        Encoder(1, 6, (96, 96), pool="max")


def test_encoder_loss_trains_encoder_only():
    m = tiny_model()
    x, c = torch.rand(4, C, H, W), torch.randn(4, 2)
    out = m.encoder_loss(x, c)
    assert set(out) == {"encoder_loss", "latent_loss", "image_loss"}
    out["encoder_loss"].backward()
    # every encoder weight learns (the null-condition token only when no condition is given)
    assert all(p.grad is not None for n, p in m.encoder.named_parameters() if n != "null_embed")
    assert m.encoder.null_embed.grad is None
    assert all(p.grad is None for p in list(m.generator.parameters()) + list(m.ema_generator.parameters())
               + list(m.critic.parameters()))


def test_create_mask():
    mask = create_mask(["fpu"], NAMES, 2, (H, W))
    assert mask.shape == (2, C, H, W) and mask[:, 3].all() and mask.sum() == 2 * H * W
    with pytest.raises(ValueError, match=r"unknown component\(s\) \['tread'\]; valid components: \['group_nc'"):
        create_mask(["tread"], NAMES, 2, (H, W))


@pytest.mark.parametrize("call, match", [
    (lambda m: m.encoder(torch.rand(2, 4, H, W)), r"expected shape \(B, 5, 64, 32\), got \(2, 4, 64, 32\)"),
    (lambda m: m.critic(torch.rand(2, C, 32, 32), torch.randn(2, 2)), r"expected shape \(B, 5, 64, 32\), got \(2, 5, 32, 32\)"),
    (lambda m: m(torch.rand(2, C, H, W), cond=torch.randn(2, 3)), r"expected condition of shape \(2, 2\), got \(2, 3\)"),
    (lambda m: m.generator(torch.randn(2, 7)), r"expected shape \(B, 10\), got \(2, 7\)"),
    (lambda m: m.sample(cond=torch.randn(2, 5)), r"expected condition of shape \(2, 2\), got \(2, 5\)"),
    (lambda m: m.inpaint(torch.rand(2, C, H, W), torch.ones(2, C, H, 16)), r"expected shape \(2, 5, 64, 32\).*got \(2, 5, 64, 16\)"),
    (lambda m: m(torch.rand(2, C, H, W), step="both"), r"step must be 'critic', 'generator' or 'autoencoder'"),
])
def test_bad_inputs(call, match):
    with pytest.raises(ValueError, match=match):
        call(tiny_model())


def _head_model(lambda_cond=1.0):
    from conftest import TINY_WGAN
    cfg = copy.deepcopy(TINY_WGAN)
    cfg["data"].update(root_dir="unused", condition_csv="unused.csv")
    cfg["model"].update(lambda_cond=lambda_cond, critic_cond="projection")
    torch.manual_seed(0)
    return build_wgan_gp(validate_config(auto_complete_config(cfg, verbose=False)))


def _draws(m, batch=8, seed=1):
    g = torch.Generator().manual_seed(seed)
    return {"z": torch.randn(batch, m.latent_dim, generator=g), "drop_mask": torch.rand(batch, generator=g) < 0.3,
            "eps": torch.rand(batch, 1, 1, 1, generator=g)}


def test_condition_head_learns_from_real_images_only_and_reaches_the_generator():
    m = _head_model()
    x, c = torch.rand(8, 5, 64, 32).round(), torch.randn(8, 2)
    noise = _draws(m)
    out = m(x, cond=c, step="critic", noise=noise)
    # the head's term is the MSE of its prediction on the real batch, whatever the fakes are
    expected = F.mse_loss(m.critic(x, c, return_condition=True)[1], c)
    assert out["cond_loss_real"].item() == pytest.approx(expected.item(), rel=1e-5)
    other = dict(noise, z=torch.randn_like(noise["z"]))
    assert m(x, cond=c, step="critic", noise=other)["cond_loss_real"].item() == pytest.approx(expected.item(), rel=1e-5)
    assert out["critic_loss"].item() == pytest.approx(
        (-out["wasserstein_distance"] + out["gradient_penalty"] + m.lambda_cond * out["cond_loss_real"]).item(), rel=1e-5)
    # the penalty covers the adversarial score only: the head's weights do not move it
    with torch.no_grad():
        m.critic.condition_head.weight.add_(1.0)
    assert m(x, cond=c, step="critic", noise=noise)["gradient_penalty"].item() == pytest.approx(
        out["gradient_penalty"].item(), rel=1e-5)
    # the generator's term: the head's error on the fakes that were given a condition
    m.zero_grad(set_to_none=True)
    g = m(x, cond=c, step="generator", noise=noise)
    g["generator_loss"].backward()
    with_term = {n: p.grad.clone() for n, p in m.generator.named_parameters() if p.grad is not None}
    m.zero_grad(set_to_none=True)
    m.lambda_cond = 0.0
    m(x, cond=c, step="generator", noise=noise)["generator_loss"].backward()
    differs = [n for n, p in m.generator.named_parameters() if p.grad is not None
               and not torch.allclose(p.grad, with_term[n])]
    assert g["cond_loss_fake"] > 0 and differs, "the condition term does not reach the generator"
    assert all(p.grad is None for p in m.critic.parameters())           # frozen in the generator step


def test_condition_head_needs_projection_and_conditions():
    with pytest.raises(ValueError, match="projection"):
        Critic(5, 2, (64, 32), dim=8, cond_mode="concat", condition_head=True)
    with pytest.raises(ValueError, match="this critic has no condition head"):
        Critic(5, 2, (64, 32), dim=8, cond_mode="projection", minibatch_std_group=0)(torch.rand(2, 5, 64, 32), torch.randn(2, 2),
                                                             return_condition=True)


def test_reach_term_trains_generator_and_encoder_never_the_critic():
    m = _head_model(lambda_cond=0.0)
    m.lambda_rec, m.lambda_latent_kl = 1.0, 0.1
    x, c = torch.rand(8, 5, 64, 32).round(), torch.randn(8, 2)
    out = m(x, cond=c, step="generator", noise=_draws(m))
    reach = m.reach_loss(x, c)
    assert out["reconstruction_loss"].item() == pytest.approx(reach["reconstruction_loss"].item(), rel=1e-5)
    assert out["latent_kl"].item() == pytest.approx(reach["latent_kl"].item(), rel=1e-5)
    out["generator_loss"].backward()
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in m.encoder.parameters())
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in m.generator.parameters())
    assert all(p.grad is None for p in m.critic.parameters())
    # the batch KL is 0 for latents with the prior's moments, > 0 otherwise
    z = torch.randn(4096, 3, generator=torch.Generator().manual_seed(0))
    assert m.batch_latent_kl(z).item() < 1e-3 and m.batch_latent_kl(2 * z + 1).item() > 0.5


def test_autoencoder_step_is_the_reach_term_alone_on_generator_and_encoder():
    """forward(step="autoencoder"), the warm start's loss: lambda_rec * BCE(G(E(x, c), c), x) +
    lambda_latent_kl * the batch KL, computed by hand; no critic in it."""
    m = _head_model(lambda_cond=0.0)
    m.lambda_rec, m.lambda_latent_kl = 3.0, 0.5
    x, c = torch.rand(8, 5, 64, 32).round(), torch.randn(8, 2)
    out = m(x, cond=c, step="autoencoder")
    z = m.encoder(x, None, c)
    bce = torch.nn.functional.binary_cross_entropy(m.generator(z, c).clamp(1e-7, 1 - 1e-7), x)
    var, mu = z.var(0, unbiased=False), z.mean(0)
    kl = 0.5 * (var + mu ** 2 - 1 - torch.log(var + 1e-6)).mean()
    assert out["reconstruction_loss"].item() == pytest.approx(bce.item(), rel=1e-3)
    assert out["latent_kl"].item() == pytest.approx(kl.item(), rel=1e-4)
    assert out["autoencoder_loss"].item() == pytest.approx(3.0 * bce.item() + 0.5 * kl.item(), rel=1e-3)
    m.zero_grad(set_to_none=True)
    out["autoencoder_loss"].backward()
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in m.encoder.parameters())
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in m.generator.parameters())
    assert all(p.grad is None for p in m.critic.parameters())
    m.lambda_latent_kl = 0.0                          # the KL off: the reconstruction alone
    assert m(x, cond=c, step="autoencoder")["autoencoder_loss"].item() == pytest.approx(3.0 * bce.item(), rel=1e-3)


def _code_model():
    from conftest import TINY_WGAN
    cfg = copy.deepcopy(TINY_WGAN)
    cfg["data"].update(root_dir="unused", condition_csv="unused.csv")
    cfg["model"].update(lambda_rec=1.0, lambda_code=0.5, code_critic_dim=16)
    torch.manual_seed(0)
    return build_wgan_gp(validate_config(auto_complete_config(cfg, verbose=False)))


def test_code_critic_learns_prior_draws_from_encoder_latents_and_only_it_gets_the_gradient():
    """alpha-GAN's code critic loss: softplus(-K(z, c)) + softplus(K(E(x, c), c)) by hand, z the
    prior draws; the encoder is read only."""
    m = _code_model()
    x, c = torch.rand(8, 5, 64, 32).round(), torch.randn(8, 2)
    z = torch.randn(8, m.latent_dim, generator=torch.Generator().manual_seed(3))
    out = m.code_critic_step(x, c, prior_z=z)
    with torch.no_grad():
        expected = (F.softplus(-m.code_critic(z, c)).mean()
                    + F.softplus(m.code_critic(m.encoder(x, None, c), c)).mean())
    assert out["code_critic_loss"].item() == pytest.approx(expected.item(), rel=1e-5)
    out["code_critic_loss"].backward()
    assert all(p.grad is not None for p in m.code_critic.parameters())
    assert all(p.grad is None for net in (m.encoder, m.generator, m.critic) for p in net.parameters())
    with pytest.raises(ValueError, match=r"conditional code critic \(cond_dim = 2\) needs the latents' conditions"):
        m.code_critic(z)


def test_code_term_pulls_the_encoder_never_the_code_critic():
    """lambda_code: softplus(-K(E(x, c), c)) joins the generator loss with its weight; its gradient
    reaches the encoder; the code critic and the critic get none."""
    m = _code_model()
    x, c = torch.rand(8, 5, 64, 32).round(), torch.randn(8, 2)
    out = m(x, cond=c, step="generator", noise=_draws(m))
    with torch.no_grad():
        expected = F.softplus(-m.code_critic(m.encoder(x, None, c), c)).mean()
    assert out["code_loss"].item() == pytest.approx(expected.item(), rel=1e-4)
    m.lambda_code = 0.0
    without = m(x, cond=c, step="generator", noise=_draws(m))["generator_loss"]
    assert "code_loss" not in m(x, cond=c, step="generator", noise=_draws(m))
    assert (out["generator_loss"] - without).item() == pytest.approx(0.5 * expected.item(), rel=1e-3)
    m.zero_grad(set_to_none=True)
    out["generator_loss"].backward()
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in m.encoder.parameters())
    assert all(p.grad is None for net in (m.code_critic, m.critic) for p in net.parameters())
    with pytest.raises(ValueError, match="lambda_code = 1.0 needs a code_critic"):
        WGANGP(m.encoder, m.generator, m.critic, image_size=(64, 32), latent_dim=m.latent_dim, lambda_gp=10.0,
               n_critic=1, lambda_code=1.0)


def _with_moments(mean, cov, n=512):
    """n samples whose batch mean and (biased) covariance are exactly ``mean`` and ``cov``."""
    z = torch.randn(n, len(mean), generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    z = z - z.mean(0)
    z = z @ torch.linalg.inv(torch.linalg.cholesky(z.T @ z / n)).T          # whitened: cov I
    return (z @ torch.linalg.cholesky(cov).T + mean).float()


def test_full_latent_kl_is_the_gaussian_kl_and_sees_correlations_the_diagonal_misses():
    mean, r = torch.tensor([0.5, -1.0], dtype=torch.float64), 0.8
    correlated = _with_moments(mean, torch.tensor([[1.0, r], [r, 1.0]], dtype=torch.float64))
    # KL(N(mu, S) || N(0, I)) / D by hand: tr S = 2, |mu|^2 = 1.25, log det S = log(1 - r^2)
    by_hand = 0.5 * (2 + 1.25 - 2 - torch.log(torch.tensor(1 - r * r))).item() / 2
    assert WGANGP.batch_latent_kl(correlated, full=True).item() == pytest.approx(by_hand, rel=1e-4)
    assert WGANGP.batch_latent_kl(correlated).item() == pytest.approx(0.5 * 1.25 / 2, rel=1e-4)   # blind to r
    # uncorrelated latents: the two agree
    diagonal = _with_moments(mean, torch.diag(torch.tensor([0.5, 2.0], dtype=torch.float64)))
    assert WGANGP.batch_latent_kl(diagonal, full=True).item() == pytest.approx(
        WGANGP.batch_latent_kl(diagonal).item(), rel=1e-4)
    # bf16 autocast (training's precision) computes it in fp32, and the gradient flows
    z = correlated.clone().requires_grad_(True)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        kl = WGANGP.batch_latent_kl(z, full=True)
    assert kl.dtype == torch.float32 and kl.item() == pytest.approx(by_hand, rel=1e-4)
    kl.backward()
    assert z.grad.abs().sum() > 0


def test_latent_kl_option_reaches_the_generator_loss():
    m = _head_model(lambda_cond=0.0)
    m.lambda_rec, m.lambda_latent_kl, m.latent_kl = 1.0, 0.1, "full"
    x, c = torch.rand(32, 5, 64, 32).round(), torch.randn(32, 2)
    with torch.no_grad():
        z = m.encoder(x, None, c).float()
    assert m.reach_loss(x, c)["latent_kl"].item() == pytest.approx(m.batch_latent_kl(z, full=True).item(), rel=1e-4)
    assert m(x, cond=c, step="generator", noise=_draws(m, batch=32))["latent_kl"].item() == pytest.approx(
        m.batch_latent_kl(z, full=True).item(), rel=1e-4)
    with pytest.raises(ValueError, match="latent_kl must be one of"):
        WGANGP(m.encoder, m.generator, m.critic, image_size=(64, 32), latent_dim=m.latent_dim, lambda_gp=10,
               n_critic=1, latent_kl="spherical")


def test_adversarial_reconstruction_term_is_the_frozen_critics_score_of_the_reconstructions():
    m = _head_model(lambda_cond=0.0)
    m.lambda_rec = 1.0
    x, c = torch.rand(8, 5, 64, 32).round(), torch.randn(8, 2)
    base = m(x, cond=c, step="generator", noise=_draws(m))
    assert "reconstruction_adversarial_loss" not in base
    m.lambda_rec_adv = 0.5
    out = m(x, cond=c, step="generator", noise=_draws(m))
    with torch.no_grad():
        expected = -m.critic(torch.sigmoid(m.reach_loss(x, c)["reconstruction_logits"]), c, None).float().mean()
    assert out["reconstruction_adversarial_loss"].item() == pytest.approx(expected.item(), rel=1e-4, abs=1e-5)
    assert out["generator_loss"].item() == pytest.approx(base["generator_loss"].item() + 0.5 * expected.item(),
                                                         rel=1e-4, abs=1e-5)
    out["generator_loss"].backward()
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in m.encoder.parameters())
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in m.generator.parameters())
    assert all(p.grad is None for p in m.critic.parameters())


def test_trainer_steps_the_encoder_with_the_reach_term(tiny_cfg):
    from src_new.models.wgan_gp.train import WGANGPTrainer
    cfg = copy.deepcopy(tiny_cfg)
    cfg["model"]["lambda_rec"] = 1.0
    cfg["training"]["encoder_every"] = 0              # no inpainting-encoder steps: only the reach term moves it
    trainer = WGANGPTrainer(cfg, verbose=False)
    before = copy.deepcopy(trainer.model.encoder.state_dict())
    real, cond = next(iter(trainer.loader))
    row = trainer.train_step(real, cond)
    assert row["reconstruction_loss"] > 0
    assert any(not torch.equal(before[k], v) for k, v in trainer.model.encoder.state_dict().items())
    trainer.dist.close()


@pytest.mark.parametrize("style_dim", [0, 16])
def test_guidance_spaces_reduce_to_unguided_sampling_and_differ_beyond(style_dim):
    """Scale 0 is the unguided sampler in every space; scale 1 extrapolates nothing (logits and
    style: the conditional pass itself); other scales move the samples, each space its own way."""
    torch.manual_seed(0)
    m = WGANGP(Encoder(C, 10, (H, W), dim=8), Generator(C, 10, 2, (H, W), dim=8, res_blocks=(1, 1, 1),
                                                         style_dim=style_dim),
               Critic(C, 2, (H, W), dim=8), image_size=(H, W), latent_dim=10, lambda_gp=10.0, n_critic=5)
    with torch.no_grad():
        m.ema_generator.null_embed.add_(1.0)          # a null token unlike any condition
    z, c = torch.randn(4, 10), torch.randn(4, 2)
    plain = m.sample(z=z, cond=c)
    guided = {}
    for space in ("pixels", "logits", "style"):
        assert torch.equal(m.sample(z=z, cond=c, guidance_scale=0.0, guidance_space=space), plain)
        if space != "pixels":                     # pixels at 1 also equals it, up to the clamp
            assert torch.allclose(m.sample(z=z, cond=c, guidance_scale=1.0, guidance_space=space), plain, atol=1e-5)
        guided[space] = m.sample(z=z, cond=c, guidance_scale=3.0, guidance_space=space)
        assert guided[space].min() >= 0 and guided[space].max() <= 1
        assert not torch.allclose(guided[space], plain, atol=1e-3), space
    assert not torch.allclose(guided["pixels"], guided["logits"], atol=1e-3)
    assert not torch.allclose(guided["logits"], guided["style"], atol=1e-3)
    with pytest.raises(ValueError, match="guidance_space must be one of"):
        m.sample(z=z, cond=c, guidance_scale=2.0, guidance_space="features")


def test_patch_head_learns_to_score_a_speck_where_it_is():
    """On a toy problem (real: one clean bar; fake: the same with a detached 2x2 speck), a few
    critic steps with the patch head make it score the specked sample lower, and the patch
    scores drop most in the patch that holds the speck."""
    from src_new.models.wgan_gp import losses

    torch.manual_seed(0)
    d = Critic(1, 0, (32, 16), dim=8, minibatch_std_group=0, patch_weight=1.0)
    opt = torch.optim.Adam(d.parameters(), 2e-3, betas=(0.5, 0.9))

    def bars(n):
        x = torch.zeros(n, 1, 32, 16)
        for i, top in enumerate(torch.randint(2, 12, (n,)).tolist()):
            x[i, 0, top:top + 12, 2:6] = 1
        return x

    def speck(x, rows, cols):
        x = x.clone()
        for i, (r, c) in enumerate(zip(rows, cols)):
            x[i, 0, r:r + 2, c:c + 2] = 1
        return x

    for _ in range(60):
        real, base = bars(16), bars(16)
        fake = speck(base, torch.randint(0, 30, (16,)).tolist(), torch.randint(9, 14, (16,)).tolist())
        loss = -(d(real).mean() - d(fake).mean()) + losses.gradient_penalty(
            d, real, fake, None, torch.rand(16, 1, 1, 1), None, 10.0)
        opt.zero_grad()
        loss.backward()
        opt.step()
    with torch.no_grad():
        clean = bars(8)
        rows, cols = torch.randint(0, 30, (8,)).tolist(), [12] * 8
        specked = speck(clean, rows, cols)
        assert (d(clean) - d(specked)).min() > 0
        drop = (d.patch_scores(clean) - d.patch_scores(specked))[:, 0]              # (8, 8, 4)
        hit = [divmod(int(m.argmax()), drop.shape[-1]) for m in drop]
        assert all(abs(pr - r // 4) <= 1 and abs(pc - cols[0] // 4) <= 1 for (pr, pc), r in zip(hit, rows)), hit


def _pieces_minus_holes(img):
    """Reference Euler number of a binary (H, W) image: 4-connected pieces minus the holes
    (8-connected background regions that do not reach the border), by flood fill."""
    h, w = img.shape

    def regions(on, steps):
        seen, out = set(), []
        for start in ((i, j) for i in range(h) for j in range(w) if on(i, j)):
            if start in seen:
                continue
            seen.add(start)
            stack, region = [start], [start]
            while stack:
                i, j = stack.pop()
                for di, dj in steps:
                    n = (i + di, j + dj)
                    if 0 <= n[0] < h and 0 <= n[1] < w and n not in seen and on(*n):
                        seen.add(n)
                        stack.append(n)
                        region.append(n)
            out.append(region)
        return out

    four = [(0, 1), (1, 0), (0, -1), (-1, 0)]
    eight = four + [(1, 1), (1, -1), (-1, 1), (-1, -1)]
    pieces = regions(lambda i, j: img[i, j] > 0, four)
    background = regions(lambda i, j: img[i, j] == 0, eight)
    holes = [r for r in background if not any(i in (0, h - 1) or j in (0, w - 1) for i, j in r)]
    return len(pieces) - len(holes)


def test_euler_number_is_pieces_minus_holes_on_binary_images():
    from src_new.models.wgan_gp.losses import euler_number
    g = torch.Generator().manual_seed(0)
    x = (torch.rand(60, 2, 9, 7, generator=g) < torch.rand(60, 2, 1, 1, generator=g)).float()
    expected = torch.tensor([[_pieces_minus_holes(x[b, c]) for c in range(2)] for b in range(60)], dtype=torch.float32)
    assert torch.equal(euler_number(x), expected)
    assert expected.min() < 1 < expected.max()                  # holes and several pieces both occur
    diagonal = torch.zeros(1, 1, 4, 4)
    diagonal[0, 0, 1, 1] = diagonal[0, 0, 2, 2] = 1             # touching corners only: two 4-connected pieces
    assert euler_number(diagonal).item() == 2.0
    # on a soft image it is the expectation over independent Bernoulli pixels (exact: E is multilinear)
    p = torch.rand(1, 1, 3, 3, generator=g)
    bits = torch.tensor([[(k >> i) & 1 for i in range(9)] for k in range(512)], dtype=torch.float32)
    prob = (bits * p.flatten() + (1 - bits) * (1 - p.flatten())).prod(1)
    mean = (prob * euler_number(bits.view(512, 1, 3, 3))[:, 0]).sum()
    assert euler_number(p).item() == pytest.approx(mean.item(), abs=1e-5)


@pytest.mark.parametrize("gap", ["expected", "thresholded", "both"])
def test_euler_loss_removes_a_speck_and_keeps_the_body(gap):
    """Gradient descent on the topology term alone, from logits that draw a bar plus a detached
    speck, turns the speck off and leaves the bar: the term needs no critic to see a stray piece."""
    from src_new.models.wgan_gp.losses import euler_loss
    real = torch.zeros(4, 1, 16, 8)
    real[:, 0, 2:12, 2:4] = 1                                   # one piece each
    logits = torch.full((1, 1, 16, 8), -6.0)
    logits[0, 0, 2:12, 2:4] = 6.0
    logits[0, 0, 14, 6] = 1.5                                   # the speck: p = 0.82
    logits.requires_grad_(True)
    opt = torch.optim.Adam([logits], lr=0.1)
    first = None
    for _ in range(50):
        loss = euler_loss(logits, real, gap)
        first = loss.item() if first is None else first
        opt.zero_grad()
        loss.backward()
        opt.step()
    p = torch.sigmoid(logits.detach())[0, 0]
    assert p[14, 6] < 0.5 and (p[2:12, 2:4] > 0.5).all()
    assert loss.item() < 0.1 * first
    # a grey image (every pixel 0.5: an expected Euler number far from any piece count, as at
    # initialisation) is beyond the gap limit: no gradient, the adversarial term leads
    grey = torch.zeros(1, 1, 16, 8, requires_grad=True)
    euler_loss(grey, real, gap).backward()
    assert grey.grad.abs().max() == 0


def test_thresholded_euler_gap_pulls_only_samples_in_the_wrong_number_of_pieces():
    """The same bar with a faint speck (below the threshold: the user sees one piece) and with a
    visible one (two pieces): the thresholded gap leaves the first alone and pulls the second at
    the full Huber slope; the expected gap pulls both, the faint one too; ``both`` adds them."""
    from src_new.models.wgan_gp.losses import euler_loss
    real = torch.zeros(4, 1, 16, 8)
    real[:, 0, 2:12, 2:4] = 1
    logits = torch.full((2, 1, 16, 8), -6.0)
    logits[:, 0, 2:12, 2:4] = 6.0
    logits[0, 0, 14, 6], logits[1, 0, 14, 6] = -0.5, 0.5
    losses, grads = {}, {}
    for gap in ("expected", "thresholded", "both"):
        x = logits.clone().requires_grad_(True)
        losses[gap] = euler_loss(x, real, gap)
        losses[gap].backward()
        grads[gap] = x.grad
    assert losses["thresholded"].item() == pytest.approx(0.25)  # huber(1) = 0.5 on one of two samples
    assert grads["thresholded"][0].abs().max() == 0             # one piece as thresholded: not pulled
    assert grads["thresholded"][1, 0, 14, 6] > 0                # descent turns the visible speck off
    assert grads["expected"][0, 0, 14, 6] > 0                   # the expected gap also pulls the faint one
    assert losses["both"].item() == pytest.approx(losses["expected"].item() + losses["thresholded"].item())
    assert torch.allclose(grads["both"], grads["expected"] + grads["thresholded"])


def test_an_unknown_euler_gap_is_refused():
    m = _head_model(lambda_cond=0.0)
    with pytest.raises(ValueError, match="euler_gap must be one of"):
        WGANGP(m.encoder, m.generator, m.critic, image_size=(64, 32), latent_dim=m.latent_dim, lambda_gp=10.0,
               n_critic=1, euler_gap="hard")


def test_euler_term_joins_the_generator_loss_only_when_on(monkeypatch):
    from src_new.models.wgan_gp import losses
    monkeypatch.setattr(losses, "EULER_GAP_LIMIT", float("inf"))     # the untrained model draws grey images
    m = _head_model(lambda_cond=0.0)
    x, c = torch.zeros(8, 5, 64, 32), torch.randn(8, 2)
    x[:, :, 10:20, 5:9] = 1
    base = m(x, cond=c, step="generator", noise=_draws(m))
    assert "euler_loss" not in base
    m.lambda_euler = 0.5
    _assert_term_joins_generator_loss(m, x, c, base, "euler_loss", 0.5)


def _assert_term_joins_generator_loss(m, x, c, base, key, weight):
    """With its weight set, the term ``key`` is positive, adds weight * itself to ``base``'s
    generator loss (same draws) and trains the generator, never the critic."""
    out = m(x, cond=c, step="generator", noise=_draws(m))
    assert out[key].item() > 0
    assert out["generator_loss"].item() == pytest.approx(base["generator_loss"].item() + weight * out[key].item(),
                                                         rel=1e-4, abs=1e-5)
    out["generator_loss"].backward()
    assert all(p.grad is None for p in m.critic.parameters())
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in m.generator.parameters())



def test_expected_measurements_are_exact_on_certain_lines_and_the_mean_on_uncertain_ones():
    from src_new.utils.geometry import expected_measurements, union_measurements
    g = torch.Generator().manual_seed(0)
    x = (torch.rand(40, 3, 12, 6, generator=g) < 0.04 * torch.rand(40, 1, 1, 1, generator=g)).float()
    x[0] = 0                                                     # an empty image measures 0 everywhere
    union = x.amax(1)
    line = lambda occupied: torch.where(occupied > 0.5, -1e4, 0.0)
    exact, soft = union_measurements(x.numpy()), expected_measurements(line(union.amax(2)), line(union.amax(1)))
    assert (exact["height"] < 12).any() and (exact["width"] == 0).any()    # partial and empty extents occur
    for name, value in exact.items():
        assert np.array_equal(soft[name].numpy(), value.astype(np.float32)), name
    # uncertain lines: the mean over every occupancy pattern of 5 independent rows (and columns)
    p = torch.rand(5, generator=g)
    bits = torch.tensor([[(k >> i) & 1 for i in range(5)] for k in range(32)], dtype=torch.float32)
    prob = (bits * p + (1 - bits) * (1 - p)).prod(1).numpy()
    rows, cols = union_measurements(bits.view(32, 1, 5, 1).numpy()), union_measurements(bits.view(32, 1, 1, 5).numpy())
    expected = expected_measurements(torch.log1p(-p)[None], torch.log1p(-p)[None])
    for name, value in {**{k: rows[k] for k in ("height", "y_end", "y_from_bottom")},
                        **{k: cols[k] for k in ("width", "x_end", "x_from_right")}}.items():
        assert expected[name].item() == pytest.approx(float((prob * value).sum()), abs=1e-5), name

SIZE_FITS = [{"measure": "x_end", "slope": 2.0, "intercept": -1.0},   # a mirrored half's full width
             {"measure": "height", "slope": 1.0, "intercept": 0.0}]


def test_size_loss_moves_the_edges_to_the_requested_size_by_the_data_convention():
    """Gradient descent on the size term alone moves the edges of a drawn bar (its logits a
    signed distance to three learnable edges) to the requested size, the width measured by a
    mirrored convention (2 * x_end - 1) rather than the bounding box; the measured value is the
    thresholded image's, so the term is 0 once the size is right."""
    from src_new.models.wgan_gp.losses import line_measurements, size_loss
    from src_new.utils.geometry import union_measurements
    rows, cols = torch.arange(24.0)[:, None], torch.arange(12.0)[None, :]
    edges = torch.tensor([5.5, 15.5, 3.5], requires_grad=True)       # top, bottom, right: 10 rows, x_end 4
    draw = lambda: torch.stack([3 * torch.minimum(torch.minimum(rows - edges[0], edges[1] - rows), edges[2] - cols),
                                torch.full((24, 12), -8.0)])[None]   # (1, 2, 24, 12), the 2nd component empty
    requested = torch.tensor([[11.0, 13.0]])                      # x_end 6, height 13
    opt = torch.optim.SGD([edges], lr=0.1)
    for _ in range(200):
        loss = size_loss(draw(), requested, torch.ones(1), SIZE_FITS)
        opt.zero_grad()
        loss.backward()
        opt.step()
    logits = draw().detach()
    measured = union_measurements(torch.sigmoid(logits).numpy())
    assert measured["x_end"][0] == 6 and measured["height"][0] == 13
    assert size_loss(logits, requested, torch.ones(1), SIZE_FITS).item() == 0
    assert {k: v.item() for k, v in line_measurements(logits).items()} == {k: v[0] for k, v in measured.items()}
    # a sample whose condition was dropped is not asked anything; no column fitted: a clear error
    fresh = torch.zeros(1, 2, 24, 12, requires_grad=True)
    size_loss(fresh, requested, torch.zeros(1), SIZE_FITS).backward()
    assert fresh.grad.abs().max() == 0
    with pytest.raises(ValueError, match="size_conventions"):
        size_loss(fresh, requested, torch.ones(1), [None, None])


def test_size_term_joins_the_generator_loss_only_when_on():
    from src_new.datasets.multicomponent import ConditionNormalizer
    m = _head_model(lambda_cond=0.0)
    m.cond_normalizer = ConditionNormalizer([20.0, 40.0], [5.0, 8.0])
    x, c = torch.zeros(8, 5, 64, 32), torch.randn(8, 2)
    base = m(x, cond=c, step="generator", noise=_draws(m))
    assert "size_loss" not in base
    m.lambda_size = 0.5
    with pytest.raises(ValueError, match="size_conventions"):
        m(x, cond=c, step="generator", noise=_draws(m))
    m.size_conventions = [{"measure": "width", "slope": 1.0, "intercept": 0.0}, None]   # height fits nothing
    _assert_term_joins_generator_loss(m, x, c, base, "size_loss", 0.5)


def test_condition_planes_hold_coordinates_condition_and_presence():
    from src_new.models.wgan_gp.layers import condition_planes, plane_count

    like, c = torch.zeros(3, 7, 4, 6), torch.tensor([[0.5, -2.0], [1.0, 3.0], [-1.0, 0.25]])
    p = condition_planes(c, torch.tensor([False, True, False]), 2, like)
    assert p.shape == (3, plane_count(2), 4, 6) == (3, 5, 4, 6)
    assert torch.equal(p[0, 0, :, 0], torch.linspace(-1, 1, 4)) and torch.equal(p[0, 1, 0], torch.linspace(-1, 1, 6))
    assert torch.equal(p[0, 2:, 2, 3], torch.tensor([0.5, -2.0, 1.0]))        # the condition, given
    assert torch.equal(p[1, 2:, 1, 1], torch.zeros(3))                        # dropped: zeros, presence 0
    assert torch.equal(p[2, 2:].amax((1, 2)), p[2, 2:].amin((1, 2)))            # constant over the image
    missing = condition_planes(None, None, 2, like)
    assert torch.equal(missing[:, 2:], torch.zeros(3, 3, 4, 6))
    assert condition_planes(None, None, 0, like).shape == (3, plane_count(0), 4, 6) == (3, 2, 4, 6)


@pytest.mark.parametrize("upsample", ["nearest_conv", "transpose"])
def test_generator_condition_planes_carry_the_condition_at_every_stage(upsample):
    """With cond_planes the condition reaches the image through the planes alone (its embedding
    zeroed); a dropped condition is the missing one; samples stay independent of each other."""
    torch.manual_seed(0)
    g = Generator(C, 10, 2, (H, W), dim=8, res_blocks=(1, 1, 1), upsample=upsample, cond_planes=True)
    plain = Generator(C, 10, 2, (H, W), dim=8, res_blocks=(1, 1, 1), upsample=upsample)
    convs = lambda gen: [m for m in gen.modules() if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d))]
    widened = [a.in_channels - b.in_channels for a, b in zip(convs(g), convs(plain))]
    assert widened.count(5) == 4 and set(widened) == {0, 5}     # three upsampling convs and the output conv
    with torch.no_grad():
        g.cond_embed.weight.zero_()
        g.cond_embed.bias.zero_()
    z, c = torch.randn(4, 10), torch.randn(4, 2)
    c2 = c.clone()
    c2[1:] += 1.0
    a, b = g(z, c), g(z, c2)
    assert torch.allclose(a[0], b[0], atol=1e-6) and not torch.allclose(a[1:], b[1:], atol=1e-4)
    drop = torch.tensor([True, False, True, False])
    assert torch.allclose(g(z, c, drop_mask=drop)[drop], g(z[drop], None), atol=1e-6)
    with torch.no_grad():
        plain.cond_embed.weight.zero_()
        plain.cond_embed.bias.zero_()
    assert torch.allclose(plain(z, c), plain(z, c2))          # without planes the embedding was the only way in


def test_critic_condition_planes_let_its_input_see_the_condition():
    torch.manual_seed(0)
    d = Critic(C, 2, (H, W), dim=8, minibatch_std_group=0, cond_planes=True)
    assert d.features[0].in_channels == C + 5
    with torch.no_grad():
        d.cond_embed.weight.zero_()
        d.cond_embed.bias.zero_()
    x, c = torch.rand(3, C, H, W), torch.randn(3, 2)
    assert not torch.allclose(d(x, c), d(x, c + 1.0))
    assert torch.allclose(d(x, c, drop_mask=torch.ones(3, dtype=torch.bool)), d(x, None), atol=1e-6)
    with pytest.raises(ValueError, match="no cond_planes"):
        Critic(C, 2, (H, W), dim=8, condition_head=True, cond_planes=True)


@pytest.mark.parametrize("planes, gen, critic", [("none", False, False), ("generator", True, False),
                                                 ("critic", False, True), ("both", True, True)])
def test_cond_planes_config_builds_the_planes_where_it_says(planes, gen, critic):
    cfg = load_config("wgan_gp_toy")
    cfg["model"]["cond_planes"] = planes
    m = build_wgan_gp(validate_config(auto_complete_config(cfg, verbose=False)))
    assert (m.generator.cond_planes, m.critic.cond_planes) == (gen, critic)
    assert m.ema_generator.cond_planes == gen


def test_critic_score_alone_is_each_images_score_in_a_group_of_its_copies():
    torch.manual_seed(0)
    d = Critic(C, 2, (H, W), dim=8, minibatch_std_group=4, cond_planes=True, patch_weight=0.5)
    x, c = torch.rand(6, C, H, W), torch.randn(6, 2)
    alone = d.score_alone(x, c)
    copies = torch.stack([d(x[i:i + 1].repeat(4, 1, 1, 1), c[i:i + 1].repeat(4, 1))[0, 0] for i in range(6)])
    assert alone.shape == (6,) and torch.allclose(alone, copies, atol=1e-5)
    assert torch.allclose(d.score_alone(x[:3], c[:3]), alone[:3], atol=1e-6)     # the others do not move it
    assert not torch.allclose(d.score_alone(x, None), alone)                       # the null condition differs


def test_sample_candidates_keeps_the_latent_the_critic_scores_highest():
    m = tiny_model()
    m.critic = Critic(C, 2, (H, W), dim=8, minibatch_std_group=4, cond_planes=True)
    c = torch.randn(5, 2)
    assert torch.equal(m.sample(cond=c, generator=torch.Generator().manual_seed(3)),
                       m.sample(cond=c, generator=torch.Generator().manual_seed(3), candidates=1))
    best = m.sample(cond=c, generator=torch.Generator().manual_seed(3), candidates=3)
    g = torch.Generator().manual_seed(3)
    each = torch.stack([m.sample(cond=c, z=torch.randn(5, m.latent_dim, generator=g)) for _ in range(3)])
    scores = torch.stack([m.critic.score_alone(images, c) for images in each])
    expected = each[scores.argmax(0), torch.arange(5)]
    assert torch.allclose(best, expected) and len(set(scores.argmax(0).tolist())) > 1
    with pytest.raises(ValueError, match="candidates"):
        m.sample(cond=c, z=torch.randn(5, m.latent_dim), candidates=2)
    with pytest.raises(ValueError, match="candidates"):
        m.sample(cond=c, candidates=0)


def test_variational_encoder_reach_term_decodes_a_posterior_draw_with_each_designs_kl():
    """model.latent_kl: sample (VAE-GAN): the encoder gives (mu, log-variance), forward is mu;
    the reach term's KL is each design's Gaussian against N(0, I), by hand, and it decodes a
    reparametrized draw, so the log-variance head gets a gradient; the KL is 0 at the prior."""
    from conftest import TINY_WGAN
    cfg = copy.deepcopy(TINY_WGAN)
    cfg["data"].update(root_dir="unused", condition_csv="unused.csv")
    cfg["model"].update(lambda_rec=1.0, lambda_latent_kl=0.5, latent_kl="sample")
    torch.manual_seed(0)
    m = build_wgan_gp(validate_config(auto_complete_config(cfg, verbose=False)))
    x, c = torch.rand(8, 5, 64, 32).round(), torch.randn(8, 2)
    mu, logvar = m.encoder.posterior(x, None, c)
    assert mu.shape == logvar.shape == (8, m.latent_dim) and torch.equal(m.encoder(x, None, c), mu)
    by_hand = (0.5 * (mu ** 2 + logvar.exp() - 1 - logvar)).mean()
    torch.manual_seed(1)
    reach = m.reach_loss(x, c)
    assert reach["latent_kl"].item() == pytest.approx(by_hand.item(), rel=1e-5)
    torch.manual_seed(1)
    draw = mu + torch.randn_like(mu) * torch.exp(0.5 * logvar)
    assert torch.allclose(reach["latent"], draw, atol=1e-6)
    assert not torch.allclose(reach["latent"], mu)
    reach["reconstruction_loss"].backward()           # the reconstruction alone reaches the variances
    logvar_rows = m.encoder.head[-1].weight.grad[m.latent_dim:]
    assert logvar_rows.abs().sum() > 0
    from src_new.models.wgan_gp.losses import posterior_kl
    assert posterior_kl(torch.zeros(4, 3), torch.zeros(4, 3)).item() == 0.0
    with pytest.raises(ValueError, match="variational encoder"):
        Encoder(C, 10, (H, W), dim=8).posterior(x)
    # with a code critic too, it scores the same draws the reach term decodes, not the means
    cfg["model"].update(lambda_code=1.0, code_critic_dim=16)
    m = build_wgan_gp(validate_config(auto_complete_config(cfg, verbose=False)))
    z = torch.randn(8, m.latent_dim, generator=torch.Generator().manual_seed(3))
    torch.manual_seed(2)
    out = m.code_critic_step(x, c, prior_z=z)
    with torch.no_grad():
        mu, logvar = m.encoder.posterior(x, None, c)
        torch.manual_seed(2)
        draw = mu + torch.randn_like(mu) * torch.exp(0.5 * logvar)
        expected = F.softplus(-m.code_critic(z, c)).mean() + F.softplus(m.code_critic(draw, c)).mean()
        at_means = F.softplus(-m.code_critic(z, c)).mean() + F.softplus(m.code_critic(mu, c)).mean()
    assert out["code_critic_loss"].item() == pytest.approx(expected.item(), rel=1e-5)
    assert out["code_critic_loss"].item() != pytest.approx(at_means.item(), rel=1e-5)
