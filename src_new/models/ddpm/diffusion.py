"""Gaussian diffusion (cosine schedule) with the same public API as WGANGP:
``forward`` (loss dict), ``sample`` (classifier-free guidance; DDIM or ancestral) and
``inpaint`` (known regions replaced along the reverse process; RePaint resampling)."""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from ...utils.checks import check_cond, check_image


def cosine_alpha_bar(timesteps, s=0.008):
    """Cumulative signal fraction alpha_bar_t (t = 0..T-1) of Nichol & Dhariwal's cosine schedule."""
    steps = torch.arange(timesteps + 1, dtype=torch.float64) / timesteps
    f = torch.cos((steps + s) / (1 + s) * math.pi / 2) ** 2
    betas = (1 - f[1:] / f[:-1]).clamp(max=0.999)
    return torch.cumprod(1 - betas, 0).float()


class GaussianDiffusion(nn.Module):
    """unet: (x_t, t, cond, drop_mask) -> predicted noise. Images are (B, C, H, W) in [0, 1]
    outside, [-1, 1] inside. ``ema_unet`` (set by training) is used for sampling when present;
    ``cond_normalizer`` maps raw conditions to the model's inputs."""

    def __init__(self, unet, *, image_size, timesteps=1000, cond_drop_prob=0.1):
        super().__init__()
        self.unet, self.ema_unet = unet, None
        self.image_size, self.timesteps, self.cond_drop_prob = tuple(image_size), timesteps, cond_drop_prob
        self.channels, self.cond_dim = unet.channels, unet.cond_dim
        self.register_buffer("alpha_bar", cosine_alpha_bar(timesteps), persistent=False)
        self.cond_normalizer = None

    @property
    def sampling_unet(self):
        return self.ema_unet if self.ema_unet is not None else self.unet

    def _check(self, img, cond, what):
        check_image(img, self.channels, self.image_size, what)
        return check_cond(cond, img.shape[0], self.cond_dim, f"{what} condition")

    def q_sample(self, x0, t, noise):
        ab = self.alpha_bar[t].view(-1, 1, 1, 1)
        return ab.sqrt() * x0 + (1 - ab).sqrt() * noise

    def forward(self, img, *, cond=None):
        """img: (B, C, H, W) in [0, 1] -> {"loss": noise-prediction MSE}; the condition is
        dropped per sample with ``cond_drop_prob`` (learned null embedding)."""
        cond = self._check(img, cond, "GaussianDiffusion.forward input")
        x0 = img * 2 - 1
        t = torch.randint(0, self.timesteps, (len(img),), device=img.device)
        noise = torch.randn_like(x0)
        drop = torch.rand(len(img), device=img.device) < self.cond_drop_prob
        pred = self.unet(self.q_sample(x0, t, noise), t, cond, drop)
        return {"loss": F.mse_loss(pred.float(), noise)}

    def _eps(self, x, t, cond, guidance_scale):
        net = self.sampling_unet
        tt = torch.full((len(x),), int(t), device=x.device, dtype=torch.long)
        if cond is None or guidance_scale == 0:
            return net(x, tt, cond)
        drop = torch.arange(2 * len(x), device=x.device) >= len(x)
        both = net(torch.cat([x, x]), torch.cat([tt, tt]), torch.cat([cond, cond]), drop)
        eps_c, eps_u = both[: len(x)], both[len(x):]
        return eps_u + guidance_scale * (eps_c - eps_u)

    def _ddim_step(self, x, t, t_prev, cond, guidance_scale, eta, generator):
        """One DDIM step t -> t_prev (t_prev = -1 means the clean image)."""
        ab = self.alpha_bar[t]
        ab_prev = self.alpha_bar[t_prev] if t_prev >= 0 else torch.ones((), device=x.device)
        eps = self._eps(x, t, cond, guidance_scale)
        x0 = ((x - (1 - ab).sqrt() * eps) / ab.sqrt()).clamp(-1, 1)
        eps = (x - ab.sqrt() * x0) / (1 - ab).sqrt()
        sigma = eta * ((1 - ab_prev) / (1 - ab) * (1 - ab / ab_prev)).clamp(min=0).sqrt()
        noise = torch.randn(x.shape, generator=generator, device=generator.device if generator else x.device).to(x)
        return ab_prev.sqrt() * x0 + (1 - ab_prev - sigma ** 2).clamp(min=0).sqrt() * eps + sigma * noise

    def _ddpm_step(self, x, t, cond, guidance_scale, generator):
        """Ancestral step t -> t-1 with the posterior q(x_{t-1} | x_t, x0)."""
        ab = self.alpha_bar[t]
        ab_prev = self.alpha_bar[t - 1] if t > 0 else torch.ones((), device=x.device)
        beta = 1 - ab / ab_prev
        eps = self._eps(x, t, cond, guidance_scale)
        x0 = ((x - (1 - ab).sqrt() * eps) / ab.sqrt()).clamp(-1, 1)
        mean = (ab_prev.sqrt() * beta / (1 - ab)) * x0 + ((1 - beta).sqrt() * (1 - ab_prev) / (1 - ab)) * x
        if t == 0:
            return mean
        var = beta * (1 - ab_prev) / (1 - ab)
        noise = torch.randn(x.shape, generator=generator, device=generator.device if generator else x.device).to(x)
        return mean + var.sqrt() * noise

    def _schedule(self, steps):
        steps = max(1, min(int(steps), self.timesteps))
        return torch.linspace(self.timesteps - 1, 0, steps).round().long().tolist()

    def _device(self):
        return next(self.parameters()).device

    @torch.inference_mode()
    def sample(self, *, batch_size=16, cond=None, guidance_scale=0.0, z=None, generator=None, raw_cond=None,
               sampler="ddim", steps=50, eta=0.0):
        """-> (B, C, H, W) in [0, 1]. sampler: ddim (``steps`` steps, ``eta``) | ddpm (all
        ``timesteps`` ancestral steps). guidance: eps_u + s (eps_c - eps_u). z: initial noise."""
        device = self._device()
        if raw_cond is not None:
            cond = self.cond_normalizer.normalize(raw_cond)
        if cond is not None:
            batch_size = cond.shape[0]
            cond = check_cond(cond.to(device, torch.float32), batch_size, self.cond_dim, "sample condition")
        if z is None:
            z = torch.randn(batch_size, self.channels, *self.image_size, generator=generator,
                            device=generator.device if generator is not None else device)
        x = z.to(device)
        if sampler == "ddpm":
            for t in range(self.timesteps - 1, -1, -1):
                x = self._ddpm_step(x, t, cond, guidance_scale, generator)
        elif sampler == "ddim":
            ts = self._schedule(steps)
            for t, t_prev in zip(ts, ts[1:] + [-1]):
                x = self._ddim_step(x, t, t_prev, cond, guidance_scale, eta, generator)
        else:
            raise ValueError(f"sampler must be 'ddim' or 'ddpm', got {sampler!r}")
        return ((x + 1) / 2).clamp(0, 1)

    @torch.inference_mode()
    def inpaint(self, partial, mask, num_steps=100, cond=None, resample=1, generator=None, guidance_scale=0.0,
                **unused):
        """Fill mask==0 pixels: DDIM over ``num_steps`` steps, the known pixels (mask 1) replaced
        at every step by ``partial`` noised to that step; ``resample`` > 1 re-noises and
        repeats each step (RePaint) to harmonize. Returns ``partial*mask + x*(1-mask)``
        (known pixels exact). WGAN-GP-only options (lr, restarts, loss) are ignored."""
        check_image(partial, self.channels, self.image_size, "inpaint partial")
        if not isinstance(mask, torch.Tensor) or mask.shape != partial.shape:
            got = tuple(mask.shape) if isinstance(mask, torch.Tensor) else type(mask).__name__
            raise ValueError(f"inpaint mask: expected shape {tuple(partial.shape)} (same as partial), got {got}")
        cond = check_cond(cond, len(partial), self.cond_dim, "inpaint condition")
        device = self._device()
        partial, mask = partial.to(device).float(), mask.to(device).float()
        known = partial * 2 - 1
        randn = lambda: torch.randn(partial.shape, generator=generator,
                                    device=generator.device if generator else device).to(device)
        x = randn()
        ts = self._schedule(num_steps)
        for t, t_prev in zip(ts, ts[1:] + [-1]):
            for r in range(max(1, resample)):
                x_prev = self._ddim_step(x, t, t_prev, cond, guidance_scale, 0.0, generator)
                if t_prev >= 0:
                    x_prev = mask * self.q_sample(known, torch.full((len(x),), t_prev, device=device), randn()) \
                        + (1 - mask) * x_prev
                if r < resample - 1 and t_prev >= 0:    # RePaint: back to step t and try again
                    ratio = self.alpha_bar[t] / self.alpha_bar[t_prev]
                    x = ratio.sqrt() * x_prev + (1 - ratio).sqrt() * randn()
                else:
                    x = x_prev
        result = ((x + 1) / 2).clamp(0, 1)
        return partial * mask + result * (1 - mask)
