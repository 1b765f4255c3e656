"""Generator: latent (B, latent_dim) + condition (B, cond_dim) or None -> (B, C, H, W) in [0, 1]."""
import torch
from torch import nn

from ...pipeline.config import defaults_for
from ...utils.checks import check_cond
from ...utils.precision import full_precision
from .layers import AdaGroupNorm, ResBlock, condition_planes, embed_or_null, plane_count

# Keyword defaults are the config schema's (one place for every default).
_M = defaults_for("wgan_gp")["model"]

# Latents whose mapped styles are averaged for the truncation trick's per-condition mean.
TRUNCATION_PROBES = 256


class Generator(nn.Module):
    """w = mapping([z, embed(cond)]) -> Linear -> (2*dim*mults[-1], H/8, W/8) -> norm + ReLU ->
    bottleneck ResBlocks -> three 2x upsampling stages (ConvTranspose2d k4 s2 or nearest +
    conv 3x3, norm, ReLU, ResBlocks) with widths dim*mults[::-1] -> Conv 3x3 -> C -> Sigmoid.

    ``style_dim > 0``: ``mapping`` is an MLP (``mapping_layers`` layers of
    width style_dim, LeakyReLU) and every norm is an AdaGroupNorm modulated by w, so the latent
    and the condition reach every resolution (a GroupNorm after a single projection otherwise
    erases most of z: the generator ignored its latent). ``style_dim = 0`` (the default, measured
    better on the toy set, docs/results.md): w = [z, embed(cond)] enters once through the
    projection, plain GroupNorms; with ``cond_modulation`` the norms are modulated by embed(cond)
    alone (conditional normalization), so the condition reaches every resolution while z still
    enters once.

    ``cond_planes``: CoordConv planes with the condition (``layers.condition_planes``: row and
    column coordinates, the condition broadcast, a presence plane) are concatenated to the
    input of every upsampling conv and of the output conv, so an edge can be placed where an
    affine function of the condition puts it, at each resolution, instead of being decoded
    from a vector through the whole stack.

    A missing condition (``cond=None``, or ``drop_mask`` True for a sample) uses a learned
    null embedding, so one set of weights serves conditional and unconditional generation.
    """

    def __init__(self, channels, latent_dim, cond_dim, image_size, dim=_M["dim"], dim_mults=_M["dim_mults"],
                 res_blocks=_M["res_blocks"], bottleneck_res_blocks=_M["bottleneck_res_blocks"],
                 upsample=_M["upsample"], cond_emb_dim=128, style_dim=_M["style_dim"],
                 mapping_layers=_M["mapping_layers"], cond_modulation=_M["cond_modulation"], cond_planes=False):
        super().__init__()
        self.channels, self.latent_dim, self.cond_dim = channels, latent_dim, cond_dim
        self.image_size = tuple(image_size)
        self.h0, self.w0 = image_size[0] // 8, image_size[1] // 8
        widths = [dim * m for m in reversed(dim_mults)]          # e.g. 256, 128, 64
        self.base = 2 * widths[0]                                 # e.g. 512 at H/8 x W/8
        self.cond_embed = nn.Linear(cond_dim, cond_emb_dim) if cond_dim > 0 else None
        self.null_embed = nn.Parameter(torch.zeros(cond_emb_dim))
        if cond_modulation and style_dim:
            raise ValueError("Generator: cond_modulation needs style_dim = 0 (a style already modulates every norm)")
        self.style_dim, self.cond_modulation, self.cond_planes = style_dim, cond_modulation, cond_planes
        planes = plane_count(cond_dim) if cond_planes else 0
        mod_dim = style_dim or (cond_emb_dim if cond_modulation else 0)     # what modulates the norms
        w_dim = latent_dim + cond_emb_dim
        mapping = []
        if style_dim:
            for i in range(mapping_layers):
                mapping += [nn.Linear(w_dim if i == 0 else style_dim, style_dim), nn.LeakyReLU(0.2)]
            w_dim = style_dim
        self.mapping = nn.Sequential(*mapping)     # empty: identity (style_dim = 0)
        self.project = nn.Linear(w_dim, self.base * self.h0 * self.w0)
        self.in_norm = AdaGroupNorm(8, self.base, mod_dim)
        blocks = [ResBlock(self.base, style_dim=mod_dim) for _ in range(bottleneck_res_blocks)]
        c_in = self.base
        for c_out, n_blocks in zip(widths, res_blocks):
            blocks.append(Upsample(c_in, c_out, upsample, mod_dim, planes))
            blocks += [ResBlock(c_out, style_dim=mod_dim) for _ in range(n_blocks)]
            c_in = c_out
        self.blocks = nn.ModuleList(blocks)
        self.to_image = nn.Conv2d(c_in + planes, channels, 3, padding=1)
        # Activation layout: torch.channels_last runs the convolutions in NHWC (faster with
        # oneDNN / tensor cores; same maths). WGANGP sets it. Outputs stay NCHW.
        self.memory_format = torch.contiguous_format

    def embed_condition(self, cond, batch_size, drop_mask=None):
        """(B, cond_emb_dim): embed(cond), or the null embedding where cond is missing/dropped."""
        cond = check_cond(cond, batch_size, self.cond_dim, "Generator condition")
        return embed_or_null(self.cond_embed, self.null_embed, cond, batch_size, drop_mask)

    def style(self, z, cond=None, drop_mask=None):
        """(B, latent_dim) latent -> (B, w_dim) style w = mapping([z, embed(cond)])."""
        if z.dim() != 2 or z.shape[1] != self.latent_dim:
            raise ValueError(f"Generator latent: expected shape (B, {self.latent_dim}), got {tuple(z.shape)}")
        return self.mapping(torch.cat([z, self.embed_condition(cond, z.shape[0], drop_mask)], dim=1))

    def mean_style(self, cond=None, drop_mask=None, batch_size=1):
        """(B, w_dim): the mean of w over TRUNCATION_PROBES fixed latents, per condition (the
        truncation trick's centre; for style_dim = 0 it is [mean z ~ 0, embed(cond)])."""
        if cond is not None:
            batch_size = cond.shape[0]
        probes = torch.randn(TRUNCATION_PROBES, self.latent_dim, generator=torch.Generator().manual_seed(0))
        probes = probes.to(self.null_embed.device, self.null_embed.dtype)
        z = probes.repeat(batch_size, 1)
        rep = lambda t: None if t is None else t.repeat_interleave(TRUNCATION_PROBES, dim=0)
        return self.style(z, rep(cond), rep(drop_mask)).view(batch_size, TRUNCATION_PROBES, -1).mean(1)

    def synthesize(self, w, cond=None, drop_mask=None):
        """(B, w_dim) style -> (B, C, H, W) logits (before the sigmoid). ``cond`` / ``drop_mask``
        feed the condition planes (``cond_planes``; otherwise the condition is all in w)."""
        h = self.project(w).view(-1, self.base, self.h0, self.w0)
        # the norms' modulation: the style, or w's condition embedding (w = [z, embed(cond)])
        m = w[:, self.latent_dim:] if self.cond_modulation else w
        h = torch.relu(self.in_norm(h.contiguous(memory_format=self.memory_format), m))
        add_planes = None
        if self.cond_planes:
            cond = check_cond(cond, len(w), self.cond_dim, "Generator condition")
            add_planes = lambda x: torch.cat([x, condition_planes(cond, drop_mask, self.cond_dim, x)], dim=1) \
                .contiguous(memory_format=self.memory_format)
        for block in self.blocks:
            h = block(h, m, add_planes) if isinstance(block, Upsample) else block(h, m)
        return self.to_image(h if add_planes is None else add_planes(h)).contiguous()

    def forward(self, z, cond=None, drop_mask=None, truncation_psi=1.0, logits=False):
        """z: (B, latent_dim); cond: (B, cond_dim) or None; drop_mask: (B,) bool or None.
        truncation_psi in [0, 1]: w is pulled toward the per-condition mean style
        (1 = no truncation, 0 = the mean-style image). Returns (B, C, H, W) in [0, 1], or the
        pre-sigmoid logits when ``logits``."""
        return self.from_style(self.style(z, cond, drop_mask), cond, drop_mask, truncation_psi, logits)

    def from_style(self, w, cond=None, drop_mask=None, truncation_psi=1.0, logits=False):
        """(B, w_dim) style -> (B, C, H, W) in [0, 1] (or the logits), w first pulled toward the
        per-condition mean style by ``truncation_psi`` (1 = off)."""
        if truncation_psi != 1.0:
            w_mean = self.mean_style(cond, drop_mask, batch_size=len(w))
            w = w_mean + truncation_psi * (w - w_mean)
        out = full_precision(self.synthesize(w, cond, drop_mask))   # fp32 logits and sigmoid under bf16 autocast
        return out if logits else torch.sigmoid(out)


class Upsample(nn.Module):
    """2x upsampling stage: ConvTranspose2d k4 s2 (``transpose``) or nearest + conv 3x3
    (``nearest_conv``: no checkerboard artifacts), then norm + ReLU. ``planes`` extra input
    channels of the conv, added by ``add_planes`` (the transpose conv's input resolution, the
    nearest_conv's output resolution)."""

    def __init__(self, c_in, c_out, mode, style_dim=0, planes=0):
        super().__init__()
        if mode == "transpose":
            self.up = nn.ConvTranspose2d(c_in + planes, c_out, 4, stride=2, padding=1)
        else:
            self.up = nn.Sequential(nn.Upsample(scale_factor=2, mode="nearest"),
                                    nn.Conv2d(c_in + planes, c_out, 3, padding=1))
        self.norm = AdaGroupNorm(8, c_out, style_dim)

    def forward(self, x, w=None, add_planes=None):
        if add_planes is None:
            h = self.up(x)
        elif isinstance(self.up, nn.Sequential):
            h = self.up[1](add_planes(self.up[0](x)))
        else:
            h = self.up(add_planes(x))
        return torch.relu(self.norm(h, w))
