"""WGANGP: the losses (critic, generator, encoder), sampling with guidance and inpainting."""
from __future__ import annotations

import contextlib
import copy
import functools
import math

import torch
import torch.nn.functional as F
from torch import nn

from ...utils.masks import create_mask  # noqa: F401  (re-exported: part of this module's API)
from ...utils.checks import check_cond, check_image, normalize_raw_condition
from ...utils.runtime import randn
from .flow import require_fitted


@contextlib.contextmanager
def frozen(module):
    """Temporarily set ``requires_grad=False`` on every parameter of ``module``: autograd
    then skips that module's weight gradients (it still propagates through it)."""
    flags = [p.requires_grad for p in module.parameters()]
    module.requires_grad_(False)
    try:
        yield module
    finally:
        for p, flag in zip(module.parameters(), flags):
            p.requires_grad_(flag)


def set_layout(net, memory_format):
    """Put ``net``'s activations (its ``memory_format`` attribute) and 4-D weights in
    ``memory_format`` in place; parameters keep their identity (optimizers stay valid)."""
    net.memory_format = memory_format
    with torch.no_grad():
        for p in net.parameters():
            if p.dim() == 4 and not p.is_contiguous(memory_format=memory_format):
                p.data = p.data.contiguous(memory_format=memory_format)


class WGANGP(nn.Module):
    """Wasserstein GAN with gradient penalty over a compressed latent (4 per component).

    encoder: (B, C, H, W) -> (B, latent_dim); generator: (z, cond) -> (B, C, H, W) in [0, 1];
    critic: (x, cond) -> (B, 1). ``ema_generator`` is an averaged copy of the generator (the
    training loop updates it) used by ``sample`` and ``inpaint``. ``cond_normalizer`` (set by
    training, stored in checkpoints) maps raw conditions (pixels) to the model's inputs.

    Condition dropout (``cond_drop_prob``, per sample) trains the conditional and the
    unconditional model jointly: a dropped sample uses the null embedding in the generator
    and, with ``critic_null_condition`` (default), in the critic too, with the same mask for
    its real image, its fake and the gradient penalty, so that G(z, null) is scored against
    p(x) rather than against a condition it was not given. ``critic_null_condition=False``
    is the plan's variant (the critic always sees the true condition).

    lambda_ms: weight of the mode-seeking term (MSGAN, Mao et al. 2019) in the generator
    loss: lambda_ms / (mean|G(z1, c) - G(z2, c)| / mean|z1 - z2| + 1e-5), on pairs of the
    batch that share a condition (the second half of the batch repeats the first half's).

    lambda_cond: weight of the auxiliary condition regression (continuous AC-GAN): the critic's
    condition head learns the normalized condition of REAL images (its squared error is added
    to the critic loss), and its squared error on generated images (conditions not dropped)
    is added to the generator loss, tying a sample to its requested size. The head is never
    trained on fakes (which would reward easily-regressed samples) and the gradient penalty
    covers the adversarial score only.

    lambda_rec: weight of the reach term (MDGAN's geometric regularizer, alpha-GAN's
    reconstruction): BCE between G(E(x, c), c)'s logits and the real binary image x, added to
    the generator loss, its gradient reaching the generator AND the encoder (full images, the
    true condition), so the generator is asked to reach the real designs it misses.
    lambda_latent_kl: weight of KL(N(mean, var) || N(0, I)) of a diagonal Gaussian fitted to
    the batch's E(x), keeping the reached latents where the sampler draws z from.

    fast: compute the same losses with less work (one critic pass over real and fake
    together, critic weights frozen during the generator step, channels_last activations in
    the generators and the critic); ``fast=False`` follows the plan's pseudo-code literally.
    Both give the same values and gradients (to float rounding).
    """

    def __init__(self, encoder, generator, critic, *, image_size, latent_dim=20, lambda_gp=10.0,
                 n_critic=5, cond_drop_prob=0.1, critic_null_condition=True, lambda_ms=0.0, lambda_cond=0.0,
                 lambda_rec=0.0, lambda_latent_kl=0.0, fast=True):
        super().__init__()
        self.encoder, self.generator, self.critic = encoder, generator, critic
        self.ema_generator = copy.deepcopy(generator).eval().requires_grad_(False)
        self.image_size = tuple(image_size)
        self.latent_dim, self.lambda_gp, self.n_critic = latent_dim, lambda_gp, n_critic
        self.cond_drop_prob = cond_drop_prob
        self.critic_null_condition, self.lambda_ms, self.lambda_cond = critic_null_condition, lambda_ms, lambda_cond
        self.lambda_rec, self.lambda_latent_kl = lambda_rec, lambda_latent_kl
        # Raw (unnormalized) training-split conditions (N, cond_dim), set by training and stored
        # in checkpoints: ``sample(unconditional="marginal")`` draws conditions from them.
        self.train_conditions = None
        self.channels, self.cond_dim = generator.channels, generator.cond_dim
        self.cond_normalizer = None
        self.flow = None          # optional ConditionalFlowPrior p(z | c), set by build_wgan_gp
        self.fast = fast
        self._compiled = {}       # name -> torch.compile'd network for autograd-free passes

    def compile_generator_passes(self, **compile_kwargs):
        """torch.compile the generator passes that run without autograd: the fakes of the
        critic steps (live generator) and sampling (EMA generator). Same weights (a compiled
        module reads the live parameters), same maths; never used where autograd must go
        through (generator step, penalty, inpainting). Compilation happens on first use (tens
        of seconds on CPU) and again for a new batch size or layout. Returns self."""
        compile_kwargs.setdefault("dynamic", False)
        self._compiled = {"generator": torch.compile(self.generator, **compile_kwargs),
                          "sampling_generator": torch.compile(self.sampling_generator, **compile_kwargs)}
        return self

    @property
    def fast(self):
        return self._fast

    @fast.setter
    def fast(self, value):
        """Also picks the networks' layout: NHWC (channels_last) activations and conv weights
        when fast (oneDNN's faster convolutions; without weights in the same layout every call
        would copy them), the default NCHW otherwise. Values and state dicts are unchanged."""
        self._fast = bool(value)
        layout = torch.channels_last if self._fast else torch.contiguous_format
        for net in (self.generator, self.ema_generator, self.critic):
            if hasattr(net, "memory_format"):
                set_layout(net, layout)

    # ------------------------------------------------------------------ helpers
    def _check_batch(self, img, cond, what):
        check_image(img, self.channels, self.image_size, what)
        return check_cond(cond, img.shape[0], self.cond_dim, f"{what} condition")

    def _drop_mask(self, batch_size, device):
        """Per-sample condition dropout for classifier-free guidance: True = use the null embedding."""
        return torch.rand(batch_size, device=device) < self.cond_drop_prob

    def _latent(self, batch_size, device, generator=None):
        return randn((batch_size, self.latent_dim), device, generator)

    @property
    def sampling_generator(self):
        return self.ema_generator if self.ema_generator is not None else self.generator

    # ------------------------------------------------------------------ losses
    def compute_gradient_penalty(self, real, fake, cond, eps=None, critic_drop=None):
        """lambda_gp * mean_i (||grad_x D(x_hat_i)||_2 - 1)^2 with x_hat = eps*real + (1-eps)*fake,
        one eps ~ U[0, 1] per sample (B, 1, 1, 1); the norm is over all of a sample's pixels
        (flattened), in float32 with a tiny epsilon so its gradient exists at zero.
        critic_drop: (B,) bool, samples whose condition the critic sees as the null token."""
        if eps is None:
            eps = torch.rand(real.shape[0], 1, 1, 1, device=real.device, dtype=real.dtype)
        x_hat = (eps * real + (1 - eps) * fake.detach()).requires_grad_(True)
        scores = self.critic(x_hat, cond, critic_drop)
        (grad,) = torch.autograd.grad(scores.sum(), x_hat, create_graph=True)
        norm = (grad.float().flatten(1).pow(2).sum(1) + 1e-12).sqrt()
        return self.lambda_gp * (norm - 1).pow(2).mean()

    def _critic_drop(self, drop_mask):
        """The critic's dropout mask: the generator's (joint training) or none (the plan)."""
        return drop_mask if self.critic_null_condition else None

    def _critic_scores(self, real, fake, cond, critic_drop=None, real_condition=False):
        """D(real), D(fake), and the condition head's prediction on real (None unless
        ``real_condition``): one pass over both when fast (exact: the only coupling between
        samples, the optional minibatch-std groups, never spans the real/fake boundary)."""
        head = {"return_condition": True} if real_condition else {}   # any critic works without a head
        if not self.fast:
            out = self.critic(real, cond, critic_drop, **head)
            d_real, predicted = out if real_condition else (out, None)
            return d_real, self.critic(fake, cond, critic_drop), predicted
        twice = lambda t: None if t is None else torch.cat([t, t])
        out = self.critic(torch.cat([real, fake]), twice(cond), twice(critic_drop), **head)
        scores, predicted = out if real_condition else (out, None)
        return scores[: len(real)], scores[len(real):], None if predicted is None else predicted[: len(real)]

    def _condition_head_on(self, cond):
        return self.lambda_cond > 0 and cond is not None

    def draw_noise(self, batch_size, device):
        """The random draws of one step: latent z, condition-dropout mask, GP interpolation eps."""
        return {"z": self._latent(batch_size, device), "drop_mask": self._drop_mask(batch_size, device),
                "eps": torch.rand(batch_size, 1, 1, 1, device=device)}

    def critic_step(self, real, cond=None, noise=None):
        """Losses for one critic update. The generator runs without gradients; conditions are
        dropped per sample (one mask for the generator, and for the critic's real, fake and
        penalty passes when ``critic_null_condition``).
        noise: optional dict from ``draw_noise`` (fixed draws for tests and references)."""
        noise = noise or self.draw_noise(real.shape[0], real.device)
        critic_drop = self._critic_drop(noise["drop_mask"])
        with torch.no_grad():
            fake = self._compiled.get("generator", self.generator)(noise["z"], cond, noise["drop_mask"])
        head = self._condition_head_on(cond)
        d_real, d_fake, predicted = self._critic_scores(real, fake, cond, critic_drop, real_condition=head)
        wasserstein = d_real.float().mean() - d_fake.float().mean()
        # The penalty's critic pass, its double backward and the norm run in fp32 whatever the
        # precision: a gradient norm taken in bf16 is coarse near its target 1, and on oneDNN the
        # bf16 double backward was slower than the fp32 one when tried (default config).
        with torch.autocast(real.device.type, enabled=False):
            gp = self.compute_gradient_penalty(real.float(), fake.float(), cond, noise["eps"], critic_drop)
        out = {"critic_loss": -wasserstein + gp, "wasserstein_distance": wasserstein.detach(),
               "gradient_penalty": gp.detach()}
        if head:   # the head learns from real images only, whatever the dropout (it never sees cond)
            cond_real = F.mse_loss(predicted, cond.float())
            out["critic_loss"] = out["critic_loss"] + self.lambda_cond * cond_real
            out["cond_loss_real"] = cond_real.detach()
        return out

    def generator_step(self, real, cond=None, noise=None):
        """Losses for one generator update: -mean D(G(z)) (+ the mode-seeking, condition and
        reach terms when their weights are > 0); the critic's weights get no gradient. ``real``
        (with its ``cond``) is used by the reach term only; otherwise it sets the batch size."""
        noise = noise or self.draw_noise(real.shape[0], real.device)
        drop, real_cond = noise["drop_mask"], cond
        half = len(real) // 2
        if self.lambda_ms > 0 and half > 0:
            # Pairs (i, i + half) share a condition and a dropout flag, with independent z.
            pair = lambda t: None if t is None else torch.cat([t[:half], t[:half], t[2 * half:]])
            cond, drop = pair(cond), pair(drop)
        fake = self.generator(noise["z"], cond, drop)
        # fast: the critic's weights need no gradient here. (No pass over the real batch: the
        # Wasserstein estimate is the critic step's.)
        head = self._condition_head_on(cond)
        with frozen(self.critic) if self.fast else contextlib.nullcontext():
            scored = self.critic(fake, cond, self._critic_drop(drop), **({"return_condition": True} if head else {}))
        d_fake, predicted = scored if head else (scored, None)
        g_loss = -d_fake.float().mean()
        out = {}
        if head:   # squared error of the requested condition, over the samples that were given one
            given = (~drop).float() if drop is not None else torch.ones(len(fake), device=fake.device)
            error = (predicted - cond.float()).pow(2).mean(1)
            cond_fake = (error * given).sum() / given.sum().clamp_min(1.0)
            g_loss = g_loss + self.lambda_cond * cond_fake
            out["cond_loss_fake"] = cond_fake.detach()
        if self.lambda_ms > 0 and half > 0:
            ms = self.mode_seeking_loss(fake[:half], fake[half:2 * half], noise["z"][:half], noise["z"][half:2 * half])
            g_loss = g_loss + self.lambda_ms * ms
            out["mode_seeking_loss"] = ms.detach()
        if self.lambda_rec > 0:
            reach = self.reach_loss(real, real_cond)
            g_loss = g_loss + self.lambda_rec * reach["reconstruction_loss"]
            if self.lambda_latent_kl > 0:
                g_loss = g_loss + self.lambda_latent_kl * reach["latent_kl"]
            out.update({k: v.detach() for k, v in reach.items()})
        out["generator_loss"] = g_loss
        return out

    def reach_loss(self, real, cond=None):
        """{reconstruction_loss: BCE(G(E(x, c), c) logits, x), latent_kl: KL of the batch's
        latents to N(0, I)} on the real batch; differentiable w.r.t. the generator and the
        encoder (the critic is not involved)."""
        z = self.encoder(real, None, cond)
        logits = self.generator(z, cond, logits=True)
        return {"reconstruction_loss": F.binary_cross_entropy_with_logits(logits.float(), real.float()),
                "latent_kl": self.batch_latent_kl(z.float())}

    @staticmethod
    def batch_latent_kl(z):
        """KL(N(mu, diag var) || N(0, I)) per latent dimension (mean over dimensions), mu and
        var the batch's moments of z (B, D): 0 when the batch looks like the prior."""
        var, mu = torch.var_mean(z, dim=0, correction=0)
        return 0.5 * (var + mu.pow(2) - 1 - torch.log(var + 1e-6)).mean()

    @staticmethod
    def mode_seeking_loss(img_a, img_b, z_a, z_b, eps=1e-5):
        """MSGAN's term 1 / (mean|img_a - img_b| / mean|z_a - z_b| + eps): small when two
        latents of one condition give different images; minimizing it rewards using z."""
        ratio = (img_a - img_b).abs().float().mean() / (z_a - z_b).abs().float().mean()
        return 1.0 / (ratio + eps)

    def forward(self, img, *, cond=None, step="critic", noise=None):
        """img: real (B, C, H, W) in [0, 1]; cond: (B, cond_dim) or None; step: critic | generator.

        critic: {critic_loss = -W + GP (+ lambda_cond * cond_loss_real), wasserstein_distance
        W = mean D(real) - mean D(fake), gradient_penalty}; generator: {generator_loss =
        -mean D(G(z)) (+ the mode-seeking, condition and reach terms, logged as
        mode_seeking_loss, cond_loss_fake, reconstruction_loss and latent_kl)}.
        Loss values are tensors for ``.backward()``; the others are detached. noise: optional
        fixed random draws (``draw_noise``), for references and tests."""
        cond = self._check_batch(img, cond, "WGANGP.forward input")
        if step == "critic":
            return self.critic_step(img, cond, noise)
        if step == "generator":
            return self.generator_step(img, cond, noise)
        raise ValueError(f"step must be 'critic' or 'generator', got {step!r}")

    @staticmethod
    def mask_components(x, drop_prob, generator=None):
        """Zero each component of each sample with probability ``drop_prob`` -> (partial, mask)."""
        keep = torch.rand(x.shape[0], x.shape[1], 1, 1, device=x.device, generator=generator) >= drop_prob
        mask = keep.to(x.dtype).expand_as(x)
        return x * mask, mask

    def encoder_loss(self, real, cond=None, mask_prob=0.5, latent_weight=0.1):
        """GAN-inversion objective for the encoder (the inpainting initialiser), against the
        frozen sampling generator G (the one ``inpaint`` optimizes through): on real data,
        BCE between G's logits at E(partial, mask, c) and the full binary image (a loss that
        does not saturate like MSE through the sigmoid), plus latent_weight * ||E(G(z)) - z||^2
        on generated data. The encoder sees component-masked inputs (each component hidden
        with probability ``mask_prob``), so it maps partial designs to whole ones."""
        cond = self._check_batch(real, cond, "WGANGP.encoder_loss input")
        gen = self.sampling_generator
        z = self._latent(real.shape[0], real.device)
        with torch.no_grad():
            fake = self._compiled.get("sampling_generator", gen)(z, cond)
        latent_loss = F.mse_loss(self.encoder(*self.mask_components(fake, mask_prob), cond), z)
        with frozen(gen):
            logits = gen(self.encoder(*self.mask_components(real, mask_prob), cond), cond, logits=True)
        image_loss = F.binary_cross_entropy_with_logits(logits.float(), real.float())
        return {"encoder_loss": image_loss + latent_weight * latent_loss, "latent_loss": latent_loss.detach(),
                "image_loss": image_loss.detach()}

    # ------------------------------------------------------------------ sampling
    def normalize_condition(self, raw_cond):
        """Raw conditions (e.g. width/height in pixels) -> the model's normalized inputs."""
        return normalize_raw_condition(self.cond_normalizer, raw_cond)

    def draw_train_conditions(self, n, generator=None):
        """(n, cond_dim) raw conditions drawn uniformly (with replacement) from the stored
        training split: the marginal p(c), for unconditional sampling as G(z, c ~ p(c))."""
        if self.train_conditions is None or len(self.train_conditions) == 0:
            raise ValueError("unconditional='marginal' needs the training conditions stored with the model "
                             "(checkpoints written since the joint-training change have them); use "
                             "unconditional='null' for this model")
        idx = torch.randint(len(self.train_conditions), (n,), generator=generator)
        return self.train_conditions[idx]

    @torch.inference_mode()
    def sample(self, *, batch_size=16, cond=None, guidance_scale=0.0, z=None, generator=None, raw_cond=None,
               truncation_psi=1.0, unconditional=None, prior="normal"):
        """-> (B, C, H, W) in [0, 1] from the EMA generator.

        cond: (B, cond_dim) normalized conditions, or ``raw_cond`` in raw units (normalized
        with the stored statistics). guidance_scale s > 0 with a condition:
        G(z, None) + s * (G(z, cond) - G(z, None)), clamped to [0, 1] (both in one batched
        pass); otherwise G(z, cond). z: (B, latent_dim) or None; generator: torch.Generator.
        truncation_psi in [0, 1]: the truncation trick, each style pulled toward its
        condition's mean style (1 = off; lower = typical, less varied samples).
        unconditional (when no condition is given): ``marginal`` = G(z, c) with c drawn from
        the stored training conditions (``draw_train_conditions``); ``null`` = G(z, null), the
        jointly trained unconditional mode; None = marginal when training conditions are
        stored (a trained model: the better mode by measurement), else null.
        prior: where z is drawn from when not given: normal N(0, I), or flow (the fitted p(z | c))."""
        device = next(self.parameters()).device
        if unconditional is None:
            unconditional = "marginal" if self.train_conditions is not None and self.cond_dim > 0 else "null"
        if unconditional not in ("null", "marginal"):
            raise ValueError(f"unconditional must be 'null' or 'marginal', got {unconditional!r}")
        if not 0.0 <= truncation_psi <= 1.0:
            raise ValueError(f"truncation_psi must be in [0, 1], got {truncation_psi}")
        if raw_cond is not None:
            if cond is not None:
                raise ValueError("pass either cond (normalized) or raw_cond (raw units), not both")
            cond = self.normalize_condition(raw_cond)
        elif cond is None and unconditional == "marginal" and self.cond_dim > 0:
            n = len(z) if z is not None else batch_size
            cond = self.normalize_condition(self.draw_train_conditions(n, generator))
        if cond is not None:
            batch_size = cond.shape[0]
            cond = check_cond(cond.to(device, torch.float32), batch_size, self.cond_dim, "sample condition")
        if prior not in ("normal", "flow"):
            raise ValueError(f"sample: prior must be 'normal' or 'flow', got {prior!r}")
        if z is None and prior == "flow":   # one latent per condition row (batch_size when unconditional)
            flow = require_fitted(self.flow, "sample(prior='flow')")
            z = flow.sample(cond, None if cond is not None else batch_size, generator=generator)
        elif z is None:
            z = self._latent(batch_size, device, generator)
        elif z.dim() != 2 or z.shape[1] != self.latent_dim or (cond is not None and len(z) != batch_size):
            raise ValueError(f"sample: z has shape {tuple(z.shape)}, expected ({batch_size if cond is not None else 'B'}, "
                             f"{self.latent_dim})")
        z = z.to(device)
        gen = self._compiled.get("sampling_generator", self.sampling_generator)
        if truncation_psi != 1.0:
            gen = functools.partial(self.sampling_generator, truncation_psi=truncation_psi)
        if cond is None or guidance_scale == 0:
            return gen(z, cond)
        drop = torch.arange(2 * len(z), device=device) >= len(z)
        both = gen(torch.cat([z, z]), torch.cat([cond, cond]), drop)
        with_cond, without = both[: len(z)], both[len(z):]
        return (without + guidance_scale * (with_cond - without)).clamp_(0, 1)

    @torch.no_grad()
    def log_likelihood(self, x, cond=None, prior="flow"):
        """log p(E(x) | c) in nats under the flow prior (prior="normal": under N(0, I), the
        baseline): x (B, C, H, W) in [0, 1], cond (B, cond_dim) normalized or None -> (B,).
        A typicality score of a design for a condition."""
        if prior not in ("normal", "flow"):
            raise ValueError(f"log_likelihood: prior must be 'flow' or 'normal', got {prior!r}")
        cond = self._check_batch(x, cond, "log_likelihood input")
        z = self.encoder(x, None, cond).float()
        if prior == "normal":
            return -0.5 * (z.pow(2) + math.log(2 * math.pi)).sum(1)
        return require_fitted(self.flow, "log_likelihood").log_prob(z, cond)

    def inpaint(self, partial, mask, num_steps=100, lr=0.01, cond=None, restarts=1, loss="mse",
                prior_weight=0.0, lr_schedule="cosine", noise=0.0, generator=None, return_info=False):
        """Fill the unknown pixels (mask 0) by optimizing the latent so G(z) matches the known
        pixels (mask 1); the result keeps every known pixel of ``partial`` exactly.

        partial, mask: (B, C, H, W), mask 1 = known. z starts from E(partial, mask, cond)
        (restart 0) and from N(0, I) for the other restarts; all restarts run as one batch
        (Adam is per-element, so this equals running them one by one) and the best by final
        masked loss wins. loss on known pixels: mse | l1 on G's [0, 1] output, or bce on its
        logits (non-saturating on binary masks); + prior_weight * mean z^2. lr_schedule:
        constant | cosine (to 0 over the steps). noise: std of Gaussian noise added to z
        at each step, decaying quadratically to 0 at 3/4 of the steps (StyleGAN's projector:
        explores early, settles late). Runs with gradients enabled even under an outer
        no_grad/inference_mode; the networks' weights are frozen and no parameter's ``.grad``
        is touched. Returns (B, C, H, W) in [0, 1] (and a dict with the final per-sample
        losses and the winning restart if ``return_info``)."""
        if loss not in ("mse", "l1", "bce"):
            raise ValueError(f"inpaint loss must be 'mse', 'l1' or 'bce', got {loss!r}")
        if lr_schedule not in ("constant", "cosine"):
            raise ValueError(f"inpaint lr_schedule must be 'constant' or 'cosine', got {lr_schedule!r}")
        if restarts < 1 or num_steps < 0 or noise < 0:
            raise ValueError(f"inpaint: restarts must be >= 1, num_steps and noise >= 0, got {restarts}, "
                             f"{num_steps}, {noise}")
        check_image(partial, self.channels, self.image_size, "inpaint partial")
        if not isinstance(mask, torch.Tensor) or mask.shape != partial.shape:
            got = tuple(mask.shape) if isinstance(mask, torch.Tensor) else type(mask).__name__
            raise ValueError(f"inpaint mask: expected shape {tuple(partial.shape)} (same as partial), got {got}")
        batch = partial.shape[0]
        cond = check_cond(cond, batch, self.cond_dim, "inpaint condition")
        gen = self.sampling_generator
        with torch.inference_mode(False), torch.enable_grad(), frozen(gen), frozen(self.encoder):
            # Clones turn possible inference-mode inputs into tensors autograd can use.
            partial, mask = partial.clone().float(), mask.clone().float()
            cond = None if cond is None else cond.clone().float()
            known = partial * mask
            with torch.no_grad():
                z0 = [self.encoder(known, mask, cond)]
            z0 += [self._latent(batch, partial.device, generator) for _ in range(restarts - 1)]
            z = torch.cat(z0).requires_grad_(True)
            target, weight = known.repeat(restarts, 1, 1, 1), mask.repeat(restarts, 1, 1, 1)
            cond_all = None if cond is None else cond.repeat(restarts, 1)
            optimizer = torch.optim.Adam([z], lr=lr)
            schedule = None
            if lr_schedule == "cosine" and num_steps > 0:
                schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, num_steps)

            def per_sample_loss(latent):
                out = gen(latent, cond_all, logits=loss == "bce")
                if loss == "bce":
                    err = F.binary_cross_entropy_with_logits(out, target, reduction="none")
                else:
                    diff = out - target
                    err = diff.pow(2) if loss == "mse" else diff.abs()
                value = (err * weight).flatten(1).sum(1) / weight.flatten(1).sum(1).clamp_min(1.0)
                return value + prior_weight * latent.pow(2).mean(1)

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
        if return_info:
            return result, {"loss": final.min(0).values, "best_restart": best}
        return result
