"""The WGAN-GP's losses, as functions of a ``WGANGP`` (which holds the networks and the weights).

critic_loss     -W + lambda_gp * GP (+ lambda_cond * condition regression on real images)
critic_view     what the critic sees: thresholded fakes, DiffAugment (both optional)
generator_loss  -mean D(G(z)) (+ condition regression on fakes, mode seeking, reach, Euler number,
                size)
encoder_loss    GAN inversion of the frozen sampling generator (the inpainting initialiser)

W = mean D(real) - mean D(fake) (Arjovsky et al. 2017); GP = mean_i (||grad D(x_hat_i)|| - 1)^2
on random interpolates, one per sample (Gulrajani et al. 2017, Algorithm 1). Conditions are
dropped per sample with one mask for the generator and, when ``critic_null_condition``, for the
critic's real, fake and penalty passes too (joint conditional / unconditional training).
Every loss is reduced in fp32 whatever the autocast precision.
"""
from __future__ import annotations

import contextlib

import torch
import torch.nn.functional as F

from ...utils.geometry import expected_measurements
from . import augment


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


def gradient_penalty(critic, real, fake, cond, eps, critic_drop, lambda_gp):
    """lambda_gp * mean_i (||grad_x D(x_hat_i)||_2 - 1)^2 with x_hat = eps*real + (1-eps)*fake,
    eps (B, 1, 1, 1) ~ U[0, 1]; the norm is over all of a sample's pixels (flattened), in fp32
    with a tiny epsilon so its gradient exists at zero. critic_drop: (B,) bool or None."""
    x_hat = (eps * real + (1 - eps) * fake.detach()).requires_grad_(True)
    scores = critic(x_hat, cond, critic_drop)
    (grad,) = torch.autograd.grad(scores.sum(), x_hat, create_graph=True)
    norm = (grad.float().flatten(1).pow(2).sum(1) + 1e-12).sqrt()
    return lambda_gp * (norm - 1).pow(2).mean()


def critic_scores(critic, real, fake, cond, critic_drop=None, real_condition=False):
    """D(real), D(fake) and the condition head's prediction on real (None unless
    ``real_condition``) from one critic pass over both halves (exact: the only coupling between
    samples, the optional minibatch-std groups, never spans the real/fake boundary)."""
    head = {"return_condition": True} if real_condition else {}   # any critic works without a head
    twice = lambda t: None if t is None else torch.cat([t, t])
    out = critic(torch.cat([real, fake]), twice(cond), twice(critic_drop), **head)
    scores, predicted = out if real_condition else (out, None)
    return scores[: len(real)], scores[len(real):], None if predicted is None else predicted[: len(real)]


def critic_view(m, fake, real=None):
    """(real, fake) as the critic scores them: ``fake`` thresholded at 0.5 when
    ``m.critic_input == "binary"`` (the image a user receives; straight-through gradients,
    Dong & Yang 2018), then both through one DiffAugment draw (``m.augment_p``; its
    parameters read from the real batch, or from the fake one when it comes alone)."""
    if m.critic_input == "binary":
        fake = fake + ((fake > 0.5).to(fake.dtype) - fake).detach()
    if m.augment_p > 0:
        params = augment.draw(real if real is not None else fake, m.augment_policy, m.augment_p)
        fake = augment.apply(fake, params)
        real = None if real is None else augment.apply(real, params)
    return real, fake


def critic_loss(m, real, cond, noise):
    """{critic_loss, wasserstein_distance, gradient_penalty (, cond_loss_real)} of one critic
    update; the generator runs without gradients. noise: ``m.draw_noise`` output."""
    critic_drop = m.critic_drop(noise["drop_mask"])
    with torch.no_grad():
        fake = m.compiled("generator")(noise["z"], cond, noise["drop_mask"])
    real, fake = critic_view(m, fake, real)
    head = m.condition_head_on(cond)
    d_real, d_fake, predicted = critic_scores(m.critic, real, fake, cond, critic_drop, real_condition=head)
    wasserstein = d_real.float().mean() - d_fake.float().mean()
    # The penalty's critic pass, its double backward and the norm run in fp32 whatever the
    # precision: a gradient norm taken in bf16 is coarse near its target 1, and on oneDNN the
    # bf16 double backward was slower than the fp32 one when tried (default config).
    with torch.autocast(real.device.type, enabled=False):
        gp = m.compute_gradient_penalty(real.float(), fake.float(), cond, noise["eps"], critic_drop)
    out = {"critic_loss": -wasserstein + gp, "wasserstein_distance": wasserstein.detach(),
           "gradient_penalty": gp.detach()}
    if head:   # the head learns from real images only, whatever the dropout (it never sees cond)
        cond_real = F.mse_loss(predicted, cond.float())
        out["critic_loss"] = out["critic_loss"] + m.lambda_cond * cond_real
        out["cond_loss_real"] = cond_real.detach()
    return out


def generator_loss(m, real, cond, noise):
    """{generator_loss (, cond_loss_fake, mode_seeking_loss, reconstruction_loss, latent_kl)}
    of one generator update; the critic's weights get no gradient. ``real`` (with ``cond``)
    feeds the reach term only; otherwise it sets the batch size."""
    drop, real_cond = noise["drop_mask"], cond
    half = len(real) // 2
    if m.lambda_ms > 0 and half > 0:
        # Pairs (i, i + half) share a condition and a dropout flag, with independent z.
        pair = lambda t: None if t is None else torch.cat([t[:half], t[:half], t[2 * half:]])
        cond, drop = pair(cond), pair(drop)
    fake_logits = m.generator(noise["z"], cond, drop, logits=True)
    fake = torch.sigmoid(fake_logits)
    head = m.condition_head_on(cond)
    with frozen(m.critic):
        scored = m.critic(critic_view(m, fake)[1], cond, m.critic_drop(drop),
                          **({"return_condition": True} if head else {}))
    d_fake, predicted = scored if head else (scored, None)
    g_loss = -d_fake.float().mean()
    out = {}
    # the condition terms count the samples that were given their condition only
    given = (~drop).float() if drop is not None else torch.ones(len(fake), device=fake.device)
    if head:   # squared error of the requested condition
        error = (predicted - cond.float()).pow(2).mean(1)
        cond_fake = (error * given).sum() / given.sum().clamp_min(1.0)
        g_loss = g_loss + m.lambda_cond * cond_fake
        out["cond_loss_fake"] = cond_fake.detach()
    if m.lambda_ms > 0 and half > 0:
        ms = mode_seeking_loss(fake[:half], fake[half:2 * half], noise["z"][:half], noise["z"][half:2 * half])
        g_loss = g_loss + m.lambda_ms * ms
        out["mode_seeking_loss"] = ms.detach()
    if m.lambda_euler > 0:
        topology = euler_loss(fake_logits, real, m.euler_gap)
        g_loss = g_loss + m.lambda_euler * topology
        out["euler_loss"] = topology.detach()
    if m.lambda_size > 0 and cond is not None:
        size = size_loss(fake_logits, m.cond_normalizer.denormalize(cond), given, m.size_conventions)
        g_loss = g_loss + m.lambda_size * size
        out["size_loss"] = size.detach()
    if m.lambda_rec > 0:
        reach = reach_loss(m.encoder, m.generator, real, real_cond, m.latent_kl)
        logits, latent = reach.pop("reconstruction_logits"), reach.pop("latent")
        g_loss = g_loss + reach_objective(m, reach)
        if m.lambda_code > 0:   # the encoder's latents must pass for prior draws (non-saturating)
            with frozen(m.code_critic):
                reach["code_loss"] = F.softplus(-m.code_critic(latent.float(), real_cond)).mean()
            g_loss = g_loss + m.lambda_code * reach["code_loss"]
        if m.lambda_rec_adv > 0:   # the reconstructions scored as fakes are, at their true conditions
            with frozen(m.critic):
                d_rec = m.critic(critic_view(m, torch.sigmoid(logits))[1], real_cond, None)
            reach["reconstruction_adversarial_loss"] = -d_rec.float().mean()
            g_loss = g_loss + m.lambda_rec_adv * reach["reconstruction_adversarial_loss"]
        out.update({k: v.detach() for k, v in reach.items()})
    out["generator_loss"] = g_loss
    return out


def euler_number(x):
    """(B, C, H, W) in [0, 1] -> (B, C) fp32: the expected 4-connected Euler number (pieces minus
    holes) of each component, its pixels independent Bernoulli(x). A binary image read as a
    cubical complex has E = V - E4 + F: pixels, 4-adjacent pairs (horizontal and vertical),
    full 2 x 2 blocks; the polynomial is multilinear, so on soft pixels it is the exact
    expectation, and a stray pixel or a diagonal-only step (two 4-connected pieces) gets a
    gradient."""
    p = x.float()
    pairs = (p[..., :, 1:] * p[..., :, :-1]).sum((-2, -1)) + (p[..., 1:, :] * p[..., :-1, :]).sum((-2, -1))
    blocks = (p[..., 1:, 1:] * p[..., 1:, :-1] * p[..., :-1, 1:] * p[..., :-1, :-1]).sum((-2, -1))
    return p.sum((-2, -1)) - pairs + blocks


# The topology term scores sigmoid(EULER_SHARPNESS * logits), not the output itself: the faint
# background of a trained generator (p ~ 0.01 over thousands of pixels) adds about half a piece
# to the expected Euler number of a clean sample at sharpness 1 and almost none at 2, while a
# speck keeps its full piece (measured on the quality checkpoint).
EULER_SHARPNESS = 2.0
# Samples further than this many pieces from the target get no gradient from the term: a grey
# image early in training has an expected Euler number in the hundreds, and pulling it down
# (toward a saturated image) swamps the adversarial signal (weight 1 diverged); the term takes
# over once the samples are nearly binary, where its gap counts actual stray pieces.
EULER_GAP_LIMIT = 3.0


def huber(gap):
    """Elementwise Huber loss of a gap (delta 1: quadratic within a unit, linear beyond)."""
    return F.smooth_l1_loss(gap, torch.zeros_like(gap), reduction="none")


def euler_loss(fake_logits, real, gap="expected"):
    """mean over samples and components of huber(E(sigmoid(EULER_SHARPNESS * fake_logits)) -
    median E(real)), E = ``euler_number`` and the median per component over the real batch: the
    data's own piece count (minus holes), read from the images, asked of every generated sample;
    a (sample, component) whose gap exceeds EULER_GAP_LIMIT contributes no gradient.
    ``gap="thresholded"``: the gap is the thresholded sample's (logits > 0, what a user
    receives), the gradient straight through the expected one, so a sample in the right number
    of pieces adds nothing and one a piece off is pulled at full strength, however faint its
    defect; ``"both"``: the sum of the two Huber terms (the expected gap keeps every sample's
    faint pixels off the threshold, the thresholded one adds a full pull on the broken ones)."""
    target = euler_number(real).median(0).values
    expected = euler_number(torch.sigmoid(EULER_SHARPNESS * fake_logits.float())) - target
    active = (expected.detach().abs() <= EULER_GAP_LIMIT).float()    # nearly binary samples only
    if gap == "expected":
        return (huber(expected) * active).mean()
    hard = euler_number((fake_logits.detach() > 0).float()) - target
    thresholded = expected + (hard - expected).detach()
    active = active * (hard.abs() <= EULER_GAP_LIMIT).float()
    terms = huber(thresholded) + (huber(expected) if gap == "both" else 0)
    return (terms * active).mean()


# How soft the size term's gradient is: each line's occupancy is sigmoid(SIZE_SOFTNESS * its
# largest logit). Only the direction comes from it (the measured value is the hard one); at 0.5
# an edge line of a trained sample (largest logit ~5, measured on a quality-budget checkpoint)
# still passes a gradient, where at 2 it would pass almost none.
SIZE_SOFTNESS = 0.5


def line_measurements(logits):
    """(B, C, H, W) logits -> {name: (B,) px}: the union's ``union_measurements`` at threshold 0.5,
    with the gradient of ``expected_measurements`` of lines occupied with probability
    sigmoid(SIZE_SOFTNESS * the line's largest logit) (straight through: Bengio et al. 2013)."""
    rows, cols = logits.float().amax((1, 3)), logits.float().amax((1, 2))
    soft = expected_measurements(-F.softplus(SIZE_SOFTNESS * rows), -F.softplus(SIZE_SOFTNESS * cols))
    certain = lambda q: torch.where(q > 0, -1e4, 0.0)      # log P(empty) of a thresholded line
    hard = expected_measurements(certain(rows.detach()), certain(cols.detach()))
    return {name: soft[name] + (hard[name] - soft[name]).detach() for name in soft}


def size_loss(fake_logits, raw_cond, given, conventions):
    """mean over the ``given`` samples ((B,) 0 / 1) and the fitted columns of huber(slope *
    measure + intercept - requested) in px: the size each sample measures (``line_measurements``
    of its logits (B, C, H, W)) through the dataset's own convention (``conventions``: one
    {"measure", "slope", "intercept"} per condition column, fitted on the train split, or None
    for a column that fits no measurement) against the raw condition it was asked for
    (B, cond_dim). A sample of the requested size adds nothing."""
    if not conventions or all(fit is None for fit in conventions):
        raise ValueError("the size term (model.lambda_size > 0) needs the model's size_conventions: one "
                         "{'measure', 'slope', 'intercept'} per condition column (training fits them on the "
                         "train split; see models/wgan_gp/train.py fit_size_conventions)")
    measured = line_measurements(fake_logits)
    gap = torch.stack([fit["slope"] * measured[fit["measure"]] + fit["intercept"] - raw_cond[:, j].float()
                       for j, fit in enumerate(conventions) if fit is not None], 1)
    per_sample = huber(gap).mean(1)
    return (per_sample * given).sum() / given.sum().clamp_min(1.0)


def reach_loss(encoder, generator, real, cond=None, latent_kl="diagonal"):
    """{reconstruction_loss: BCE(G(z, c) logits, x), latent_kl: the latents' KL to N(0, I) per
    latent, reconstruction_logits: G(z, c) before the sigmoid (B, C, H, W), latent: z (B,
    latent_dim)} on the real batch x; differentiable w.r.t. the generator and the encoder.
    z = E(x, c) and the KL is of the batch's moments (``batch_latent_kl``, ``latent_kl``
    diagonal or full), or, ``sample``, z is a draw from the variational encoder's posterior
    N(mu, sigma^2) (reparametrized) and the KL is each design's own (``posterior_kl``)."""
    if latent_kl == "sample":
        z, mu, logvar = posterior_draw(encoder, real, cond)
        kl = posterior_kl(mu.float(), logvar.float())
    else:
        z = encoder(real, None, cond)
        kl = batch_latent_kl(z.float(), full=latent_kl == "full")
    logits = generator(z, cond, logits=True)
    return {"reconstruction_loss": F.binary_cross_entropy_with_logits(logits.float(), real.float()),
            "latent_kl": kl, "reconstruction_logits": logits, "latent": z}


def posterior_draw(encoder, real, cond=None):
    """A variational encoder's latents of the real batch: a reparametrized draw z = mu + sigma *
    eps from each design's Gaussian -> (z, mu, logvar), each (B, latent_dim)."""
    mu, logvar = encoder.posterior(real, None, cond)
    return mu + torch.randn_like(mu) * torch.exp(0.5 * logvar), mu, logvar


def posterior_kl(mu, logvar):
    """KL(N(mu, diag(exp(logvar))) || N(0, I)) per latent, averaged over the batch: the VAE's
    KL, each design's Gaussian against the prior (mu, logvar: (B, D))."""
    return 0.5 * (mu.pow(2) + logvar.exp() - 1 - logvar).mean()


def code_critic_loss(m, real, cond=None, prior_z=None):
    """{code_critic_loss: softplus(-K(z, c)) + softplus(K(E(x, c), c)), means over the batch}:
    the code critic K's logistic loss (alpha-GAN), prior draws z ~ N(0, I) (``prior_z``, or
    drawn) as real, the encoder's latents of the real batch (read only; a variational encoder's
    draws, as the reach term decodes them) as fake; only K gets a gradient."""
    with torch.no_grad():
        encoded = (posterior_draw(m.encoder, real, cond)[0] if m.encoder.variational
                   else m.encoder(real, None, cond)).float()
    if prior_z is None:
        prior_z = torch.randn_like(encoded)
    loss = F.softplus(-m.code_critic(prior_z, cond)).mean() + F.softplus(m.code_critic(encoded, cond)).mean()
    return {"code_critic_loss": loss}


def reach_objective(m, reach):
    """lambda_rec * reconstruction_loss (+ lambda_latent_kl * latent_kl) of ``reach_loss``'s output:
    the reach term as it joins the generator loss."""
    loss = m.lambda_rec * reach["reconstruction_loss"]
    return loss + m.lambda_latent_kl * reach["latent_kl"] if m.lambda_latent_kl > 0 else loss


def autoencoder_loss(m, real, cond=None):
    """{autoencoder_loss: the reach term alone (``reach_objective``), reconstruction_loss,
    latent_kl} on a real batch: the encoder and generator trained as an autoencoder, no critic
    (the warm start before the game, ``training.reach_warmup_epochs``)."""
    reach = reach_loss(m.encoder, m.generator, real, cond, m.latent_kl)
    return {"autoencoder_loss": reach_objective(m, reach),
            "reconstruction_loss": reach["reconstruction_loss"].detach(), "latent_kl": reach["latent_kl"].detach()}


def batch_latent_kl(z, full=False):
    """KL(N(mu, S) || N(0, I)) / D = 0.5 (tr S + |mu|^2 - D - log det S) / D, mu and S the
    batch's moments of z (B, D): S its diagonal (each latent's variance) or, ``full``, its
    whole covariance, so that latents which vary together are penalized too (the two agree
    when the batch's latents are uncorrelated). 0 when the batch looks like the prior."""
    if not full:
        var, mu = torch.var_mean(z, dim=0, correction=0)
        return 0.5 * (var + mu.pow(2) - 1 - torch.log(var + 1e-6)).mean()
    with torch.autocast(z.device.type, enabled=False):   # a bf16 covariance is not positive definite
        z = z.float()
        mu = z.mean(0)
        centred = z - mu
        cov = centred.T @ centred / len(z) + 1e-6 * torch.eye(z.shape[1], device=z.device)
        log_det = 2 * torch.log(torch.diagonal(torch.linalg.cholesky(cov))).sum()
        return 0.5 * (torch.trace(cov) + mu.pow(2).sum() - z.shape[1] - log_det) / z.shape[1]


def mode_seeking_loss(img_a, img_b, z_a, z_b, eps=1e-5):
    """MSGAN's term 1 / (mean|img_a - img_b| / mean|z_a - z_b| + eps) (Mao et al. 2019): small
    when two latents of one condition give different images; minimizing it rewards using z."""
    ratio = (img_a - img_b).abs().float().mean() / (z_a - z_b).abs().float().mean()
    return 1.0 / (ratio + eps)


def mask_components(x, drop_prob, generator=None):
    """Zero each component of each sample with probability ``drop_prob`` -> (partial, mask)."""
    keep = torch.rand(x.shape[0], x.shape[1], 1, 1, device=x.device, generator=generator) >= drop_prob
    mask = keep.to(x.dtype).expand_as(x)
    return x * mask, mask


def encoder_loss(m, real, cond, mask_prob, latent_weight):
    """GAN-inversion objective for the encoder, against the frozen sampling generator G (the
    one inpainting optimizes through): BCE between G's logits at E(partial, mask, c) and the
    full binary real image (it does not saturate like MSE through the sigmoid), plus
    latent_weight * ||E(G(z)) - z||^2 on generated data. Each component of the encoder's input
    is hidden with probability ``mask_prob``, so it maps partial designs to whole ones."""
    gen = m.sampling_generator
    z = m.latent(real.shape[0], real.device)
    with torch.no_grad():
        fake = m.compiled("sampling_generator")(z, cond)
    latent_loss = F.mse_loss(m.encoder(*mask_components(fake, mask_prob), cond), z)
    with frozen(gen):
        logits = gen(m.encoder(*mask_components(real, mask_prob), cond), cond, logits=True)
    image_loss = F.binary_cross_entropy_with_logits(logits.float(), real.float())
    return {"encoder_loss": image_loss + latent_weight * latent_loss, "latent_loss": latent_loss.detach(),
            "image_loss": image_loss.detach()}
