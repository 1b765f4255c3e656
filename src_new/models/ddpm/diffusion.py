"""Gaussian diffusion (cosine schedule) with the same public API as WGANGP:
``forward`` (loss dict), ``sample`` (classifier-free guidance; DDIM or ancestral) and
``inpaint`` (known regions replaced along the reverse process; RePaint resampling)."""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from ...pipeline.config import CHOICES, defaults_for
from ...utils.checks import check_cond, check_image, normalize_raw_condition, reject_options
from ...utils.runtime import randn
from .unet import UNet

SAMPLERS, OBJECTIVES = CHOICES["sampler"], CHOICES["objective"]
# Keyword defaults of the API are the config schema's (one place for every default).
_MODEL, _SAMPLING = defaults_for("ddpm")["model"], defaults_for("ddpm")["sampling"]
SAMPLE_OPTIONS = ("batch_size", "cond", "guidance_scale", "z", "generator", "raw_cond", "sampler", "steps", "eta")
INPAINT_OPTIONS = ("num_steps", "cond", "resample", "generator", "guidance_scale")


def cosine_alpha_bar(timesteps, s=0.008):
    """(T,) cumulative signal fraction alpha_bar_t, t = 0..T-1, of Nichol & Dhariwal's cosine schedule."""
    steps = torch.arange(timesteps + 1, dtype=torch.float64) / timesteps
    f = torch.cos((steps + s) / (1 + s) * math.pi / 2) ** 2
    betas = (1 - f[1:] / f[:-1]).clamp(max=0.999)   # the clamp avoids a singular last step
    return torch.cumprod(1 - betas, 0).float()


class GaussianDiffusion(nn.Module):
    """Diffusion around ``unet(x_t, t, cond, drop_mask) -> v`` (or ``-> noise``).

    ``objective``: "pred_v" (default; Salimans & Ho's v = sqrt(ab) eps - sqrt(1 - ab) x0) or
    "pred_noise" (eps). With eps the clean-image estimate x0 = (x_t - sqrt(1 - ab) eps) / sqrt(ab)
    multiplies any error by 1 / sqrt(ab) (2e4 at the last step of the cosine schedule), so the
    first reverse steps commit to a wrong image; on the sparse tire masks (96% background) that
    left DDIM samples gray noise. With v, x0 = sqrt(ab) x_t - sqrt(1 - ab) v is well conditioned
    at every step. Images are (B, C, H, W) in [0, 1] outside and [-1, 1] inside. ``ema_unet`` (None by
    default; set by the training loop, averaged with ``utils.ema.EMA``) is used for sampling
    and inpainting when present. ``cond_normalizer`` (set from a checkpoint) maps raw
    conditions to the model's inputs for ``sample(raw_cond=...)``."""

    def __init__(self, unet, *, image_size, timesteps=_MODEL["timesteps"], cond_drop_prob=_MODEL["cond_drop_prob"],
                 objective=_MODEL["objective"]):
        super().__init__()
        if tuple(image_size) != tuple(unet.image_size):
            raise ValueError(f"GaussianDiffusion: image_size {tuple(image_size)} differs from the UNet's "
                             f"{tuple(unet.image_size)}")
        if timesteps < 1 or not 0 <= cond_drop_prob <= 1:
            raise ValueError(f"GaussianDiffusion: need timesteps >= 1 and 0 <= cond_drop_prob <= 1, "
                             f"got {timesteps}, {cond_drop_prob}")
        if objective not in OBJECTIVES:
            raise ValueError(f"GaussianDiffusion: objective must be one of {OBJECTIVES}, got {objective!r}")
        self.unet, self.ema_unet = unet, None
        self.image_size, self.timesteps, self.cond_drop_prob = tuple(image_size), int(timesteps), cond_drop_prob
        self.objective = objective
        self.channels, self.cond_dim = unet.channels, unet.cond_dim
        self.register_buffer("alpha_bar", cosine_alpha_bar(self.timesteps), persistent=False)
        self.cond_normalizer = None

    @property
    def sampling_unet(self):
        return self.ema_unet if self.ema_unet is not None else self.unet

    def _device(self):
        return self.alpha_bar.device

    def _randn(self, shape, generator):
        return randn(shape, self._device(), generator)

    def q_sample(self, x0, t, noise):
        """Noise x0 (B, C, H, W) on the [-1, 1] scale to steps t (B,)."""
        ab = self.alpha_bar[t].view(-1, 1, 1, 1)
        return ab.sqrt() * x0 + (1 - ab).sqrt() * noise

    def forward(self, img, *, cond=None):
        """img: (B, C, H, W) in [0, 1]; cond: (B, cond_dim) or None -> {"loss": scalar MSE to the
        objective's target (v or eps)}. Each sample's condition is dropped with probability
        ``cond_drop_prob`` (null embedding)."""
        check_image(img, self.channels, self.image_size, "GaussianDiffusion.forward input")
        cond = check_cond(cond, img.shape[0], self.cond_dim, "GaussianDiffusion.forward condition")
        x0 = img * 2 - 1
        t = torch.randint(0, self.timesteps, (len(img),), device=img.device)
        noise = torch.randn_like(x0)
        drop = torch.rand(len(img), device=img.device) < self.cond_drop_prob
        pred = self.unet(self.q_sample(x0, t, noise), t, cond, drop)
        if self.objective == "pred_v":
            ab = self.alpha_bar[t].view(-1, 1, 1, 1)
            target = ab.sqrt() * noise - (1 - ab).sqrt() * x0
        else:
            target = noise
        return {"loss": F.mse_loss(pred.float(), target.float())}

    # ------------------------------------------------------------------ reverse process
    def _model_out(self, x, t, cond, guidance_scale):
        """The UNet's v (or eps) at step t; with guidance s > 0: out_u + s (out_c - out_u), in one
        batched pass (the same as guiding eps: both are affine in the output at fixed x_t)."""
        net = self.sampling_unet
        tt = torch.full((len(x),), int(t), device=x.device, dtype=torch.long)
        if cond is None or guidance_scale == 0:
            return net(x, tt, cond)
        drop = torch.arange(2 * len(x), device=x.device) >= len(x)
        both = net(torch.cat([x, x]), torch.cat([tt, tt]), torch.cat([cond, cond]), drop)
        out_c, out_u = both[: len(x)], both[len(x):]
        return out_u + guidance_scale * (out_c - out_u)

    def _predict_x0(self, x, t, out):
        """(x0 clipped to [-1, 1], eps re-derived from it) from the model output at step t."""
        # Clipping x0 to the data range, then re-deriving eps, keeps large guidance scales stable.
        ab = self.alpha_bar[t]
        if self.objective == "pred_v":
            x0 = ab.sqrt() * x - (1 - ab).sqrt() * out
        else:
            x0 = (x - (1 - ab).sqrt() * out) / ab.sqrt()
        x0 = x0.clamp(-1, 1)
        return x0, (x - ab.sqrt() * x0) / (1 - ab).sqrt()

    def _ddim_step(self, x, t, t_prev, cond, guidance_scale, eta, generator):
        """One DDIM step t -> t_prev (t_prev = -1: the clean image); eta = 0 is deterministic."""
        ab_prev = self.alpha_bar[t_prev] if t_prev >= 0 else self.alpha_bar.new_ones(())
        x0, eps = self._predict_x0(x, t, self._model_out(x, t, cond, guidance_scale))
        ab = self.alpha_bar[t]
        sigma = eta * ((1 - ab_prev) / (1 - ab) * (1 - ab / ab_prev)).clamp(min=0).sqrt()
        x_prev = ab_prev.sqrt() * x0 + (1 - ab_prev - sigma ** 2).clamp(min=0).sqrt() * eps
        return x_prev + sigma * self._randn(x.shape, generator) if eta > 0 and t_prev >= 0 else x_prev

    def _ddpm_step(self, x, t, cond, guidance_scale, generator):
        """Ancestral step t -> t-1: a draw from the posterior q(x_{t-1} | x_t, x0_pred)."""
        ab = self.alpha_bar[t]
        ab_prev = self.alpha_bar[t - 1] if t > 0 else self.alpha_bar.new_ones(())
        beta = 1 - ab / ab_prev
        x0, _ = self._predict_x0(x, t, self._model_out(x, t, cond, guidance_scale))
        mean = (ab_prev.sqrt() * beta / (1 - ab)) * x0 + ((1 - beta).sqrt() * (1 - ab_prev) / (1 - ab)) * x
        if t == 0:
            return mean
        return mean + (beta * (1 - ab_prev) / (1 - ab)).sqrt() * self._randn(x.shape, generator)

    def _schedule(self, steps):
        """``steps`` distinct timesteps from T-1 down to 0 (clamped to [1, T])."""
        steps = max(1, min(int(steps), self.timesteps))
        return torch.linspace(self.timesteps - 1, 0, steps).round().long().tolist()

    def normalize_condition(self, raw_cond):
        """Raw conditions (e.g. width/height in pixels) -> the model's normalized inputs."""
        return normalize_raw_condition(self.cond_normalizer, raw_cond)

    @torch.inference_mode()
    def sample(self, *, batch_size=16, cond=None, guidance_scale=0.0, z=None, generator=None, raw_cond=None,
               sampler=_SAMPLING["sampler"], steps=None, eta=None, **unknown):
        """-> (B, C, H, W) in [0, 1] from the EMA UNet when set.

        cond: (B, cond_dim) normalized conditions (B then overrides ``batch_size``), or
        ``raw_cond`` in raw units. guidance_scale s > 0 with a condition: eps_u + s (eps_c - eps_u).
        sampler: "ddim" (``steps`` steps, default sampling.ddim_steps, stochasticity ``eta``, default sampling.ddim_eta) | "ddpm"
        (ancestral over all ``timesteps``; ``steps`` and ``eta`` do not apply and are refused).
        eta = 1 draws fresh noise at every step (on the toy masks: half the stray pixels of
        eta = 0, FD 2.33 vs 2.47); eta = 0 is deterministic given z.
        z: (B, C, H, W) initial noise; generator: torch.Generator for the draws."""
        reject_options("GaussianDiffusion.sample", unknown, SAMPLE_OPTIONS)
        if sampler not in SAMPLERS:
            raise ValueError(f"sampler must be 'ddim' or 'ddpm', got {sampler!r}")
        if sampler == "ddpm" and (steps is not None or eta is not None):
            given = [k for k, v in (("steps", steps), ("eta", eta)) if v is not None]
            raise ValueError(f"sample: {given} apply to the ddim sampler only; the ancestral 'ddpm' sampler runs "
                             f"all {self.timesteps} steps with its own noise (drop them, or use sampler='ddim')")
        steps = _SAMPLING["ddim_steps"] if steps is None else steps
        eta = _SAMPLING["ddim_eta"] if eta is None else eta
        if steps < 1 or eta < 0:
            raise ValueError(f"sample: need steps >= 1 and eta >= 0, got steps={steps}, eta={eta}")
        device = self._device()
        if raw_cond is not None:
            if cond is not None:
                raise ValueError("pass either cond (normalized) or raw_cond (raw units), not both")
            cond = self.normalize_condition(raw_cond)
        if cond is not None:
            batch_size = cond.shape[0] if isinstance(cond, torch.Tensor) and cond.dim() == 2 else batch_size
            cond = check_cond(cond, batch_size, self.cond_dim, "sample condition")
            cond = None if cond is None else cond.to(device, torch.float32)
        if z is None:
            x = self._randn((batch_size, self.channels, *self.image_size), generator)
        else:
            check_image(z, self.channels, self.image_size, "sample z")
            if cond is not None and len(z) != batch_size:
                raise ValueError(f"sample z: expected shape ({batch_size}, {self.channels}, {self.image_size[0]}, "
                                 f"{self.image_size[1]}) to match the condition batch, got {tuple(z.shape)}")
            x = z.to(device, torch.float32)
        if sampler == "ddpm":
            for t in range(self.timesteps - 1, -1, -1):
                x = self._ddpm_step(x, t, cond, guidance_scale, generator)
        else:
            ts = self._schedule(steps)
            for t, t_prev in zip(ts, ts[1:] + [-1]):
                x = self._ddim_step(x, t, t_prev, cond, guidance_scale, eta, generator)
        return ((x + 1) / 2).clamp(0, 1)

    @torch.inference_mode()
    def inpaint(self, partial, mask, num_steps=_SAMPLING["inpaint_steps"], cond=None, resample=_SAMPLING["repaint_resample"],
                generator=None, guidance_scale=0.0,
                **unknown):
        """Fill the mask == 0 pixels of ``partial`` (both (B, C, H, W), mask 1 = known).

        Deterministic DDIM over ``num_steps`` steps; after each step the known pixels are
        replaced by ``partial`` noised to that step. ``resample`` > 1 (RePaint) re-noises each
        step's result back to the previous step and repeats it, letting the generated region
        harmonize with the known one. Only these options are accepted: WGAN-GP-only ones (lr,
        restarts, loss, prior_weight) raise a ValueError naming them, so no option is recorded
        as used that was not. Returns ``partial*mask + x*(1-mask)`` in [0, 1]: known pixels of a
        binary mask are bit-exact."""
        reject_options("GaussianDiffusion.inpaint", unknown, INPAINT_OPTIONS)
        check_image(partial, self.channels, self.image_size, "inpaint partial")
        if not isinstance(mask, torch.Tensor) or mask.shape != partial.shape:
            got = tuple(mask.shape) if isinstance(mask, torch.Tensor) else type(mask).__name__
            raise ValueError(f"inpaint mask: expected shape {tuple(partial.shape)} (same as partial), got {got}")
        if num_steps < 1 or resample < 1:
            raise ValueError(f"inpaint: need num_steps >= 1 and resample >= 1, got {num_steps}, {resample}")
        cond = check_cond(cond, len(partial), self.cond_dim, "inpaint condition")
        device = self._device()
        partial, mask = partial.to(device, torch.float32), mask.to(device, torch.float32)
        cond = None if cond is None else cond.to(device, torch.float32)
        known = partial * 2 - 1
        x = self._randn(partial.shape, generator)
        ts = self._schedule(num_steps)
        for t, t_prev in zip(ts, ts[1:] + [-1]):
            for r in range(resample):
                x_prev = self._ddim_step(x, t, t_prev, cond, guidance_scale, 0.0, generator)
                if t_prev < 0:      # the final composite below restores the known pixels exactly
                    x = x_prev
                    break
                t_vec = torch.full((len(x),), t_prev, device=device)
                x_prev = mask * self.q_sample(known, t_vec, self._randn(x.shape, generator)) + (1 - mask) * x_prev
                if r < resample - 1:    # RePaint jump: forward-diffuse t_prev -> t and redo the step
                    ratio = self.alpha_bar[t] / self.alpha_bar[t_prev]
                    x = ratio.sqrt() * x_prev + (1 - ratio).sqrt() * self._randn(x.shape, generator)
                else:
                    x = x_prev
        result = ((x + 1) / 2).clamp(0, 1)
        return partial * mask + result * (1 - mask)


def build_ddpm(cfg):
    """GaussianDiffusion from a resolved config dict (``validate_config(auto_complete_config(...))``:
    the defaults of the ``cfg["model"]`` keys live in ``pipeline.config``)."""
    m = cfg["model"]
    unet = UNet(m["channels"], m["cond_dim"], m["image_size"], dim=m["dim"], dim_mults=m["dim_mults"],
                res_blocks=m["res_blocks"], attn_resolutions=m["attn_resolutions"] or (), dropout=m["dropout"])
    return GaussianDiffusion(unet, image_size=m["image_size"], timesteps=m["timesteps"],
                             cond_drop_prob=m["cond_drop_prob"], objective=m["objective"])
