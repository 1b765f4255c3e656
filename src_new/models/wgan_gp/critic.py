"""Critic: image (B, C, H, W) in [0, 1] + condition -> unbounded score (B, 1)."""
import torch
from torch import nn
from torch.nn.utils.parametrizations import spectral_norm as _spectral_norm

from ...pipeline.config import CHOICES, defaults_for
from ...utils.checks import check_cond, check_image
from ...utils.precision import GroupNorm32
from .layers import MinibatchStd, condition_planes, embed_or_null, plane_count

# Keyword defaults are the config schema's (one place for every default).
_M = defaults_for("wgan_gp")["model"]


class Critic(nn.Module):
    """Conv k4 s2 stack dim -> 2dim -> 4dim -> 8dim with LeakyReLU(0.2) and per-sample LayerNorm
    over (C, H, W) (GroupNorm with one group) after all but the first conv; global average
    pool -> features phi (B, 8dim); head: Linear 8dim -> 8dim + LeakyReLU, Linear -> 1, no
    output activation.

    The condition enters in one of two ways (``cond_mode``):
    - ``projection`` (Miyato & Koyama 2018): score = head(phi) + <embed(c), phi>;
    - ``concat`` (Mirza & Osindero's input conditioning): embed(c) (Linear cond_dim -> 64) broadcast over the image and
      concatenated to the input of the first conv.
    A dropped condition (``drop_mask`` True, or ``cond=None``) uses a learned null embedding,
    the same "no condition" token the generator has, not a zero vector (which, after
    standardization, would mean "the average size").

    ``minibatch_std_group > 0`` appends ProGAN's minibatch standard deviation over groups of
    that many samples to phi (the only coupling between samples; per group). Otherwise no
    BatchNorm or other batch-coupled layer: a sample's score depends on it alone, as the
    per-sample gradient penalty assumes. About 3.1M parameters at C=5, dim=64, cond_dim=2.

    ``condition_head``: a linear head on the pooled features (before the minibatch std, so a
    sample's prediction depends on it alone) that regresses the image's (normalized)
    condition, the continuous form of AC-GAN's auxiliary classifier. It needs the projection
    mode, where the features never see the condition input (with ``concat`` the head could
    read the condition off its own input). ``forward(..., return_condition=True)`` returns it.

    ``cond_planes``: CoordConv planes with the condition (``layers.condition_planes``) are
    concatenated to the input, so the first conv can compare an edge's position with where the
    condition puts it; the features then see the condition, so no condition head with them.

    ``patch_weight > 0``: a local (PatchGAN-style) head beside the global one: on the H/4 x W/4
    feature map (each location sees a ~10 px patch), conv 3x3 + LeakyReLU + conv 1x1 give one
    score per patch; their mean, times ``patch_weight``, joins the score, so a few stray pixels
    move the patches they fall in instead of being averaged into global features.
    ``patch_scores(x)`` returns the map (B, 1, H/4, W/4).
    """

    PATCH_TAP = 4            # index in ``features`` after which the H/4 map is read (conv, conv, norm, act)

    def __init__(self, channels, cond_dim, image_size, dim=_M["critic_dim"], cond_emb_dim=64,
                 spectral_norm=_M["spectral_norm"], cond_mode=_M["critic_cond"],
                 minibatch_std_group=_M["minibatch_std_group"], condition_head=False,
                 patch_weight=_M["critic_patch_weight"], cond_planes=False):
        super().__init__()
        if cond_mode not in CHOICES["critic_cond"]:
            raise ValueError(f"Critic cond_mode must be one of {CHOICES['critic_cond']}, got {cond_mode!r}")
        if condition_head and (cond_mode != "projection" or cond_dim == 0 or cond_planes):
            raise ValueError("Critic condition_head needs cond_mode='projection', cond_dim > 0 and no cond_planes "
                             "(otherwise the features see the condition input)")
        self.channels, self.cond_dim, self.image_size = channels, cond_dim, tuple(image_size)
        self.cond_mode, self.cond_planes = cond_mode, cond_planes
        sn = _spectral_norm if spectral_norm else (lambda m: m)
        widths = [dim, dim * 2, dim * 4, dim * 8]
        features = widths[-1] + (1 if minibatch_std_group else 0)
        emb_dim = cond_emb_dim if cond_mode == "concat" else features
        self.cond_embed = nn.Linear(cond_dim, emb_dim) if cond_dim > 0 else None
        self.null_embed = nn.Parameter(torch.zeros(emb_dim)) if cond_dim > 0 else None
        c_in = channels + (cond_emb_dim if cond_dim > 0 and cond_mode == "concat" else 0) \
            + (plane_count(cond_dim) if cond_planes else 0)
        layers = [sn(nn.Conv2d(c_in, widths[0], 4, stride=2, padding=1)), nn.LeakyReLU(0.2, inplace=True)]
        for a, b in zip(widths[:-1], widths[1:]):
            layers += [sn(nn.Conv2d(a, b, 4, stride=2, padding=1)), GroupNorm32(1, b),
                       nn.LeakyReLU(0.2, inplace=True)]
        self.features = nn.Sequential(*layers, nn.AdaptiveAvgPool2d(1), nn.Flatten())
        self.minibatch_std = MinibatchStd(minibatch_std_group) if minibatch_std_group else None
        self.head = nn.Sequential(sn(nn.Linear(features, widths[-1])), nn.LeakyReLU(0.2, inplace=True),
                                  sn(nn.Linear(widths[-1], 1)))
        self.condition_head = nn.Linear(widths[-1], cond_dim) if condition_head else None
        self.patch_weight = patch_weight
        self.patch_head = nn.Sequential(
            sn(nn.Conv2d(widths[1], widths[1], 3, padding=1)), nn.LeakyReLU(0.2, inplace=True),
            sn(nn.Conv2d(widths[1], 1, 1))) if patch_weight > 0 else None
        self.memory_format = torch.contiguous_format   # torch.channels_last: NHWC convs (same maths)

    def embed_condition(self, cond, batch_size, drop_mask=None):
        """(B, emb_dim): embed(cond), or the null embedding where cond is None / dropped."""
        return embed_or_null(self.cond_embed, self.null_embed, cond, batch_size, drop_mask)

    def forward(self, x, cond=None, drop_mask=None, return_condition=False):
        """x: (B, C, H, W); cond: (B, cond_dim) or None (= no condition: the null embedding);
        drop_mask: (B,) bool, True = this sample's condition is dropped. Returns the score
        (B, 1), and with ``return_condition`` also the condition head's (B, cond_dim) fp32
        prediction of the image's normalized condition."""
        x, emb = self._input(x, cond, drop_mask)
        phi, local = self._features(x)
        predicted = None
        if return_condition:
            if self.condition_head is None:
                raise ValueError("this critic has no condition head (model.lambda_cond = 0)")
            predicted = self.condition_head(phi).float()
        if self.minibatch_std is not None:
            phi = self.minibatch_std(phi)
        score = self._score(phi, emb, local)
        return (score, predicted) if return_condition else score

    def score_alone(self, x, cond=None):
        """(B,) fp32: each image's score on its own, its minibatch-std feature that of a group of
        copies of it, so that images scored together do not move each other's scores (ranking
        candidates: ``WGANGP.sample(candidates=k)``). x: (B, C, H, W) in [0, 1]; cond:
        (B, cond_dim) normalized, or None (the null condition)."""
        x, emb = self._input(x, cond, None)
        phi, local = self._features(x)
        if self.minibatch_std is not None:
            g = self.minibatch_std.group_size
            phi = self.minibatch_std(phi.repeat_interleave(g, 0))[::g]
        return self._score(phi, emb, local).squeeze(1).float()

    def _score(self, phi, emb, local):
        """(B, 1) the score from the pooled features phi (after the minibatch std), the condition
        embedding (or None) and the patch head's map (or None)."""
        score = self.head(phi)
        if emb is not None and self.cond_mode == "projection":
            score = score + (emb * phi).sum(1, keepdim=True)
        if self.patch_head is not None:
            score = score + self.patch_weight * self.patch_head(local).mean((2, 3))
        return score

    def _input(self, x, cond, drop_mask):
        """-> (the network's input: x, with the condition map in concat mode and the condition
        planes with ``cond_planes``; the condition embedding (B, emb_dim) or None)."""
        check_image(x, self.channels, self.image_size, "Critic input")
        emb = None
        cond = check_cond(cond, x.shape[0], self.cond_dim, "Critic condition") if self.cond_dim else None
        if self.cond_embed is not None:
            emb = self.embed_condition(None if cond is None else cond.to(x.dtype), x.shape[0], drop_mask)
        inputs = [x]
        if emb is not None and self.cond_mode == "concat":
            inputs.append(emb[:, :, None, None].expand(-1, -1, *x.shape[2:]))
        if self.cond_planes:
            inputs.append(condition_planes(cond, drop_mask, self.cond_dim, x))
        return torch.cat(inputs, dim=1) if len(inputs) > 1 else x, emb

    def _features(self, x):
        """-> (pooled features phi (B, 8dim), the H/4 map the patch head reads or None)."""
        h, local = x.contiguous(memory_format=self.memory_format), None
        if self.patch_head is None:
            return self.features(h), None
        for i, layer in enumerate(self.features):
            h = layer(h)
            if i == self.PATCH_TAP:
                local = h
        return h, local

    def patch_scores(self, x, cond=None, drop_mask=None):
        """(B, 1, H/4, W/4) the patch head's per-location scores of x (its input built as in
        ``forward``)."""
        if self.patch_head is None:
            raise ValueError("this critic has no patch head (model.critic_patch_weight = 0)")
        return self.patch_head(self._features(self._input(x, cond, drop_mask)[0])[1])


class CodeCritic(nn.Module):
    """alpha-GAN's code discriminator: a latent z (B, latent_dim) beside its condition
    (B, cond_dim) or None -> logit (B, 1) that z came from the sampling prior N(0, I) rather
    than the encoder. MLP latent_dim + cond_dim -> dim -> dim -> 1 with LeakyReLU(0.2); per
    sample (no batch coupling). With the condition it also sees latents that depend on it,
    which the sampler (z drawn independently of c) would never draw."""

    def __init__(self, latent_dim, cond_dim, dim=_M["code_critic_dim"]):
        super().__init__()
        self.cond_dim = cond_dim
        self.net = nn.Sequential(nn.Linear(latent_dim + cond_dim, dim), nn.LeakyReLU(0.2),
                                 nn.Linear(dim, dim), nn.LeakyReLU(0.2), nn.Linear(dim, 1))

    def forward(self, z, cond=None):
        if self.cond_dim:
            if cond is None:
                raise ValueError(f"CodeCritic: a conditional code critic (cond_dim = {self.cond_dim}) needs the "
                                 "latents' conditions")
            z = torch.cat([z, check_cond(cond, len(z), self.cond_dim, "CodeCritic")], 1)
        return self.net(z)
