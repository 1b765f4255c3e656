"""Conditional normalizing-flow prior p(z | c) over the generator's latent (RealNVP-style).

    u ~ N(0, I)  --prior network-->  y = mu(c) + exp(log_sigma(c)) * u  --K couplings-->  z

``forward(u, c)`` runs that generative direction, ``inverse(z, c)`` the normalizing one;
both return the log |det| of their own Jacobian, so ``log_prob`` is exact:
log p(z | c) = log N(inverse(z, c); 0, I) + log |det d inverse / dz|.

Each coupling layer keeps half of the coordinates (alternating parity masks) and moves the
other half by an affine map whose log-scale and shift come from an MLP of the kept half and
the condition; log-scales are bounded by ``scale_bound * tanh(.)`` for stability. The last
layer of every net starts at zero, so an unfitted flow is exactly N(0, I).
"""
from __future__ import annotations

import math

import torch
from torch import nn

from ...pipeline.config import defaults_for
from ...utils.checkpoint import load_state_strict
from ...utils.runtime import randn

# Keyword defaults are the config schema's (one place for every default).
_M = defaults_for("wgan_gp")["model"]

LOG_2PI = math.log(2 * math.pi)


def _mlp(n_in, n_out, hidden):
    """n_in -> hidden -> hidden -> n_out, the output layer zero-initialised (identity start)."""
    net = nn.Sequential(nn.Linear(n_in, hidden), nn.SiLU(), nn.Linear(hidden, hidden), nn.SiLU(),
                        nn.Linear(hidden, n_out))
    _reset_mlp(net)
    return net


def _reset_mlp(net):
    for layer in net:
        if isinstance(layer, nn.Linear):
            layer.reset_parameters()
    nn.init.zeros_(net[-1].weight)
    nn.init.zeros_(net[-1].bias)


class AffineCoupling(nn.Module):
    """z[free] = x[free] * exp(s) + t with (s, t) = net(x[kept], c); z[kept] = x[kept].

    The kept coordinates (conditioner input) are those of parity ``kept_parity`` (0 or 1) among
    ``dim``. A layer with no free coordinate (dim 1, every other layer) is the identity."""

    def __init__(self, dim, kept_parity, cond_dim, hidden, scale_bound):
        super().__init__()
        # index ranges, not mask.nonzero(): data-independent, so the flow builds on the meta device
        self.register_buffer("kept", torch.arange(kept_parity, dim, 2), persistent=False)
        self.register_buffer("free", torch.arange(1 - kept_parity, dim, 2), persistent=False)
        self.scale_bound = float(scale_bound)
        n_free = len(self.free)
        self.net = _mlp(len(self.kept) + cond_dim, 2 * n_free, hidden) if n_free else None

    def _params(self, x, cond):
        inputs = x[:, self.kept] if cond is None else torch.cat([x[:, self.kept], cond], 1)
        s, t = self.net(inputs).chunk(2, dim=1)
        return self.scale_bound * torch.tanh(s / self.scale_bound), t

    def forward(self, x, cond):
        """-> (z, log |det dz/dx|) with log-det (B,)."""
        if self.net is None:
            return x, x.new_zeros(len(x))
        s, t = self._params(x, cond)
        z = x.clone()
        z[:, self.free] = x[:, self.free] * s.exp() + t
        return z, s.sum(1)

    def inverse(self, z, cond):
        """-> (x, log |det dx/dz|) with log-det (B,)."""
        if self.net is None:
            return z, z.new_zeros(len(z))
        s, t = self._params(z, cond)        # z[kept] == x[kept]
        x = z.clone()
        x[:, self.free] = (z[:, self.free] - t) * (-s).exp()
        return x, -s.sum(1)


class ConditionalFlowPrior(nn.Module):
    """p(z | c) over ``dim``-dimensional latents given ``cond_dim`` conditions (0 = none).

    dim: latent size (``model.total_latent_dim``); num_layers: coupling layers K; hidden:
    width of the coupling and prior MLPs; scale_bound: |log-scale| bound of each coupling.
    The buffer ``fitted`` (saved with the state dict) is 1 once the flow phase has fitted it,
    back to 0 when the encoder trains again (the latents it describes change), unless the gan
    phase updates the flow along with the encoder (``training.flow_every``)."""

    def __init__(self, dim, cond_dim=0, num_layers=_M["flow_layers"], hidden=_M["flow_hidden"], scale_bound=2.0):
        super().__init__()
        if dim < 1 or cond_dim < 0 or num_layers < 0:
            raise ValueError(f"ConditionalFlowPrior: need dim >= 1, cond_dim >= 0, num_layers >= 0; "
                             f"got {dim}, {cond_dim}, {num_layers}")
        self.dim, self.cond_dim = dim, cond_dim
        if cond_dim > 0:
            self.prior_net = _mlp(cond_dim, 2 * dim, hidden)
        else:
            self.prior_params = nn.Parameter(torch.zeros(2 * dim))
        # A bias added to the prior's (mu, log_sigma): set from data by ``initialize``.
        self.prior_bias = nn.Parameter(torch.zeros(2 * dim))
        self.couplings = nn.ModuleList(AffineCoupling(dim, k % 2, cond_dim, hidden, scale_bound)
                                       for k in range(num_layers))
        self.register_buffer("fitted", torch.zeros((), dtype=torch.long))

    # ------------------------------------------------------------------ helpers
    def _check(self, x, cond, what):
        if x.dim() != 2 or x.shape[1] != self.dim:
            raise ValueError(f"{what}: expected latents of shape (B, {self.dim}), got {tuple(x.shape)}")
        return self._check_cond(cond, len(x), what)

    def _check_cond(self, cond, batch, what):
        if self.cond_dim == 0:
            if cond is not None and cond.numel() > 0:
                raise ValueError(f"{what}: this flow is unconditional (cond_dim 0) but got a condition "
                                 f"of shape {tuple(cond.shape)}; pass None")
            return None
        if cond is None:
            raise ValueError(f"{what}: this flow needs a condition of shape (B, {self.cond_dim}); got None")
        if cond.dim() != 2 or cond.shape != (batch, self.cond_dim):
            raise ValueError(f"{what}: condition has shape {tuple(cond.shape)}, expected ({batch}, {self.cond_dim})")
        return cond.to(self.prior_bias.dtype)

    def prior(self, cond, batch):
        """The base Gaussian's (mu, log_sigma), each (B, dim)."""
        raw = (self.prior_net(cond) if cond is not None
               else self.prior_params.expand(batch, -1)) + self.prior_bias
        mu, log_sigma = raw.chunk(2, dim=1)
        return mu, log_sigma

    @torch.no_grad()
    def initialize(self, z):
        """(Re)start the fit from ``z`` (N, dim): every net back to its initial state (couplings
        the identity), the base Gaussian at the mean and log-std of z per coordinate, so
        fitting starts near the data's scale."""
        for module in self.modules():
            if isinstance(module, nn.Sequential):
                _reset_mlp(module)
        if self.cond_dim == 0:
            self.prior_params.zero_()
        std = z.std(0) if len(z) > 1 else torch.ones_like(z[0])
        self.prior_bias.copy_(torch.cat([z.mean(0), std.clamp_min(1e-4).log()]))

    # ------------------------------------------------------------------ the maps
    def forward(self, u, cond=None):
        """Generative direction: u (B, dim) from N(0, I) -> (z (B, dim), log |det dz/du| (B,))."""
        cond = self._check(u, cond, "flow.forward")
        mu, log_sigma = self.prior(cond, len(u))
        x, logdet = mu + log_sigma.exp() * u, log_sigma.sum(1)
        for layer in self.couplings:
            x, ld = layer(x, cond)
            logdet = logdet + ld
        return x, logdet

    def inverse(self, z, cond=None):
        """Normalizing direction: z (B, dim) -> (u (B, dim), log |det du/dz| (B,))."""
        cond = self._check(z, cond, "flow.inverse")
        x, logdet = z, z.new_zeros(len(z))
        for layer in reversed(self.couplings):
            x, ld = layer.inverse(x, cond)
            logdet = logdet + ld
        mu, log_sigma = self.prior(cond, len(z))
        return (x - mu) * (-log_sigma).exp(), logdet - log_sigma.sum(1)

    def log_prob(self, z, cond=None):
        """Exact log p(z | c) in nats: z (B, dim), cond (B, cond_dim) or None -> (B,)."""
        u, logdet = self.inverse(z, cond)
        return -0.5 * (u.pow(2).sum(1) + self.dim * LOG_2PI) + logdet

    def sample(self, cond=None, n=None, generator=None):
        """Draw latents: cond (B, cond_dim) -> n per condition row (default 1), returned as
        (B * n, dim) in the order of ``cond.repeat_interleave(n, 0)``; an unconditional flow
        (cond None) returns (n, dim). generator: optional torch.Generator for the noise."""
        if cond is None:
            if self.cond_dim > 0:
                raise ValueError(f"flow.sample: p(z | c) needs conditions of shape (B, {self.cond_dim}) "
                                 f"(sample conditionally); got None")
            cond_rep, batch = None, 1 if n is None else n
        else:
            cond = self._check_cond(cond, len(cond), "flow.sample")
            cond_rep = cond if n is None else cond.repeat_interleave(n, 0)
            batch = len(cond_rep)
        u = randn((batch, self.dim), self.prior_bias.device, generator)
        return self.forward(u, cond_rep)[0]


def require_fitted(flow, where):
    """Raise a ValueError saying how to fit the flow when ``flow`` is missing or unfitted."""
    if flow is None or not int(flow.fitted):
        raise ValueError(f"{where}: this model's flow prior is untrained or stale (no flow phase yet, a "
                         f"checkpoint from before flows, or the encoder trained since). Fit it with: "
                         f"python src_new/scripts/train.py --resume CKPT --set training.phase=flow --epochs N")
    return flow


def load_flow_state(model, ckpt, path, say=print):
    """Load the flow prior from ``ckpt["flow_state_dict"]``; a checkpoint from before flows
    has none: the flow stays unfitted (sampling with prior='flow' then says how to fit it)."""
    if "flow_state_dict" in ckpt:
        load_state_strict(model.flow, ckpt["flow_state_dict"], "flow", path)
    else:
        say(f"{path}: no flow prior in this checkpoint (written before flows); the flow stays untrained "
            f"until a run with --set training.phase=flow")
