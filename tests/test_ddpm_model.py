"""DDPM networks and diffusion wrapper: shapes, ranges, overfitting, DDIM determinism,
guidance, EMA use, inpainting exactness, input validation and the default parameter count."""
import copy

import pytest
import torch

from src_new.models.ddpm import GaussianDiffusion, UNet, build_ddpm
from src_new.models.ddpm.diffusion import cosine_alpha_bar
from src_new.pipeline.config import auto_complete_config, load_config, validate_config
from src_new.utils.masks import create_mask

C, H, W = 5, 64, 32
SMALL = (16, 8)
NAMES = ["group_nc", "group_km", "bt", "fpu", "tpc"]


@pytest.fixture(autouse=True, scope="module")
def single_thread():
    # These tensors are tiny: a second thread only adds synchronization, which on a busy
    # 2-core machine made the overfit test 30x slower.
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def tiny(size=(H, W), timesteps=50, **kw):
    """dim=8 networks; ``size=SMALL`` where the image size does not matter, to keep CPU time low."""
    torch.manual_seed(0)
    unet = UNet(C, 2, size, dim=8, dim_mults=(1, 2), res_blocks=1)
    return GaussianDiffusion(unet, image_size=size, timesteps=timesteps, **kw)


def seeded(seed=0):
    return torch.Generator().manual_seed(seed)


def n_params(module):
    return sum(p.numel() for p in module.parameters())


def test_parameter_count_at_default_config():
    model = build_ddpm(validate_config(auto_complete_config(load_config("ddpm_default"), verbose=False)))
    assert 10e6 <= n_params(model) <= 14e6
    assert n_params(model) == n_params(UNet(5, 2, (64, 32)))   # the UNet defaults are the default config
    assert not any(isinstance(m, torch.nn.modules.batchnorm._BatchNorm) for m in model.modules())
    assert model.timesteps == 1000 and model.cond_drop_prob == 0.1 and model.ema_unet is None


def test_cosine_schedule():
    ab = cosine_alpha_bar(1000)
    assert ab.shape == (1000,) and (ab[1:] < ab[:-1]).all()
    assert 0.99 < ab[0] <= 1 and 0 < ab[-1] < 1e-3


def test_shapes_loss_and_levels():
    m = tiny()
    x, c, t = torch.rand(2, C, H, W), torch.randn(2, 2), torch.tensor([0, 49])
    assert m.unet(x, t, c).shape == (2, C, H, W)
    out = m(x, cond=c)
    assert set(out) == {"loss"} and out["loss"].dim() == 0 and out["loss"].requires_grad
    assert torch.isfinite(m(x)["loss"])                   # unconditional batches train too
    deep = UNet(C, 2, (H, W), dim=8, dim_mults=(1, 2, 4), res_blocks=2, attn_resolutions=[16], dropout=0.1)
    assert deep(x, t, c).shape == (2, C, H, W)
    assert any(type(mod).__name__ == "Attention" for mod in deep.downs.modules())
    with pytest.raises(ValueError, match=r"divisible by 4"):
        UNet(C, 2, (62, 32), dim=8, dim_mults=(1, 2, 4))


def test_null_condition_and_drop_mask():
    m = tiny(SMALL)
    x, c, t = torch.rand(2, C, *SMALL), torch.randn(2, 2) * 5, torch.tensor([5, 5])
    with torch.no_grad():
        m.unet.null_embed.normal_()
        uncond, cond = m.unet(x, t, None), m.unet(x, t, c)
        mixed = m.unet(x, t, c, torch.tensor([True, False]))
    assert not torch.allclose(uncond, cond)
    assert torch.allclose(mixed[0], uncond[0], atol=1e-6) and torch.allclose(mixed[1], cond[1], atol=1e-6)


@pytest.mark.parametrize("objective", ["pred_v", "pred_noise"])
def test_loss_decreases_on_overfit_batch(objective):
    m = tiny(SMALL, objective=objective)
    x, c = torch.rand(4, C, *SMALL).round(), torch.randn(4, 2)
    opt = torch.optim.Adam(m.parameters(), 3e-3)

    def held_out_loss():        # the same timesteps and noise before and after training
        torch.manual_seed(123)
        with torch.no_grad():
            return sum(m(x, cond=c)["loss"].item() for _ in range(8)) / 8

    before = held_out_loss()
    torch.manual_seed(1)
    for _ in range(120):       # v is the harder target on random bits: 0.71x here vs 0.47x for eps
        opt.zero_grad()
        m(x, cond=c)["loss"].backward()
        opt.step()
    assert held_out_loss() < 0.8 * before


@pytest.mark.parametrize("objective", ["pred_v", "pred_noise"])
def test_training_target_and_sampling_conversion_agree(objective):
    # The x0 / eps that sampling derives from a perfect prediction of the training target
    # must be the clean image and the noise that made x_t, at every step incl. the noisiest.
    m = tiny(SMALL, timesteps=1000, objective=objective)
    x0, noise = torch.rand(3, C, *SMALL).round() * 2 - 1, torch.randn(3, C, *SMALL)
    for t in (0, 500, 998):
        ab = m.alpha_bar[t]
        x_t = m.q_sample(x0, torch.full((3,), t), noise)
        target = ab.sqrt() * noise - (1 - ab).sqrt() * x0 if objective == "pred_v" else noise
        x0_hat, eps_hat = m._predict_x0(x_t, t, target)
        assert torch.allclose(x0_hat, x0, atol=2e-3 if objective == "pred_noise" and t == 998 else 1e-4)
        assert torch.allclose(eps_hat, noise, atol=1e-3)


class OracleDenoiser(torch.nn.Module):
    """The exact optimal prediction for a finite training set: E[x0 | x_t] is a softmax-weighted
    mean of the training images, turned into the objective's target."""

    def __init__(self, images, alpha_bar, objective):
        super().__init__()
        self.images, self.alpha_bar, self.objective = images.double(), alpha_bar.double(), objective
        self.channels, self.cond_dim, self.image_size = images.shape[1], 0, tuple(images.shape[2:])

    def forward(self, x, t, cond=None, drop_mask=None):
        ab = self.alpha_bar[t[0]]
        flat = self.images.flatten(1)
        dist = torch.cdist(x.flatten(1).double(), ab.sqrt() * flat) ** 2
        x0 = (torch.softmax(-dist / (2 * (1 - ab)), dim=1) @ flat).view_as(x)
        eps = (x.double() - ab.sqrt() * x0) / (1 - ab).sqrt()
        return (ab.sqrt() * eps - (1 - ab).sqrt() * x0 if self.objective == "pred_v" else eps).float()


@pytest.mark.parametrize("objective", ["pred_v", "pred_noise"])
@pytest.mark.parametrize("sampler,steps,eta", [("ddim", 10, 0.0), ("ddim", 10, 1.0), ("ddpm", None, None)])
def test_samplers_with_the_exact_denoiser_reproduce_training_images(objective, sampler, steps, eta):
    # Separates sampler bugs from learning problems: with the optimal denoiser of 6 sparse
    # images (about 4% ones, like the tire masks), every sample must land on a training image.
    gen = torch.Generator().manual_seed(0)
    images = (torch.rand(6, C, *SMALL, generator=gen) < 0.04).float() * 2 - 1
    m = GaussianDiffusion(UNet(C, 0, SMALL, dim=8, dim_mults=(1, 2), res_blocks=1), image_size=SMALL,
                          timesteps=1000, objective=objective)
    m.ema_unet = OracleDenoiser(images, m.alpha_bar, objective)
    out = m.sample(batch_size=8, sampler=sampler, steps=steps, eta=eta, generator=seeded(1)) * 2 - 1
    nearest = torch.cdist(out.flatten(1), images.flatten(1)).min(dim=1).values
    assert nearest.max() < 1e-2


def test_ddim_determinism_range_guidance_and_samplers():
    m = tiny()
    with torch.no_grad():       # at init the condition barely moves the output; make it matter
        m.unet.cond_embed.weight.mul_(50)
    c = torch.randn(2, 2)
    a = m.sample(cond=c, steps=5, generator=seeded(0))
    b = m.sample(cond=c, steps=5, generator=seeded(0))
    other = m.sample(cond=c, steps=5, generator=seeded(1))
    guided = m.sample(cond=c, steps=5, guidance_scale=2.0, generator=seeded(0))
    assert a.shape == (2, C, H, W) and a.min() >= 0 and a.max() <= 1 and not a.requires_grad
    assert torch.equal(a, b) and not torch.equal(a, other)
    assert (a - guided).abs().max() > 1e-3
    z = torch.randn(2, C, H, W, generator=seeded(3))
    assert torch.equal(m.sample(cond=c, z=z, steps=5, eta=0.0), m.sample(cond=c, z=z, steps=5, eta=0.0, generator=seeded(9)))
    # eta > 0 draws fresh noise at every step: from the same z, different seeds must differ.
    noisy = m.sample(cond=c, z=z, steps=5, eta=1.0, generator=seeded(0))
    assert torch.equal(noisy, m.sample(cond=c, z=z, steps=5, eta=1.0, generator=seeded(0)))
    assert not torch.equal(noisy, m.sample(cond=c, z=z, steps=5, eta=1.0, generator=seeded(1)))


def test_ancestral_sampler():
    m = tiny(SMALL, timesteps=20)
    anc = m.sample(batch_size=3, sampler="ddpm", generator=seeded(0))
    assert anc.shape == (3, C, *SMALL) and anc.min() >= 0 and anc.max() <= 1
    assert torch.equal(anc, m.sample(batch_size=3, sampler="ddpm", generator=seeded(0)))
    assert not torch.equal(anc, m.sample(batch_size=3, sampler="ddpm", generator=seeded(1)))


def test_sampling_uses_ema_unet_when_set():
    m = tiny()
    before = m.sample(batch_size=2, steps=3, generator=seeded(0))
    m.ema_unet = copy.deepcopy(m.unet)
    assert torch.equal(before, m.sample(batch_size=2, steps=3, generator=seeded(0)))
    with torch.no_grad():
        m.ema_unet.out[-1].bias.add_(0.5)
    assert not torch.equal(before, m.sample(batch_size=2, steps=3, generator=seeded(0)))


@pytest.mark.parametrize("resample", [1, 3])
def test_inpainting_keeps_known_pixels(resample):
    m = tiny()
    truth = torch.rand(2, C, H, W).round()
    mask = create_mask(["fpu", "group_nc"], NAMES, 2, (H, W))
    mask[:, 2, :20] = 1                                  # a partial component too
    kwargs = dict(num_steps=4, resample=resample, cond=torch.randn(2, 2))
    out = m.inpaint(truth * mask, mask, generator=seeded(0), **kwargs)
    assert out.shape == truth.shape and out.min() >= 0 and out.max() <= 1
    assert torch.equal(out * mask, truth * mask)
    assert torch.equal(out, m.inpaint(truth * mask, mask, generator=seeded(0), **kwargs))
    assert (out * (1 - mask)).abs().sum() > 0            # the unknown region is generated, not left blank
    with torch.no_grad():
        assert torch.equal(m.inpaint(truth * mask, mask, generator=seeded(0), **kwargs), out)


@pytest.mark.parametrize("call, match", [
    (lambda m: m(torch.rand(2, 4, H, W)), r"expected shape \(B, 5, 64, 32\), got \(2, 4, 64, 32\)"),
    (lambda m: m(torch.rand(2, C, 32, 32)), r"expected shape \(B, 5, 64, 32\), got \(2, 5, 32, 32\)"),
    (lambda m: m(torch.rand(2, C, H, W), cond=torch.randn(2, 3)), r"expected condition of shape \(2, 2\), got \(2, 3\)"),
    (lambda m: m.sample(cond=torch.randn(2, 1)), r"expected condition of shape \(2, 2\), got \(2, 1\)"),
    (lambda m: m.sample(batch_size=2, z=torch.randn(2, C, 8, 8)), r"sample z: expected shape \(B, 5, 64, 32\)"),
    (lambda m: m.inpaint(torch.rand(1, C, H, W), torch.ones(1, C, 8, 8)),
     r"expected shape \(1, 5, 64, 32\) \(same as partial\), got \(1, 5, 8, 8\)"),
    (lambda m: m.inpaint(torch.rand(1, 3, H, W), torch.ones(1, 3, H, W)), r"expected shape \(B, 5, 64, 32\)"),
    (lambda m: m.inpaint(torch.rand(1, C, H, W), torch.ones(1, C, H, W), cond=torch.randn(1, 4)),
     r"expected condition of shape \(1, 2\), got \(1, 4\)"),
    (lambda m: m.sample(batch_size=1, sampler="euler"), r"sampler must be 'ddim' or 'ddpm'"),
    # options the DDPM does not use are refused by name instead of silently recorded as used
    (lambda m: m.inpaint(torch.rand(1, C, H, W), torch.ones(1, C, H, W), lr=0.1, restarts=3, lsos="l1"),
     r"GaussianDiffusion.inpaint does not use the option\(s\) \['lr', 'lsos', 'restarts'\]"),
    (lambda m: m.sample(batch_size=1, restarts=2), r"GaussianDiffusion.sample does not use .*'restarts'"),
    (lambda m: m.sample(batch_size=1, sampler="ddpm", steps=10), r"\['steps'\] apply to the ddim sampler only"),
    (lambda m: m.sample(raw_cond=torch.randn(1, 2)), r"no stored condition normalization"),
])
def test_bad_inputs_raise_value_error(call, match):
    with pytest.raises(ValueError, match=match):
        call(tiny())
