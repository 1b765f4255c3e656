"""The conditional flow prior: exact inverse, exact log-determinants, a normalized density,
and a fit that recovers a known conditional Gaussian."""
import math

import pytest
import torch

from src_new.models.wgan_gp.flow import ConditionalFlowPrior, require_fitted


def random_flow(dim, cond_dim, layers=4, seed=0, dtype=torch.float64, noise=0.3):
    """A flow with every weight perturbed by ``noise`` (the zero-initialised output layers
    too), so that no layer is the identity."""
    torch.manual_seed(seed)
    flow = ConditionalFlowPrior(dim, cond_dim, num_layers=layers, hidden=16).to(dtype)
    with torch.no_grad():
        for p in flow.parameters():
            p.add_(noise * torch.randn_like(p))
    return flow


@pytest.mark.parametrize("dtype,noise,tol", [(torch.float32, 0.1, 2e-5), (torch.float64, 0.3, 1e-10)])
@pytest.mark.parametrize("dim,cond_dim", [(7, 2), (20, 2), (4, 0), (1, 1)])
def test_inverse_undoes_forward_to_float_precision(dim, cond_dim, dtype, noise, tol):
    flow = random_flow(dim, cond_dim, dtype=dtype, noise=noise)
    u = torch.randn(64, dim, dtype=dtype)
    cond = torch.randn(64, cond_dim, dtype=dtype) if cond_dim else None
    z, ld_fwd = flow(u, cond)
    assert not torch.allclose(z, u, atol=1e-2)                       # not the identity
    u_back, ld_inv = flow.inverse(z, cond)
    assert torch.allclose(u_back, u, atol=tol)
    assert torch.allclose(ld_fwd, -ld_inv, atol=tol)
    z_again, _ = flow(u_back, cond)
    assert torch.allclose(z_again, z, atol=tol * (1 + z.detach().abs().max().item()))


@pytest.mark.parametrize("cond_dim", [0, 2])
def test_log_det_matches_brute_force_jacobian(cond_dim):
    dim = 5
    flow = random_flow(dim, cond_dim)
    cond = torch.randn(1, cond_dim, dtype=torch.float64) if cond_dim else None
    for _ in range(3):
        u = torch.randn(dim, dtype=torch.float64)
        jac = torch.autograd.functional.jacobian(lambda v: flow(v[None], cond)[0][0], u)
        assert torch.allclose(flow(u[None], cond)[1][0], torch.linalg.slogdet(jac)[1], atol=1e-9)
        z = flow(u[None], cond)[0][0]
        jac_inv = torch.autograd.functional.jacobian(lambda v: flow.inverse(v[None], cond)[0][0], z)
        assert torch.allclose(flow.inverse(z[None], cond)[1][0], torch.linalg.slogdet(jac_inv)[1], atol=1e-9)


def test_density_integrates_to_one_in_one_dimension():
    flow = random_flow(1, 1, layers=5)
    grid = torch.linspace(-40, 40, 40001, dtype=torch.float64)[:, None]
    for c in (-1.5, 0.0, 2.0):
        cond = torch.full((len(grid), 1), c, dtype=torch.float64)
        with torch.no_grad():
            density = flow.log_prob(grid, cond).exp()
        assert density[0] < 1e-8 and density[-1] < 1e-8                # the grid holds the mass
        assert abs(float(torch.trapezoid(density, grid[:, 0])) - 1) < 1e-4


@pytest.fixture
def one_thread():
    """Tiny MLP steps run several times faster on one thread than on two busy cores."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def test_fit_recovers_a_known_conditional_gaussian(one_thread):
    """z | c ~ N(mu(c), diag sigma(c)^2) with mu = (2c, 1 - c), sigma = (0.5, exp(0.5 c)):
    maximum likelihood recovers the mean and scale per condition."""
    torch.manual_seed(0)
    mean = lambda c: torch.cat([2 * c, 1 - c], 1)
    scale = lambda c: torch.cat([torch.full_like(c, 0.5), (0.5 * c).exp()], 1)
    flow = ConditionalFlowPrior(2, 1, num_layers=2, hidden=32)
    opt = torch.optim.Adam(flow.parameters(), 1e-2)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(opt, 300)
    for _ in range(300):
        c = torch.rand(512, 1) * 2 - 1
        z = mean(c) + scale(c) * torch.randn(512, 2)
        loss = -flow.log_prob(z, c).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        schedule.step()
    with torch.no_grad():
        for value in (-0.5, 0.0, 0.8):
            c = torch.full((1, 1), value)
            draws = flow.sample(c, n=20000, generator=torch.Generator().manual_seed(1))
            assert draws.shape == (20000, 2)
            assert torch.allclose(draws.mean(0), mean(c)[0], atol=0.05), (value, draws.mean(0))
            assert torch.allclose(draws.std(0), scale(c)[0], rtol=0.05), (value, draws.std(0))
        c = torch.rand(4000, 1) * 2 - 1
        z = mean(c) + scale(c) * torch.randn(4000, 2)
        true_nll = -torch.distributions.Normal(mean(c), scale(c)).log_prob(z).sum(1).mean()
        assert float(-flow.log_prob(z, c).mean()) < float(true_nll) + 0.03


def test_unfitted_flow_is_the_standard_normal_and_initialize_moves_it():
    flow = ConditionalFlowPrior(3, 2)
    z, cond = torch.randn(10, 3), torch.randn(10, 2)
    ref = torch.distributions.Normal(0.0, 1.0).log_prob(z).sum(1)
    assert torch.allclose(flow.log_prob(z, cond), ref, atol=1e-5)
    data = 5 + 0.1 * torch.randn(500, 3)
    flow.initialize(data)
    assert float(flow.log_prob(data, torch.zeros(500, 2)).mean()) > float(ref.mean()) + 5
    # initialize restarts a fitted flow: couplings back to the identity, base = data mean / std
    moved = random_flow(3, 2, dtype=torch.float32)
    moved.initialize(data)
    cond = torch.randn(500, 2)
    fit = torch.distributions.Normal(data.mean(0), data.std(0)).log_prob(data).sum(1)
    assert torch.allclose(moved.log_prob(data, cond), fit, atol=1e-4)


def test_sample_shapes_and_errors():
    flow = ConditionalFlowPrior(4, 2)
    cond = torch.randn(3, 2)
    assert flow.sample(cond).shape == (3, 4)
    assert flow.sample(cond, n=5).shape == (15, 4)
    gen = lambda: torch.Generator().manual_seed(3)
    assert torch.equal(flow.sample(cond, generator=gen()), flow.sample(cond, generator=gen()))
    with pytest.raises(ValueError, match="needs conditions of shape"):
        flow.sample()
    with pytest.raises(ValueError, match=r"expected \(3, 2\)"):
        flow.log_prob(torch.randn(3, 4), torch.randn(3, 1))
    with pytest.raises(ValueError, match=r"shape \(B, 4\)"):
        flow.log_prob(torch.randn(3, 5), cond)
    free = ConditionalFlowPrior(4, 0)
    assert free.sample(n=6).shape == (6, 4)
    with pytest.raises(ValueError, match="unconditional"):
        free.log_prob(torch.randn(3, 4), cond)
    with pytest.raises(ValueError, match="untrained.*training.phase=flow"):
        require_fitted(flow, "sample(prior='flow')")
    flow.fitted.fill_(1)
    assert require_fitted(flow, "x") is flow
    assert math.isfinite(float(flow.log_prob(torch.randn(2, 4), cond[:2]).sum()))
