"""The performance paths compute what the plain ones do: channels_last layout, fused Adam with
layout alignment, compiled no-grad generator passes; and the model against a literal
iteration (separate critic passes, NCHW)."""
import copy

import pytest
import torch

from src_new.models.wgan_gp import Critic, Encoder, Generator, WGANGP
from src_new.models.wgan_gp.train import align_layouts, make_optimizers
from src_new.models.wgan_gp.wgan import set_layout

C, H, W = 5, 64, 32
TCFG = {"beta1": 0.0, "beta2": 0.9, "lr_generator": 1e-3, "lr_critic": 1e-3, "lr_encoder": 1e-3}


def tiny_model(**kw):
    torch.manual_seed(0)
    enc = Encoder(C, 10, (H, W), dim=8)
    gen = Generator(C, 10, 2, (H, W), dim=8, res_blocks=(1, 1, 1), bottleneck_res_blocks=1, style_dim=128)
    critic = Critic(C, 2, (H, W), dim=8, cond_mode="concat", minibatch_std_group=0)
    return WGANGP(enc, gen, critic, image_size=(H, W), latent_dim=10, **{"lambda_gp": 10.0, "n_critic": 5, **kw})


def nchw(m):
    """``m`` with NCHW activations and weights (the library runs channels_last)."""
    for net in (m.generator, m.ema_generator, m.critic):
        set_layout(net, torch.contiguous_format)
    return m


def plan_critic_loss(m, real, cond, noise):
    """The plan's critic loss, literally: separate passes, the concatenated condition map;
    the critic sees the generator's per-sample dropout mask (joint training)."""
    drop = noise["drop_mask"]
    with torch.no_grad():
        fake = m.generator(noise["z"], cond, drop)
    d_real, d_fake = m.critic(real, cond, drop), m.critic(fake, cond, drop)
    eps = noise["eps"]
    x_hat = (eps * real + (1 - eps) * fake).requires_grad_(True)
    out = m.critic(x_hat, cond, drop)
    (grad,) = torch.autograd.grad(out, x_hat, torch.ones_like(out), create_graph=True)
    gp = m.lambda_gp * ((grad.flatten(1).norm(2, dim=1) - 1) ** 2).mean()
    return -(d_real.mean() - d_fake.mean()) + gp


def plan_generator_loss(m, cond, noise):
    fake = m.generator(noise["z"], cond, noise["drop_mask"])
    return -m.critic(fake, cond, noise["drop_mask"]).mean()


def grads(module):
    return [p.grad.clone() for p in module.parameters()]


def assert_close_lists(a, b, atol=1e-5, rtol=1e-4):
    assert len(a) == len(b)
    for u, v in zip(a, b):
        assert torch.allclose(u, v, atol=atol, rtol=rtol), (u - v).abs().max()


def test_fast_model_matches_the_plans_literal_losses_and_gradients():
    fast = tiny_model()
    plain = nchw(tiny_model())
    plain.load_state_dict(fast.state_dict())
    assert fast.critic.features[0].weight.is_contiguous(memory_format=torch.channels_last)
    assert plain.critic.features[0].weight.is_contiguous()
    x, c = torch.rand(4, C, H, W).round(), torch.randn(4, 2)
    noise = fast.draw_noise(4, x.device)
    noise["drop_mask"][0] = True                      # one dropped condition

    fast.zero_grad(set_to_none=True)
    ours = fast(x, cond=c, step="critic", noise=noise)["critic_loss"]
    ours.backward()
    plain.zero_grad(set_to_none=True)
    ref = plan_critic_loss(plain, x, c, noise)
    ref.backward()
    assert torch.allclose(ours, ref, atol=1e-5)
    assert_close_lists(grads(fast.critic), grads(plain.critic))
    assert all(p.grad is None for p in fast.generator.parameters())

    fast.zero_grad(set_to_none=True)
    out = fast(x, cond=c, step="generator", noise=noise)
    out["generator_loss"].backward()
    plain.zero_grad(set_to_none=True)
    ref = plan_generator_loss(plain, c, noise)
    ref.backward()
    assert torch.allclose(out["generator_loss"], ref, atol=1e-5)
    assert_close_lists(grads(fast.generator), grads(plain.generator))
    assert all(p.grad is None for p in fast.critic.parameters())       # frozen in the fast path


def test_trainer_optimizers_match_default_adam():
    """The trainer's optimizers (fused Adam over channels_last weights) apply the same updates
    as the default Adam over NCHW weights, given the same gradients. (Gradients are compared
    in the test above; Adam's first steps are ~lr * sign(grad), so rounding-level gradient
    differences are not compared through it.)"""
    fast, plain = tiny_model(), nchw(tiny_model())
    plain.load_state_dict(fast.state_dict())
    opt_g, opt_c, _ = make_optimizers(fast, TCFG)
    assert opt_g.defaults["fused"] and opt_c.defaults["fused"]
    ref_c = torch.optim.Adam(plain.critic.parameters(), 1e-3, betas=(0.0, 0.9))
    ref_g = torch.optim.Adam(plain.generator.parameters(), 1e-3, betas=(0.0, 0.9))
    x, c = torch.rand(4, C, H, W).round(), torch.randn(4, 2)
    for _ in range(3):
        for step, key, opt, ref, name in (("critic", "critic_loss", opt_c, ref_c, "critic"),
                                          ("generator", "generator_loss", opt_g, ref_g, "generator")):
            opt.zero_grad(set_to_none=True)
            ref.zero_grad(set_to_none=True)
            fast(x, cond=c, step=step)[key].backward()
            for p, q in zip(getattr(fast, name).parameters(), getattr(plain, name).parameters()):
                q.grad = None if p.grad is None else p.grad.contiguous()
            opt.step()
            ref.step()
    for name in ("critic", "generator"):
        for (k, a), b in zip(getattr(fast, name).state_dict().items(), getattr(plain, name).state_dict().values()):
            assert torch.allclose(a, b, atol=1e-6), (name, k)


def test_fused_adam_with_mismatched_layouts_is_aligned():
    """Fused Adam misreads a gradient or moment whose strides differ from the parameter's;
    the pre-hook fixes them (gradient rebuilt NCHW by the all-reduce, moments from an NCHW
    checkpoint)."""
    torch.manual_seed(0)
    p = torch.nn.Parameter(torch.randn(8, 6, 3, 3).contiguous(memory_format=torch.channels_last))
    q = torch.nn.Parameter(p.detach().clone().contiguous())
    fused = torch.optim.Adam([p], 0.1, fused=True)
    fused.register_step_pre_hook(align_layouts)
    loop = torch.optim.Adam([q], 0.1, foreach=False)
    for i in range(3):
        g = torch.randn(8, 6, 3, 3)                   # NCHW gradient for a channels_last weight
        p.grad, q.grad = g.clone(), g.clone()
        fused.step()
        loop.step()
        if i == 0:
            for key in ("exp_avg", "exp_avg_sq"):
                fused.state[p][key] = fused.state[p][key].contiguous()
    assert torch.allclose(p, q, atol=1e-6)


@pytest.mark.parametrize("cond_mode", ["concat", "projection"])
def test_critic_layouts_agree(cond_mode):
    torch.manual_seed(0)
    d = Critic(3, 2, (40, 24), dim=4, cond_emb_dim=6, cond_mode=cond_mode, minibatch_std_group=0).double()
    x, c = torch.rand(2, 3, 40, 24, dtype=torch.float64), torch.randn(2, 2, dtype=torch.float64)
    ref = d(x, c)
    d.memory_format = torch.channels_last
    assert torch.allclose(d(x, c), ref, atol=1e-12)


def test_layout_switch_keeps_values_and_outputs_nchw():
    m = tiny_model()
    assert m.generator.memory_format is torch.channels_last and m.ema_generator.memory_format is torch.channels_last
    state = {k: v.clone() for k, v in m.state_dict().items()}
    z, c = torch.randn(3, 10), torch.randn(3, 2)
    out_cl = m.generator(z, c)
    assert out_cl.is_contiguous()                     # callers always get NCHW images
    for net in (m.generator, m.ema_generator, m.critic):
        set_layout(net, torch.contiguous_format)
    assert all(p.is_contiguous() for p in m.parameters())
    assert all(torch.equal(state[k], v) for k, v in m.state_dict().items())
    assert torch.allclose(m.generator(z, c), out_cl, atol=1e-5)


def test_compiled_generator_passes_match_eager():
    m = tiny_model()
    x, c = torch.rand(2, C, H, W).round(), torch.randn(2, 2)
    noise = m.draw_noise(2, x.device)
    z = torch.randn(2, 10)
    eager_loss = m(x, cond=c, step="critic", noise=noise)["critic_loss"]
    eager_sample = m.sample(z=z, cond=c, guidance_scale=2.0)
    compiled = copy.deepcopy(m).compile_generator_passes()
    loss = compiled(x, cond=c, step="critic", noise=noise)["critic_loss"]
    loss.backward()
    assert torch.allclose(loss, eager_loss, atol=1e-5)
    assert torch.allclose(compiled.sample(z=z, cond=c, guidance_scale=2.0), eager_sample, atol=1e-5)
    assert set(compiled.state_dict()) == set(m.state_dict())          # no compiled copies in checkpoints
