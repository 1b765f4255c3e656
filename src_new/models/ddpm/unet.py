"""Conditional UNet for noise prediction: (x_t (B, C, H, W), t (B,), cond (B, cond_dim) or None) -> eps."""
import math

import torch
import torch.nn.functional as F
from torch import nn


def sinusoidal_embedding(t, dim):
    """(B,) timesteps -> (B, dim) sin/cos features at geometric frequencies."""
    half = dim // 2
    freqs = torch.exp(-math.log(10000) * torch.arange(half, device=t.device, dtype=torch.float32) / half)
    args = t.float()[:, None] * freqs[None]
    return torch.cat([args.sin(), args.cos()], dim=1)


class ResBlock(nn.Module):
    """GN-SiLU-conv, + time/condition embedding, GN-SiLU-dropout-conv, residual (1x1 when widths differ)."""

    def __init__(self, c_in, c_out, emb_dim, dropout=0.0):
        super().__init__()
        self.block1 = nn.Sequential(nn.GroupNorm(8, c_in), nn.SiLU(), nn.Conv2d(c_in, c_out, 3, padding=1))
        self.emb = nn.Sequential(nn.SiLU(), nn.Linear(emb_dim, c_out))
        self.block2 = nn.Sequential(nn.GroupNorm(8, c_out), nn.SiLU(), nn.Dropout(dropout),
                                    nn.Conv2d(c_out, c_out, 3, padding=1))
        self.skip = nn.Conv2d(c_in, c_out, 1) if c_in != c_out else nn.Identity()

    def forward(self, x, emb):
        h = self.block1(x) + self.emb(emb)[:, :, None, None]
        return self.block2(h) + self.skip(x)


class Attention(nn.Module):
    """Single-head self-attention over pixels, with a residual."""

    def __init__(self, dim):
        super().__init__()
        self.norm, self.qkv, self.out = nn.GroupNorm(8, dim), nn.Conv2d(dim, 3 * dim, 1), nn.Conv2d(dim, dim, 1)

    def forward(self, x):
        b, c, h, w = x.shape
        q, k, v = self.qkv(self.norm(x)).flatten(2).transpose(1, 2).chunk(3, dim=2)
        y = F.scaled_dot_product_attention(q, k, v)
        return x + self.out(y.transpose(1, 2).reshape(b, c, h, w))


class UNet(nn.Module):
    """dim * dim_mults widths per resolution, ``res_blocks`` ResBlocks per level (one more on
    the way up, taking the skip), stride-2 conv down / nearest + conv up, attention at the
    heights in ``attn_resolutions`` and in the middle. A missing or dropped condition uses a
    learned null embedding (classifier-free guidance)."""

    def __init__(self, channels=5, cond_dim=2, image_size=(64, 32), dim=64, dim_mults=(1, 2, 4), res_blocks=2,
                 attn_resolutions=(), dropout=0.0):
        super().__init__()
        self.channels, self.cond_dim, self.image_size = channels, cond_dim, tuple(image_size)
        emb_dim = dim * 4
        self.time_mlp = nn.Sequential(nn.Linear(dim, emb_dim), nn.SiLU(), nn.Linear(emb_dim, emb_dim))
        self.time_dim = dim
        self.cond_embed = nn.Linear(cond_dim, emb_dim) if cond_dim > 0 else None
        self.null_embed = nn.Parameter(torch.zeros(emb_dim))
        self.init = nn.Conv2d(channels, dim, 3, padding=1)
        widths = [dim * m for m in dim_mults]
        self.down, self.up = nn.ModuleList(), nn.ModuleList()
        skips, c, height = [dim], dim, image_size[0]
        for i, w in enumerate(widths):
            for _ in range(res_blocks):
                self.down.append(nn.ModuleList([ResBlock(c, w, emb_dim, dropout),
                                                Attention(w) if height in attn_resolutions else nn.Identity()]))
                c = w
                skips.append(c)
            if i < len(widths) - 1:
                self.down.append(nn.Conv2d(c, c, 3, stride=2, padding=1))
                skips.append(c)
                height //= 2
        self.mid1, self.mid_attn, self.mid2 = ResBlock(c, c, emb_dim), Attention(c), ResBlock(c, c, emb_dim)
        for i, w in reversed(list(enumerate(widths))):
            for _ in range(res_blocks + 1):
                self.up.append(nn.ModuleList([ResBlock(c + skips.pop(), w, emb_dim, dropout),
                                              Attention(w) if height in attn_resolutions else nn.Identity()]))
                c = w
            if i > 0:
                self.up.append(nn.Sequential(nn.Upsample(scale_factor=2, mode="nearest"), nn.Conv2d(c, c, 3, padding=1)))
                height *= 2
        self.out = nn.Sequential(nn.GroupNorm(8, c), nn.SiLU(), nn.Conv2d(c, channels, 3, padding=1))

    def embed(self, t, cond, drop_mask):
        emb = self.time_mlp(sinusoidal_embedding(t, self.time_dim))
        null = self.null_embed.expand(len(t), -1)
        if cond is None or self.cond_embed is None:
            return emb + null
        c = self.cond_embed(cond)
        if drop_mask is not None:
            c = torch.where(drop_mask.view(-1, 1), null, c)
        return emb + c

    def forward(self, x, t, cond=None, drop_mask=None):
        """x: (B, C, H, W) noisy image in [-1, 1]-scale; t: (B,) steps; returns predicted noise."""
        emb = self.embed(t, cond, drop_mask)
        h = self.init(x)
        hs = [h]
        for layer in self.down:
            if isinstance(layer, nn.ModuleList):
                h = layer[1](layer[0](h, emb))
            else:
                h = layer(h)
            hs.append(h)
        h = self.mid2(self.mid_attn(self.mid1(h, emb)), emb)
        for layer in self.up:
            if isinstance(layer, nn.ModuleList):
                h = layer[1](layer[0](torch.cat([h, hs.pop()], dim=1), emb))
            else:
                h = layer(h)
        return self.out(h)
