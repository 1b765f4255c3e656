"""WGANGP: the networks (encoder, generator, EMA generator, critic, flow prior) and what a user
calls: ``forward`` (the losses of losses.py), ``sample`` (guidance, truncation, priors) and
``inpaint`` (latent optimisation, inpaint.py)."""
from __future__ import annotations

import copy
import functools
import math

import torch
from torch import nn

from ...pipeline.config import CHOICES, defaults_for
from ...utils.checks import check_cond, check_image, normalize_raw_condition
from ...utils.masks import create_mask  # noqa: F401  (re-exported: part of this module's API)
from ...utils.runtime import randn
from . import losses
from .flow import require_fitted
from .inpaint import optimize_latents

# Keyword defaults of the API are the config schema's (one place for every default).
_DEFAULTS = defaults_for("wgan_gp")
_MODEL, _TRAINING, _SAMPLING = _DEFAULTS["model"], _DEFAULTS["training"], _DEFAULTS["sampling"]


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
    lets the critic always see the true condition (conditional training only).

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
    lambda_latent_kl: weight of KL(N(mean, S) || N(0, I)) of a Gaussian fitted to the batch's
    E(x), keeping the reached latents where the sampler draws z from; latent_kl: its covariance
    S, ``diagonal`` (each latent's variance) or ``full`` (``losses.batch_latent_kl``), or
    ``sample``: the encoder is variational (VAE-GAN), the reach term decodes a draw from each
    design's Gaussian and the KL is each design's own (``losses.posterior_kl``).
    lambda_code: weight of the code critic's pull (alpha-GAN's code discriminator, Rosca et al.
    2017): ``code_critic`` (``critic.CodeCritic``) learns to tell E(x, c) from N(0, I) draws,
    and softplus(-K(E(x, c), c)) in the generator loss moves the encoder's latents toward the
    prior in their whole distribution, where the KL matches two moments.
    lambda_rec_adv: weight of -D(G(E(x, c), c)), the critic's score of the reconstructions
    (VAE-GAN, Larsen et al. 2016), in the generator loss: a per-pixel BCE alone pulls what it
    cannot pin down toward the mean; the critic is not trained on reconstructions.

    lambda_size: weight of the size term: the Huber gap in px between the size each generated
    sample measures (thresholded, as a user receives it; the gradient straight through a soft
    measurement of its lines, ``losses.line_measurements``) through the convention that relates
    each condition column to the images of the train split (``size_conventions``, fitted by
    training: which bounding-box measurement, affinely mapped) and the size it was asked for, in
    the generator loss; columns that no measurement fits are left out.

    lambda_euler: weight of the topology term: the Huber gap between each generated
    component's expected Euler number (pieces minus holes, 4-connected, ``losses.euler_number``)
    and the real batch's median for that component, in the generator loss; a detached speck or
    a belt broken at a diagonal step adds a piece, the term takes it back. euler_gap:
    ``expected`` (that gap on the soft output) or ``thresholded`` (the thresholded sample's
    count, the gradient straight through the expected one: only samples in the wrong number of
    pieces are pulled) or ``both`` (the sum of the two), ``losses.euler_loss``.

    critic_input: ``soft`` (the generator's [0, 1] output) or ``binary`` (thresholded at 0.5,
    the image a user receives, with straight-through gradients): the critic then scores the
    specks that thresholding creates. augment_p / augment_policy: DiffAugment of every
    critic input (augment.py), each sample with probability augment_p (0 = off).

    The generators and the critic run with channels_last activations and weights (oneDNN's
    faster convolutions; values and state dicts unchanged); ``bench/bench_wgan.py`` keeps a
    plain, unfused reference of the losses and checks that it agrees.
    """

    def __init__(self, encoder, generator, critic, *, image_size, latent_dim, lambda_gp, n_critic,
                 cond_drop_prob=_MODEL["cond_drop_prob"], critic_null_condition=_MODEL["critic_null_condition"],
                 lambda_ms=_MODEL["lambda_ms"], lambda_cond=_MODEL["lambda_cond"], lambda_rec=_MODEL["lambda_rec"],
                 lambda_latent_kl=_MODEL["lambda_latent_kl"], latent_kl=_MODEL["latent_kl"],
                 lambda_rec_adv=_MODEL["lambda_rec_adv"], lambda_code=_MODEL["lambda_code"], code_critic=None,
                 lambda_euler=_MODEL["lambda_euler"], euler_gap=_MODEL["euler_gap"], lambda_size=_MODEL["lambda_size"],
                 critic_input=_MODEL["critic_input"], augment_p=_MODEL["augment_p"],
                 augment_policy=_MODEL["augment_policy"]):
        super().__init__()
        self.encoder, self.generator, self.critic = encoder, generator, critic
        self.ema_generator = copy.deepcopy(generator).eval().requires_grad_(False)
        self.image_size = tuple(image_size)
        self.latent_dim, self.lambda_gp, self.n_critic = latent_dim, lambda_gp, n_critic
        self.cond_drop_prob = cond_drop_prob
        self.critic_null_condition, self.lambda_ms, self.lambda_cond = critic_null_condition, lambda_ms, lambda_cond
        self.lambda_rec, self.lambda_latent_kl, self.lambda_rec_adv = lambda_rec, lambda_latent_kl, lambda_rec_adv
        self.lambda_euler, self.lambda_size = lambda_euler, lambda_size
        if lambda_code > 0 and code_critic is None:
            raise ValueError(f"lambda_code = {lambda_code} needs a code_critic (critic.CodeCritic)")
        self.lambda_code, self.code_critic = lambda_code, code_critic
        for name, value in (("euler_gap", euler_gap), ("critic_input", critic_input), ("latent_kl", latent_kl)):
            if value not in CHOICES[name]:
                raise ValueError(f"{name} must be one of {CHOICES[name]}, got {value!r}")
        self.euler_gap, self.latent_kl = euler_gap, latent_kl
        # One {"measure", "slope", "intercept"} (or None) per condition column: how the dataset's
        # columns measure an image, fitted on the train split by training (``lambda_size``).
        self.size_conventions = None
        unknown = sorted(set(augment_policy) - set(CHOICES["augment"]))
        if unknown or not 0 <= augment_p <= 1:
            raise ValueError(f"augment_policy must list {CHOICES['augment']} (got {unknown}) and augment_p be in "
                             f"[0, 1] (got {augment_p})")
        self.critic_input, self.augment_p, self.augment_policy = critic_input, augment_p, tuple(augment_policy)
        # Raw (unnormalized) training-split conditions (N, cond_dim), set by training and stored
        # in checkpoints: ``sample(unconditional="marginal")`` draws conditions from them.
        self.train_conditions = None
        self.channels, self.cond_dim = generator.channels, generator.cond_dim
        self.cond_normalizer = None
        self.flow = None          # optional ConditionalFlowPrior p(z | c), set by build_wgan_gp
        self._compiled = {}       # name -> torch.compile'd network for autograd-free passes
        for net in (self.generator, self.ema_generator, self.critic):
            if hasattr(net, "memory_format"):
                set_layout(net, torch.channels_last)

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

    def compiled(self, name):
        """The compiled ``generator`` / ``sampling_generator`` pass if compiled, else the network."""
        return self._compiled.get(name, getattr(self, name))

    # ------------------------------------------------------------------ helpers
    def _check_batch(self, img, cond, what):
        check_image(img, self.channels, self.image_size, what)
        return check_cond(cond, img.shape[0], self.cond_dim, f"{what} condition")

    def latent(self, batch_size, device, generator=None):
        """(batch_size, latent_dim) draws from N(0, I)."""
        return randn((batch_size, self.latent_dim), device, generator)

    @property
    def sampling_generator(self):
        return self.ema_generator if self.ema_generator is not None else self.generator

    def critic_drop(self, drop_mask):
        """The critic's dropout mask: the generator's (joint training) or none (the critic
        always sees the true condition)."""
        return drop_mask if self.critic_null_condition else None

    def condition_head_on(self, cond):
        return self.lambda_cond > 0 and cond is not None

    def draw_noise(self, batch_size, device):
        """The random draws of one step: latent z, condition-dropout mask (True = the null
        embedding), GP interpolation eps."""
        return {"z": self.latent(batch_size, device),
                "drop_mask": torch.rand(batch_size, device=device) < self.cond_drop_prob,
                "eps": torch.rand(batch_size, 1, 1, 1, device=device)}

    # ------------------------------------------------------------------ losses (losses.py)
    def compute_gradient_penalty(self, real, fake, cond, eps=None, critic_drop=None):
        """lambda_gp * mean_i (||grad_x D(x_hat_i)||_2 - 1)^2 (``losses.gradient_penalty``)."""
        if eps is None:
            eps = torch.rand(real.shape[0], 1, 1, 1, device=real.device, dtype=real.dtype)
        return losses.gradient_penalty(self.critic, real, fake, cond, eps, critic_drop, self.lambda_gp)

    def critic_step(self, real, cond=None, noise=None):
        """``losses.critic_loss`` of one critic update (noise: ``draw_noise`` output or None)."""
        return losses.critic_loss(self, real, cond, noise or self.draw_noise(real.shape[0], real.device))

    def generator_step(self, real, cond=None, noise=None):
        """``losses.generator_loss`` of one generator update (noise: ``draw_noise`` output or None)."""
        return losses.generator_loss(self, real, cond, noise or self.draw_noise(real.shape[0], real.device))

    def reach_loss(self, real, cond=None):
        return losses.reach_loss(self.encoder, self.generator, real, cond, self.latent_kl)

    def code_critic_step(self, real, cond=None, prior_z=None):
        """``losses.code_critic_loss`` of one code-critic update (``lambda_code``)."""
        cond = self._check_batch(real, cond, "WGANGP.code_critic_step input")
        return losses.code_critic_loss(self, real, cond, prior_z)

    def autoencoder_step(self, real, cond=None):
        """``losses.autoencoder_loss``: the reach term alone (encoder and generator, no critic)."""
        return losses.autoencoder_loss(self, real, cond)

    batch_latent_kl = staticmethod(losses.batch_latent_kl)
    mode_seeking_loss = staticmethod(losses.mode_seeking_loss)
    mask_components = staticmethod(losses.mask_components)

    def forward(self, img, *, cond=None, step="critic", noise=None):
        """img: real (B, C, H, W) in [0, 1]; cond: (B, cond_dim) or None; step: critic | generator |
        autoencoder.

        critic: {critic_loss = -W + GP (+ lambda_cond * cond_loss_real), wasserstein_distance
        W = mean D(real) - mean D(fake), gradient_penalty}; generator: {generator_loss =
        -mean D(G(z)) (+ the mode-seeking, condition, reach and topology terms, logged as
        mode_seeking_loss, cond_loss_fake, reconstruction_loss, latent_kl,
        reconstruction_adversarial_loss and euler_loss)}; autoencoder: {autoencoder_loss =
        lambda_rec * reconstruction_loss (+ lambda_latent_kl * latent_kl), the reach term alone}.
        Loss values are tensors for ``.backward()``; the others are detached. noise: optional
        fixed random draws (``draw_noise``), for references and tests."""
        cond = self._check_batch(img, cond, "WGANGP.forward input")
        if step == "critic":
            return self.critic_step(img, cond, noise)
        if step == "generator":
            return self.generator_step(img, cond, noise)
        if step == "autoencoder":
            return self.autoencoder_step(img, cond)
        raise ValueError(f"step must be 'critic', 'generator' or 'autoencoder', got {step!r}")

    def encoder_loss(self, real, cond=None, mask_prob=_TRAINING["encoder_mask_prob"],
                     latent_weight=_TRAINING["encoder_latent_weight"]):
        """{encoder_loss, latent_loss, image_loss}: ``losses.encoder_loss``."""
        cond = self._check_batch(real, cond, "WGANGP.encoder_loss input")
        return losses.encoder_loss(self, real, cond, mask_prob, latent_weight)

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
               truncation_psi=_SAMPLING["truncation_psi"], unconditional=None, prior=_SAMPLING["prior"],
               guidance_space=_SAMPLING["guidance_space"], candidates=1):
        """-> (B, C, H, W) in [0, 1] from the EMA generator.

        cond: (B, cond_dim) normalized conditions, or ``raw_cond`` in raw units (normalized
        with the stored statistics). guidance_scale s > 0 with a condition:
        G(z, None) + s * (G(z, cond) - G(z, None)) (both in one batched pass), on the [0, 1]
        outputs clamped back to [0, 1] (guidance_space ``pixels``) or on the logits before the
        sigmoid (``logits``); ``style``: the same extrapolation of the generator's input style
        w (mapping of [z, embed(c)]), synthesized once; otherwise G(z, cond).
        z: (B, latent_dim) or None; generator: torch.Generator.
        truncation_psi in [0, 1]: the truncation trick, each style pulled toward its
        condition's mean style (1 = off; lower = typical, less varied samples).
        unconditional (when no condition is given): ``marginal`` = G(z, c) with c drawn from
        the stored training conditions (``draw_train_conditions``); ``null`` = G(z, null), the
        jointly trained unconditional mode; None = marginal when training conditions are
        stored (a trained model: the better mode by measurement), else null.
        prior: where z is drawn from when not given: normal N(0, I), or flow (the fitted p(z | c)).
        candidates k > 1: k latents are drawn per sample and the one whose image the critic
        scores highest (``Critic.score_alone``, at the sample's condition) is kept: the
        critic's judgement as a filter (best-of-k, in the spirit of discriminator rejection
        sampling, Azadi et al. 2019); k times the sampling work; needs z drawn here."""
        device = next(self.parameters()).device
        if unconditional is None:
            unconditional = "marginal" if self.train_conditions is not None and self.cond_dim > 0 else "null"
        for name, value in (("unconditional", unconditional), ("prior", prior), ("guidance_space", guidance_space)):
            if value not in CHOICES[name]:
                raise ValueError(f"sample: {name} must be one of {CHOICES[name]}, got {value!r}")
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
        if not isinstance(candidates, int) or candidates < 1 or (candidates > 1 and z is not None):
            raise ValueError(f"sample: candidates must be a whole number >= 1 (got {candidates!r}), and > 1 only "
                             f"when z is drawn here (z=None)")

        def draw():
            if prior == "flow":   # one latent per condition row (batch_size when unconditional)
                flow = require_fitted(self.flow, "sample(prior='flow')")
                return flow.sample(cond, None if cond is not None else batch_size, generator=generator)
            return self.latent(batch_size, device, generator)

        if z is None:
            z = draw()
        elif z.dim() != 2 or z.shape[1] != self.latent_dim or (cond is not None and len(z) != batch_size):
            raise ValueError(f"sample: z has shape {tuple(z.shape)}, expected ({batch_size if cond is not None else 'B'}, "
                             f"{self.latent_dim})")
        best = self._decode(z.to(device), cond, guidance_scale, guidance_space, truncation_psi)
        if candidates > 1:
            best_score = self.critic.score_alone(best, cond)
            for _ in range(candidates - 1):
                images = self._decode(draw().to(device), cond, guidance_scale, guidance_space, truncation_psi)
                score = self.critic.score_alone(images, cond)
                better = score > best_score
                best[better], best_score = images[better], torch.maximum(score, best_score)
        return best

    def _decode(self, z, cond, guidance_scale, guidance_space, truncation_psi):
        """``sample``'s images of latents z (B, latent_dim) at normalized conditions cond (or None)."""
        gen = self.compiled("sampling_generator")
        if truncation_psi != 1.0:
            gen = functools.partial(self.sampling_generator, truncation_psi=truncation_psi)
        if cond is None or guidance_scale == 0:
            return gen(z, cond)
        if guidance_space == "style":
            return self._style_guided(z, cond, guidance_scale, truncation_psi)
        drop = torch.arange(2 * len(z), device=z.device) >= len(z)
        logits = guidance_space == "logits"
        both = gen(torch.cat([z, z]), torch.cat([cond, cond]), drop, logits=logits)
        with_cond, without = both[: len(z)], both[len(z):]
        guided = without + guidance_scale * (with_cond - without)
        return guided.sigmoid() if logits else guided.clamp_(0, 1)

    def _style_guided(self, z, cond, scale, truncation_psi):
        """sigmoid(synthesize(w_null + scale * (w_c - w_null))), truncated like ``sample``."""
        gen = self.sampling_generator
        dropped = torch.ones(len(z), dtype=torch.bool, device=z.device)
        w_cond, w_null = gen.style(z, cond), gen.style(z, cond, dropped)
        return gen.from_style(w_null + scale * (w_cond - w_null), cond, truncation_psi=truncation_psi)

    @torch.no_grad()
    def log_likelihood(self, x, cond=None, prior="flow"):
        """log p(E(x) | c) in nats under the flow prior (prior="normal": under N(0, I), the
        baseline): x (B, C, H, W) in [0, 1], cond (B, cond_dim) normalized or None -> (B,).
        A typicality score of a design for a condition."""
        if prior not in CHOICES["prior"]:
            raise ValueError(f"log_likelihood: prior must be one of {CHOICES['prior']}, got {prior!r}")
        cond = self._check_batch(x, cond, "log_likelihood input")
        z = self.encoder(x, None, cond).float()
        if prior == "normal":
            return -0.5 * (z.pow(2) + math.log(2 * math.pi)).sum(1)
        return require_fitted(self.flow, "log_likelihood").log_prob(z, cond)

    def inpaint(self, partial, mask, num_steps=_SAMPLING["inpaint_steps"], lr=_SAMPLING["inpaint_lr"], cond=None,
                restarts=_SAMPLING["restarts"], loss=_SAMPLING["inpaint_loss"],
                prior_weight=_SAMPLING["inpaint_prior_weight"], lr_schedule=_SAMPLING["inpaint_lr_schedule"],
                noise=_SAMPLING["inpaint_noise"], generator=None, return_info=False):
        """Fill the unknown pixels (mask 0) by optimizing the latent so G(z) matches the known
        pixels (mask 1); the result keeps every known pixel of ``partial`` exactly.

        partial, mask: (B, C, H, W), mask 1 = known; cond: (B, cond_dim) normalized or None.
        restarts latents (the encoder's guess and N(0, I) draws) are optimized with Adam at
        ``lr`` for ``num_steps`` (lr_schedule: constant | cosine to 0); the best by final masked
        loss wins. loss on known pixels: mse | l1 on G's [0, 1] output, or bce on its logits;
        + prior_weight * mean z^2; noise: decaying latent noise (``inpaint.optimize_latents``).
        Runs with gradients enabled even under an outer no_grad/inference_mode; no parameter's
        ``.grad`` is touched. Returns (B, C, H, W) in [0, 1] (and a dict with the final
        per-sample losses and the winning restart if ``return_info``)."""
        if loss not in CHOICES["inpaint_loss"]:
            raise ValueError(f"inpaint loss must be one of {CHOICES['inpaint_loss']}, got {loss!r}")
        if lr_schedule not in CHOICES["lr_schedule"]:
            raise ValueError(f"inpaint lr_schedule must be one of {CHOICES['lr_schedule']}, got {lr_schedule!r}")
        if restarts < 1 or num_steps < 0 or noise < 0:
            raise ValueError(f"inpaint: restarts must be >= 1, num_steps and noise >= 0, got {restarts}, "
                             f"{num_steps}, {noise}")
        check_image(partial, self.channels, self.image_size, "inpaint partial")
        if not isinstance(mask, torch.Tensor) or mask.shape != partial.shape:
            got = tuple(mask.shape) if isinstance(mask, torch.Tensor) else type(mask).__name__
            raise ValueError(f"inpaint mask: expected shape {tuple(partial.shape)} (same as partial), got {got}")
        cond = check_cond(cond, partial.shape[0], self.cond_dim, "inpaint condition")
        result, final, best = optimize_latents(
            self, partial, mask, cond, num_steps=num_steps, lr=lr, restarts=restarts, loss=loss,
            prior_weight=prior_weight, lr_schedule=lr_schedule, noise=noise, generator=generator)
        if return_info:
            return result, {"loss": final, "best_restart": best}
        return result
