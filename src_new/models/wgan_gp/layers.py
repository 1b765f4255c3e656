"""Building blocks of the WGAN-GP networks."""
import torch
from torch import nn

from ...utils.precision import GroupNorm32


def embed_or_null(embed, null, cond, batch_size, drop_mask=None):
    """(B, D) condition embedding: ``embed(cond)``, or the learned ``null`` token (D,) where
    the condition is missing (``cond=None``) or dropped (``drop_mask`` True for a sample)."""
    null = null.expand(batch_size, -1)
    if cond is None:
        return null
    emb = embed(cond)
    return emb if drop_mask is None else torch.where(drop_mask.view(-1, 1), null, emb)


def plane_count(cond_dim):
    """Channels of ``condition_planes``: the two coordinates, and with a condition its cond_dim
    planes and the presence plane."""
    return 2 + (cond_dim + 1 if cond_dim else 0)


def condition_planes(cond, drop_mask, cond_dim, like):
    """(B, plane_count(cond_dim), H, W) CoordConv planes with the condition (Liu et al. 2018)
    for the feature map ``like`` (B, *, H, W), in its dtype and device: row and
    column coordinates in [-1, 1], each normalized condition value (B, cond_dim) broadcast over
    the image, and a presence plane, 1 where the condition is given and 0 where it is missing
    (``cond=None``) or dropped (``drop_mask`` True; its condition planes are then 0 too). A 1x1
    conv over them computes any ``a * row + b * c + d``: the signed distance to an edge whose
    position is an affine function of the condition, whatever quantity the condition columns
    measure (no data set's convention is built in)."""
    b, _, h, w = like.shape
    kw = dict(device=like.device, dtype=like.dtype)
    planes = [torch.linspace(-1, 1, h, **kw).view(1, 1, h, 1).expand(b, 1, h, w),
              torch.linspace(-1, 1, w, **kw).view(1, 1, 1, w).expand(b, 1, h, w)]
    if cond_dim:
        if cond is None:
            given, cond = torch.zeros(b, **kw), torch.zeros(b, cond_dim, **kw)
        else:
            given = torch.ones(b, **kw) if drop_mask is None else (~drop_mask).to(**kw)
        values = torch.cat([cond.to(**kw) * given[:, None], given[:, None]], dim=1)
        planes.append(values[:, :, None, None].expand(b, cond_dim + 1, h, w))
    return torch.cat(planes, dim=1)


class AdaGroupNorm(nn.Module):
    """GroupNorm whose scale and shift come from a style vector (conditional normalization,
    FiLM): ``GN(x) * (1 + gamma(w)) + beta(w)``. With ``style_dim = 0`` it is a plain
    GroupNorm with learned affine parameters. The style carries the latent and the condition,
    so the normalization cannot erase them (it re-injects them at every layer)."""

    def __init__(self, groups, channels, style_dim=0):
        super().__init__()
        self.style_dim = style_dim
        self.norm = GroupNorm32(groups, channels, affine=style_dim == 0)
        if style_dim:
            self.affine = nn.Linear(style_dim, 2 * channels)
            nn.init.zeros_(self.affine.weight)   # starts as the identity: GN(x) * 1 + 0
            nn.init.zeros_(self.affine.bias)

    def forward(self, x, w=None):
        """x: (B, C, H, W); w: (B, style_dim), required when style_dim > 0."""
        x = self.norm(x)
        if not self.style_dim:
            return x
        gamma, beta = self.affine(w)[:, :, None, None].chunk(2, dim=1)
        return x * (1 + gamma) + beta


class ResBlock(nn.Module):
    """conv-norm-ReLU-conv-norm + residual, then ReLU; shape-preserving. The norms are
    AdaGroupNorm (style-modulated when ``style_dim > 0``)."""

    def __init__(self, dim, groups=8, style_dim=0):
        super().__init__()
        self.conv1, self.conv2 = nn.Conv2d(dim, dim, 3, padding=1), nn.Conv2d(dim, dim, 3, padding=1)
        self.norm1, self.norm2 = AdaGroupNorm(groups, dim, style_dim), AdaGroupNorm(groups, dim, style_dim)
        self.act = nn.ReLU(inplace=True)

    def forward(self, x, w=None):
        h = self.act(self.norm1(self.conv1(x), w))
        return self.act(x + self.norm2(self.conv2(h), w))


class MinibatchStd(nn.Module):
    """ProGAN's minibatch standard deviation feature: the mean over features of the standard
    deviation across a group of ``group_size`` consecutive samples, appended to each sample's
    feature vector (B, F) -> (B, F + 1). It lets the critic see the variety of a group (a
    collapsed generator's groups have std ~0). Samples are coupled only within their group:
    with B a multiple of the group size, the groups of a [real; fake] batch never mix."""

    def __init__(self, group_size=4):
        super().__init__()
        self.group_size = group_size

    def forward(self, x):
        b = x.shape[0]
        g = min(self.group_size, b)
        if b % g:
            raise ValueError(f"MinibatchStd: batch size {b} is not a multiple of the group size {g} "
                             f"(model.minibatch_std_group); use a batch size divisible by it")
        std = x.float().view(b // g, g, -1).var(dim=1, unbiased=False).add(1e-8).sqrt().mean(1)
        return torch.cat([x, std.to(x.dtype).repeat_interleave(g)[:, None]], dim=1)
