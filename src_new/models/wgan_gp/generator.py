"""Generator: latent (B, latent_dim) + condition (B, cond_dim) or None -> (B, C, H, W) in [0, 1]."""
import torch
from torch import nn

from ...utils.checks import check_cond
from .layers import ResBlock


class Generator(nn.Module):
    """[z, embed(cond)] -> Linear -> (2*dim*mults[-1], H/8, W/8) -> GN + ReLU -> bottleneck
    ResBlocks -> three 2x upsampling stages (ConvTranspose2d k4 s2 or nearest + conv 3x3, GN,
    ReLU, ResBlocks) with widths dim*mults[::-1] -> Conv 3x3 -> C -> Sigmoid.

    The plan's drawing (2 ResBlocks per stage) has 8.3M parameters at the default config; the
    default here moves one 16x8 ResBlock (256 ch) to the 8x4 bottleneck (512 ch): the same
    FLOPs per sample (a 3x3 conv costs the same at every stage, since channels double as
    positions quarter) for 4x the parameters, giving 11.8M.

    A missing condition (``cond=None``, or ``drop_mask`` True for a sample) uses a learned
    null embedding, so one set of weights serves conditional and unconditional generation.
    """

    def __init__(self, channels=5, latent_dim=20, cond_dim=2, image_size=(64, 32), dim=64,
                 dim_mults=(1, 2, 4), res_blocks=(1, 2, 2), bottleneck_res_blocks=1,
                 upsample="transpose", cond_emb_dim=128):
        super().__init__()
        self.channels, self.latent_dim, self.cond_dim = channels, latent_dim, cond_dim
        self.image_size = tuple(image_size)
        self.h0, self.w0 = image_size[0] // 8, image_size[1] // 8
        widths = [dim * m for m in reversed(dim_mults)]          # e.g. 256, 128, 64
        self.base = 2 * widths[0]                                 # e.g. 512 at H/8 x W/8
        self.cond_embed = nn.Linear(cond_dim, cond_emb_dim) if cond_dim > 0 else None
        self.null_embed = nn.Parameter(torch.zeros(cond_emb_dim))
        self.project = nn.Linear(latent_dim + cond_emb_dim, self.base * self.h0 * self.w0)
        layers = [nn.GroupNorm(8, self.base), nn.ReLU(inplace=True)]
        layers += [ResBlock(self.base) for _ in range(bottleneck_res_blocks)]
        c_in = self.base
        for c_out, n_blocks in zip(widths, res_blocks):
            if upsample == "transpose":
                layers.append(nn.ConvTranspose2d(c_in, c_out, 4, stride=2, padding=1))
            else:  # nearest_conv: no checkerboard artifacts
                layers += [nn.Upsample(scale_factor=2, mode="nearest"), nn.Conv2d(c_in, c_out, 3, padding=1)]
            layers += [nn.GroupNorm(8, c_out), nn.ReLU(inplace=True)]
            layers += [ResBlock(c_out) for _ in range(n_blocks)]
            c_in = c_out
        layers += [nn.Conv2d(c_in, channels, 3, padding=1), nn.Sigmoid()]
        self.net = nn.Sequential(*layers)
        # Activation layout: torch.channels_last runs the convolutions in NHWC (faster with
        # oneDNN / tensor cores; same maths). WGANGP(fast=True) sets it. Outputs stay NCHW.
        self.memory_format = torch.contiguous_format

    def embed_condition(self, cond, batch_size, drop_mask=None):
        """(B, cond_emb_dim): embed(cond), or the null embedding where cond is missing/dropped."""
        null = self.null_embed.expand(batch_size, -1)
        cond = check_cond(cond, batch_size, self.cond_dim, "Generator condition")
        if cond is None:
            return null
        emb = self.cond_embed(cond)
        if drop_mask is not None:
            emb = torch.where(drop_mask.view(-1, 1), null, emb)
        return emb

    def forward(self, z, cond=None, drop_mask=None):
        """z: (B, latent_dim); cond: (B, cond_dim) or None; drop_mask: (B,) bool or None.
        Returns (B, C, H, W) in [0, 1]."""
        if z.dim() != 2 or z.shape[1] != self.latent_dim:
            raise ValueError(f"Generator latent: expected shape (B, {self.latent_dim}), got {tuple(z.shape)}")
        h = torch.cat([z, self.embed_condition(cond, z.shape[0], drop_mask)], dim=1)
        h = self.project(h).view(-1, self.base, self.h0, self.w0)
        if self.memory_format is torch.contiguous_format:
            return self.net(h)
        return self.net(h.contiguous(memory_format=self.memory_format)).contiguous()
