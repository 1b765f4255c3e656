"""Conditional UNet for noise prediction: (x_t (B, C, H, W), t (B,), cond (B, cond_dim) or None) -> eps (B, C, H, W)."""
import math

import torch
import torch.nn.functional as F
from torch import nn

from ...pipeline.config import defaults_for
from ...utils.precision import GroupNorm32, full_precision

# Keyword defaults are the config schema's (one place for every default).
_M = defaults_for("ddpm")["model"]


def sinusoidal_embedding(t, dim):
    """(B,) timesteps -> (B, dim) sin/cos features at geometric frequencies."""
    half = dim // 2
    freqs = torch.exp(-math.log(10000) * torch.arange(half, device=t.device, dtype=torch.float32) / half)
    args = t.float()[:, None] * freqs[None]
    return torch.cat([args.sin(), args.cos()], dim=1)


def norm(channels):
    # Up to 8 groups, always dividing the width, so tiny test widths (e.g. dim=4) still build.
    return GroupNorm32(math.gcd(8, channels), channels)


class ResBlock(nn.Module):
    """GN-SiLU-conv, + projected time/condition embedding, GN-SiLU-dropout-conv, residual (1x1 when widths differ)."""

    def __init__(self, c_in, c_out, emb_dim, dropout=0.0):
        super().__init__()
        self.block1 = nn.Sequential(norm(c_in), nn.SiLU(), nn.Conv2d(c_in, c_out, 3, padding=1))
        self.emb = nn.Sequential(nn.SiLU(), nn.Linear(emb_dim, c_out))
        self.block2 = nn.Sequential(norm(c_out), nn.SiLU(), nn.Dropout(dropout), nn.Conv2d(c_out, c_out, 3, padding=1))
        self.skip = nn.Conv2d(c_in, c_out, 1) if c_in != c_out else nn.Identity()

    def forward(self, x, emb):
        h = self.block1(x) + self.emb(emb)[:, :, None, None]
        return self.block2(h) + self.skip(x)


class Attention(nn.Module):
    """Single-head self-attention over pixels, with a residual."""

    def __init__(self, dim):
        super().__init__()
        self.norm, self.qkv, self.out = norm(dim), nn.Conv2d(dim, 3 * dim, 1), nn.Conv2d(dim, dim, 1)

    def forward(self, x):
        b, c, h, w = x.shape
        q, k, v = self.qkv(self.norm(x)).flatten(2).transpose(1, 2).chunk(3, dim=2)
        y = F.scaled_dot_product_attention(q, k, v)
        return x + self.out(y.transpose(1, 2).reshape(b, c, h, w))


class Level(nn.Module):
    """``res_blocks`` x (ResBlock, optional attention) at one resolution."""

    def __init__(self, widths_in, c_out, emb_dim, dropout, attn):
        super().__init__()
        self.blocks = nn.ModuleList(ResBlock(c, c_out, emb_dim, dropout) for c in widths_in)
        self.attns = nn.ModuleList(Attention(c_out) if attn else nn.Identity() for _ in widths_in)


class UNet(nn.Module):
    """Widths ``dim * dim_mults`` per resolution, ``res_blocks`` ResBlocks per level on each
    side; every down block's output is a skip concatenated into the matching up block.
    Stride-2 conv down, nearest + conv up (H and W must be divisible by 2**(levels-1); 64x32
    with 3 levels runs at 64x32, 32x16, 16x8). Self-attention in the middle and at the
    feature-map heights listed in ``attn_resolutions`` (e.g. [16] for the 16x8 level).
    A missing condition, or one dropped by ``drop_mask``, uses a learned null embedding, so
    one set of weights serves conditional and unconditional prediction (classifier-free
    guidance). About 12.2M parameters at C=5, 64x32, dim=64, dim_mults=(1, 2, 4), res_blocks=2."""

    def __init__(self, channels, cond_dim, image_size, dim=_M["dim"], dim_mults=_M["dim_mults"],
                 res_blocks=_M["res_blocks"], attn_resolutions=_M["attn_resolutions"], dropout=_M["dropout"]):
        super().__init__()
        self.channels, self.cond_dim, self.image_size = channels, cond_dim, tuple(image_size)
        factor = 2 ** (len(dim_mults) - 1)
        if len(self.image_size) != 2 or any(s % factor for s in self.image_size):
            raise ValueError(f"UNet: image_size {tuple(image_size)} must be (H, W) with H and W divisible by "
                             f"{factor} (2**(len(dim_mults)-1) for dim_mults={list(dim_mults)})")
        if res_blocks < 1:
            raise ValueError(f"UNet: res_blocks must be >= 1, got {res_blocks}")
        self.time_dim, emb_dim = dim, dim * 4
        self.time_mlp = nn.Sequential(nn.Linear(dim, emb_dim), nn.SiLU(), nn.Linear(emb_dim, emb_dim))
        self.cond_embed = nn.Linear(cond_dim, emb_dim) if cond_dim > 0 else None
        self.null_embed = nn.Parameter(torch.zeros(emb_dim))
        self.init = nn.Conv2d(channels, dim, 3, padding=1)

        widths, heights = [dim * m for m in dim_mults], [self.image_size[0] // 2 ** i for i in range(len(dim_mults))]
        last = len(widths) - 1
        self.downs, self.downsamples, c = nn.ModuleList(), nn.ModuleList(), dim
        for i, (w, h) in enumerate(zip(widths, heights)):
            self.downs.append(Level([c] + [w] * (res_blocks - 1), w, emb_dim, dropout, h in attn_resolutions))
            self.downsamples.append(nn.Conv2d(w, w, 3, stride=2, padding=1) if i < last else nn.Identity())
            c = w
        self.mid1, self.mid_attn, self.mid2 = ResBlock(c, c, emb_dim), Attention(c), ResBlock(c, c, emb_dim)
        self.ups, self.upsamples = nn.ModuleList(), nn.ModuleList()
        for i in reversed(range(len(widths))):
            w = widths[i]
            # The first block takes the width coming from below, the rest their own; each adds a skip of width w.
            self.ups.append(Level([c + w] + [2 * w] * (res_blocks - 1), w, emb_dim, dropout, heights[i] in attn_resolutions))
            self.upsamples.append(nn.Sequential(nn.Upsample(scale_factor=2, mode="nearest"), nn.Conv2d(w, w, 3, padding=1))
                                  if i > 0 else nn.Identity())
            c = w
        self.out = nn.Sequential(norm(c), nn.SiLU(), nn.Conv2d(c, channels, 3, padding=1))

    def embed(self, t, cond=None, drop_mask=None):
        """(B,) steps, (B, cond_dim) or None, (B,) bool or None -> (B, 4 dim) time + condition embedding."""
        emb = self.time_mlp(sinusoidal_embedding(t, self.time_dim))
        null = self.null_embed.to(emb.dtype).expand(len(t), -1)
        if cond is None or self.cond_embed is None:
            return emb + null
        c = self.cond_embed(cond.to(emb.dtype))
        if drop_mask is not None:
            c = torch.where(drop_mask.view(-1, 1).to(c.device), null.to(c.dtype), c)
        return emb + c

    def forward(self, x, t, cond=None, drop_mask=None):
        """x: (B, C, H, W) noisy image on the [-1, 1] scale; t: (B,) integer steps; cond: (B, cond_dim)
        or None; drop_mask: (B,) bool, True = use the null condition for that sample. -> (B, C, H, W) noise."""
        emb = self.embed(t, cond, drop_mask)
        h, skips = self.init(x), []
        for level, down in zip(self.downs, self.downsamples):
            for block, attn in zip(level.blocks, level.attns):
                h = attn(block(h, emb))
                skips.append(h)
            h = down(h)
        h = self.mid2(self.mid_attn(self.mid1(h, emb)), emb)
        for level, up in zip(self.ups, self.upsamples):
            for block, attn in zip(level.blocks, level.attns):
                h = attn(block(torch.cat([h, skips.pop()], dim=1), emb))
            h = up(h)
        return full_precision(self.out(h))   # fp32 under bf16 autocast
