"""Critic: image (B, C, H, W) in [0, 1] + condition -> unbounded score (B, 1)."""
import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.parametrizations import spectral_norm as _spectral_norm

from ...utils.checks import check_cond, check_image


class CondConv(nn.Module):
    """``conv(cat([x, broadcast(emb)]))`` computed without building the broadcast map.

    The embedding is constant over space, so its share of the conv is, per output pixel,
    emb . (the sum of the kernel taps that fall inside the image): a few thousand MACs per
    sample instead of a full convolution over ``cond_emb_dim`` extra channels. Same weights,
    same function as the concatenation (``forward_concat``; tested), less work.
    """

    def __init__(self, conv, image_channels):
        super().__init__()
        self.conv, self.image_channels = conv, image_channels

    def forward(self, x, emb):
        conv, c = self.conv, self.image_channels
        weight = conv.weight
        y = F.conv2d(x, weight[:, :c], conv.bias, conv.stride, conv.padding)
        if emb is None:
            return y
        out_ch, cond_ch, kh, kw = weight[:, c:].shape
        taps = F.conv2d(x.new_ones(1, 1, *x.shape[2:]), weight[:, c:].reshape(out_ch * cond_ch, 1, kh, kw),
                        stride=conv.stride, padding=conv.padding).view(out_ch, cond_ch, -1)
        return y + torch.einsum("bc,ocp->bop", emb, taps).view_as(y)

    def forward_concat(self, x, emb):
        """Reference: the literal concatenation of the broadcast embedding."""
        if emb is not None:
            x = torch.cat([x, emb[:, :, None, None].expand(-1, -1, *x.shape[2:])], dim=1)
        return self.conv(x)


class Critic(nn.Module):
    """Condition embedded (Linear cond_dim -> 64), broadcast over the image and concatenated;
    Conv k4 s2 stack dim -> 2dim -> 4dim -> 8dim with LeakyReLU(0.2) and per-sample LayerNorm
    over (C, H, W) (GroupNorm with one group) after all but the first conv; global average
    pool; Linear 8dim -> 8dim + LeakyReLU; Linear -> 1, no output activation.

    No BatchNorm: a sample's score must not depend on the rest of the batch, or the per-sample
    gradient penalty (and one critic pass over real and fake together) would be wrong.
    About 3.1M parameters at C=5, dim=64, cond_dim=2.
    """

    def __init__(self, channels=5, cond_dim=2, image_size=(64, 32), dim=64, cond_emb_dim=64,
                 spectral_norm=False):
        super().__init__()
        self.channels, self.cond_dim, self.image_size = channels, cond_dim, tuple(image_size)
        sn = _spectral_norm if spectral_norm else (lambda m: m)
        self.cond_embed = nn.Linear(cond_dim, cond_emb_dim) if cond_dim > 0 else None
        c_in = channels + (cond_emb_dim if cond_dim > 0 else 0)
        widths = [dim, dim * 2, dim * 4, dim * 8]
        self.first = CondConv(sn(nn.Conv2d(c_in, widths[0], 4, stride=2, padding=1)), channels)
        layers = [nn.LeakyReLU(0.2, inplace=True)]
        for a, b in zip(widths[:-1], widths[1:]):
            layers += [sn(nn.Conv2d(a, b, 4, stride=2, padding=1)), nn.GroupNorm(1, b),
                       nn.LeakyReLU(0.2, inplace=True)]
        self.features = nn.Sequential(*layers, nn.AdaptiveAvgPool2d(1), nn.Flatten())
        self.head = nn.Sequential(sn(nn.Linear(widths[-1], widths[-1])), nn.LeakyReLU(0.2, inplace=True),
                                  sn(nn.Linear(widths[-1], 1)))

    def forward(self, x, cond=None, concat=False):
        """x: (B, C, H, W); cond: (B, cond_dim) or None (zeros are used: the critic of a
        conditional model is meant to always see the true condition). Returns (B, 1).
        concat: build the broadcast condition map literally (the plan's reference path)."""
        check_image(x, self.channels, self.image_size, "Critic input")
        emb = None
        if self.cond_embed is not None:
            cond = check_cond(cond, x.shape[0], self.cond_dim, "Critic condition")
            if cond is None:
                cond = x.new_zeros(x.shape[0], self.cond_dim)
            emb = self.cond_embed(cond.to(x.dtype))
        h = self.first.forward_concat(x, emb) if concat else self.first(x, emb)
        return self.head(self.features(h))
