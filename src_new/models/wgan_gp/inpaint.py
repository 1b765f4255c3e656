"""Inpainting by latent optimisation: find z so that G(z, c) matches the known components,
then keep every known pixel exactly. ``WGANGP.inpaint`` validates its inputs and calls this."""
from __future__ import annotations

import torch
import torch.nn.functional as F

from ...utils.runtime import randn
from .losses import frozen


def masked_loss(out, target, weight, loss):
    """(B,) mean over the known pixels (weight 1) of mse | l1 on G's [0, 1] output, or bce on
    its logits (non-saturating on binary masks)."""
    if loss == "bce":
        err = F.binary_cross_entropy_with_logits(out, target, reduction="none")
    else:
        diff = out - target
        err = diff.pow(2) if loss == "mse" else diff.abs()
    return (err * weight).flatten(1).sum(1) / weight.flatten(1).sum(1).clamp_min(1.0)


def optimize_latents(m, partial, mask, cond, *, num_steps, lr, restarts, loss, prior_weight, lr_schedule,
                     noise, generator):
    """-> (completed (B, C, H, W) in [0, 1], final per-sample loss (B,), winning restart (B,)).

    z starts from E(partial, mask, c) (restart 0) and from N(0, I) for the other restarts; all
    restarts run as one batch (Adam is per-element, so this equals running them one by one) and
    the best by final masked loss (+ prior_weight * mean z^2) wins. noise: std of Gaussian noise
    added to z at each step, decaying quadratically to 0 at 3/4 of the steps (StyleGAN's
    projector: explores early, settles late). The networks' weights are frozen."""
    gen, batch = m.sampling_generator, partial.shape[0]
    with torch.inference_mode(False), torch.enable_grad(), frozen(gen), frozen(m.encoder):
        # Clones turn possible inference-mode inputs into tensors autograd can use.
        partial, mask = partial.clone().float(), mask.clone().float()
        cond = None if cond is None else cond.clone().float()
        known = partial * mask
        with torch.no_grad():
            z0 = [m.encoder(known, mask, cond)]
        z0 += [m.latent(batch, partial.device, generator) for _ in range(restarts - 1)]
        z = torch.cat(z0).requires_grad_(True)
        target, weight = known.repeat(restarts, 1, 1, 1), mask.repeat(restarts, 1, 1, 1)
        cond_all = None if cond is None else cond.repeat(restarts, 1)
        optimizer = torch.optim.Adam([z], lr=lr)
        schedule = None
        if lr_schedule == "cosine" and num_steps > 0:
            schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, num_steps)

        def per_sample_loss(latent):
            out = gen(latent, cond_all, logits=loss == "bce")
            return masked_loss(out, target, weight, loss) + prior_weight * latent.pow(2).mean(1)

        for step in range(num_steps):
            optimizer.zero_grad(set_to_none=True)
            latent = z
            scale = noise * max(0.0, 1 - step / (0.75 * num_steps)) ** 2
            if scale > 0:
                latent = z + scale * randn(z.shape, z.device, generator).to(z.dtype)
            # Sum, not mean: each latent's gradient must not depend on the batch size.
            per_sample_loss(latent).sum().backward()
            optimizer.step()
            if schedule is not None:
                schedule.step()
        with torch.no_grad():
            final = per_sample_loss(z).view(restarts, batch)
            best = final.argmin(0)
            z_best = z.detach().view(restarts, batch, -1)[best, torch.arange(batch)]
            images = gen(z_best, cond)
            result = partial * mask + images * (1 - mask)
    return result, final.min(0).values, best
