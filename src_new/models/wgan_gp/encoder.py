"""Encoder (inversion network): partial image + known-component mask + condition -> latent."""
import math

import torch
from torch import nn

from ...pipeline.config import CHOICES, defaults_for
from ...utils.checks import check_cond, check_image
from ...utils.precision import GroupNorm32

# Keyword defaults are the config schema's (one place for every default).
_M = defaults_for("wgan_gp")["model"]


class Encoder(nn.Module):
    """[partial image, mask] (2C channels) -> Conv 3x3 + GN + ReLU, three stride-2 convs
    (dim -> 2dim -> 4dim -> 8dim) with GN + ReLU, a reduction of the (8dim, H/8, W/8) map to 8dim,
    + embed(cond) (a learned null token when the condition is unknown), Linear 8dim -> 4dim +
    ReLU, Linear -> latent_dim.

    ``variational``: the head also gives each latent a log-variance (``posterior``), so the
    encoder describes a design by a Gaussian N(mu, diag(sigma^2)) rather than a point (a VAE's
    encoder, for ``model.latent_kl: sample``); ``forward`` returns its mean either way.

    ``pool``: the reduction. ``mean``, a global average pool, keeps what features are present but
    not where (only zero padding hints at position), so the latent of a thin band carries its
    position only coarsely; ``flatten``, a Linear over the flattened map, keeps every feature's
    place.

    The mask says which pixels are known (1) and which are missing (0): without it a zeroed
    component and an empty one look alike. About 1.7M parameters at C=5, dim=64. Every norm is
    per-sample (GroupNorm), so a sample's latent never depends on the rest of the batch.
    """

    def __init__(self, channels, latent_dim, image_size, dim=_M["encoder_dim"], cond_dim=0,
                 pool=_M["encoder_pool"], variational=False):
        super().__init__()
        if pool not in CHOICES["encoder_pool"]:
            raise ValueError(f"Encoder pool must be one of {CHOICES['encoder_pool']}, got {pool!r}")
        self.channels, self.latent_dim, self.image_size = channels, latent_dim, tuple(image_size)
        self.cond_dim, self.variational = cond_dim, variational
        widths = [dim, dim * 2, dim * 4, dim * 8]
        layers = [nn.Conv2d(2 * channels, widths[0], 3, padding=1), GroupNorm32(8, widths[0]), nn.ReLU()]
        for c_in, c_out in zip(widths[:-1], widths[1:]):
            layers += [nn.Conv2d(c_in, c_out, 3, stride=2, padding=1), GroupNorm32(8, c_out), nn.ReLU()]
        self.features = nn.Sequential(*layers)
        map_h, map_w = (math.ceil(side / 8) for side in self.image_size)   # three stride-2 convs, padding 1
        self.pool = (nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten()) if pool == "mean" else
                     nn.Sequential(nn.Flatten(), nn.Linear(widths[-1] * map_h * map_w, widths[-1])))
        self.cond_embed = nn.Linear(cond_dim, widths[-1]) if cond_dim > 0 else None
        self.null_embed = nn.Parameter(torch.zeros(widths[-1]))
        self.head = nn.Sequential(nn.Linear(widths[-1], widths[-1] // 2), nn.ReLU(),
                                  nn.Linear(widths[-1] // 2, latent_dim * (2 if variational else 1)))

    def forward(self, x, mask=None, cond=None):
        """x: (B, C, H, W) in [0, 1] (unknown pixels are ignored: zeroed by the mask);
        mask: (B, C, H, W) in {0, 1}, 1 = known (None: all known); cond: (B, cond_dim) or None.
        -> (B, latent_dim): the latent (a variational encoder's mean)."""
        return self.head_output(x, mask, cond)[:, :self.latent_dim]

    def posterior(self, x, mask=None, cond=None):
        """A variational encoder's Gaussian: (mean, log-variance), each (B, latent_dim); inputs as
        ``forward``."""
        if not self.variational:
            raise ValueError("Encoder.posterior needs a variational encoder (model.latent_kl: sample)")
        return self.head_output(x, mask, cond).chunk(2, dim=1)

    def head_output(self, x, mask, cond):
        check_image(x, self.channels, self.image_size, "Encoder input")
        mask = torch.ones_like(x) if mask is None else mask.to(x.dtype)
        check_image(mask, self.channels, self.image_size, "Encoder mask")
        h = self.pool(self.features(torch.cat([x * mask, mask], dim=1)))
        cond = check_cond(cond, x.shape[0], self.cond_dim, "Encoder condition")
        h = h + (self.null_embed if cond is None else self.cond_embed(cond.to(x.dtype)))
        return self.head(h)
