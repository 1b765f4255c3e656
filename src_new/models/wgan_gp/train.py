"""WGAN-GP training: n_critic critic steps, one generator step, EMA, encoder inversion.
The epoch loop, checkpoints, resume, logging and fault handling are the shared
``src_new.pipeline.training.Trainer``.

``training.phase`` picks what a run trains; the other networks stay bit-identical:
  gan      critic, generator (+ EMA), the encoder every ``encoder_every`` steps and the
           flow prior every ``flow_every`` steps (the joint flow: it tracks the encoder);
           its first ``reach_warmup_epochs`` epochs train the encoder and generator as an
           autoencoder (the reach term alone, no critic), logged in the same losses.csv
  encoder  the encoder only (``WGANGP.encoder_loss``)     -> losses_encoder.csv
  flow     the flow prior p(z | c) only, by NLL on E(x)    -> losses_flow.csv
``training.epochs`` counts the epochs of the current phase (a new phase starts at the
checkpoint's epoch).

    python src_new/scripts/train.py --model wgan_gp --config configs/wgan_gp_toy.yaml
    python src_new/scripts/train.py --resume outputs/wgan_gp/<run>/checkpoint_latest.pt \
        --set training.lr_generator=1e-5 --epochs 200
    python src_new/scripts/train.py --resume outputs/wgan_gp/<run>/checkpoint_latest.pt \
        --set training.phase=flow --epochs 5
"""
from __future__ import annotations

import torch

from ...evaluation.metrics import (fit_condition_conventions, mean_pairwise_l1, real_pair_diversity,
                                   within_condition_diversity)
from ...utils.checkpoint import load_state_strict
from ...utils.ema import EMA
from ...utils.io import save_grid
from ...pipeline.training import Trainer, clip_gradients, run_training
from . import build_wgan_gp
from .flow import load_flow_state
from .sample import CHECKPOINT_VERSION, check_checkpoint, check_checkpoint_version

# Health checks (the tuning guide's reading of the losses), on epoch means.
CRITIC_DOMINATES = -10.0      # critic loss below this for PATIENCE epochs
OVERFIT_PROBE = 256           # training and test images the critic scores at each evaluation
HIGH_PENALTY = 1.0            # gradient penalty above this for PATIENCE epochs
COLLAPSE_RATIO = 0.3          # within-condition spread over z below this share of real near-condition pairs
COLLAPSE_CONDITIONS, COLLAPSE_DRAWS = 16, 8   # the probe: 8 latents for each of 16 test conditions
PATIENCE = 3
# The same bounds, shaded as healthy ranges in the run's curves.png (None = open).
HEALTHY_RANGES = {"critic_loss": (CRITIC_DOMINATES, None), "gradient_penalty": (None, HIGH_PENALTY),
                  "within_condition_spread_ratio": (COLLAPSE_RATIO, None)}

NETWORKS = ("encoder", "generator", "ema_generator", "critic")

# Per phase: (CSV file, its columns, keys that must stay finite, gradient norms checked).
PHASE_LOGS = {
    "gan": ("losses.csv",
            ["step", "epoch", "critic_loss", "generator_loss", "wasserstein_distance", "gradient_penalty",
             "mode_seeking_loss", "cond_loss_real", "cond_loss_fake", "reconstruction_loss", "latent_kl",
             "euler_loss", "size_loss", "critic_grad_norm", "generator_grad_norm", "encoder_loss", "encoder_grad_norm",
             "flow_nll", "flow_grad_norm", "code_critic_loss", "code_loss", "critic_clipped", "generator_clipped",
             "encoder_clipped", "flow_clipped",
             "lr_generator", "lr_critic", "lr_encoder", "lr_flow", "images_per_s"],
            ("critic_loss", "generator_loss", "wasserstein_distance", "gradient_penalty"),
            ("critic_grad_norm", "generator_grad_norm")),
    "encoder": ("losses_encoder.csv",
                ["step", "epoch", "encoder_loss", "latent_loss", "image_loss", "encoder_grad_norm",
                 "encoder_clipped", "lr_encoder", "images_per_s"],
                ("encoder_loss",), ("encoder_grad_norm",)),
    "flow": ("losses_flow.csv",
             ["step", "epoch", "flow_nll", "flow_grad_norm", "flow_clipped", "lr_flow", "images_per_s"],
             ("flow_nll",), ("flow_grad_norm",)),
}


# The warm start's (``reach_warmup_epochs``) finite keys and gradient norms checked.
WARMUP_CHECKS = (("generator_loss", "reconstruction_loss"), ("generator_grad_norm", "encoder_grad_norm"))


def align_layouts(optimizer, *_):
    """Optimizer step pre-hook: give each parameter's gradient and state tensors the
    parameter's own strides. Fused Adam walks a parameter's memory and its gradient's/state's
    in lockstep, so a channels_last weight with an NCHW gradient (e.g. one rebuilt by the
    distributed all-reduce) or NCHW moments (from a checkpoint of an NCHW model) would be
    silently misread. A no-op (a stride comparison) in the usual case."""
    for group in optimizer.param_groups:
        for p in group["params"]:
            if p.grad is not None and p.grad.stride() != p.stride():
                p.grad = torch.empty_like(p).copy_(p.grad)
            state = optimizer.state.get(p, {})
            for key, value in state.items():
                if torch.is_tensor(value) and value.shape == p.shape and value.stride() != p.stride():
                    state[key] = torch.empty_like(p).copy_(value)


def make_optimizers(model, tcfg):
    """Adam for the generator, critic and encoder -> (opt_g, opt_c, opt_e). Fused kernels
    (one pass over all of a network's parameters) where the parameters' device has them:
    the same update rule as the per-tensor loop, about twice as fast as foreach on CPU."""
    betas = (float(tcfg["beta1"]), float(tcfg["beta2"]))   # Adam rejects an int 0
    device = next(model.parameters()).device
    kind = {"fused": True} if device.type in ("cpu", "cuda") else {"foreach": True}
    optimizers = (torch.optim.Adam(model.generator.parameters(), tcfg["lr_generator"], betas=betas, **kind),
                  torch.optim.Adam(model.critic.parameters(), tcfg["lr_critic"], betas=betas, **kind),
                  # the encoder regresses a fixed target, not a moving game: Adam's own betas
                  torch.optim.Adam(model.encoder.parameters(), tcfg["lr_encoder"], **kind))
    for optimizer in optimizers:
        optimizer.register_step_pre_hook(align_layouts)
    return optimizers


def make_code_critic_optimizer(model, tcfg):
    """Adam for the code critic (``model.lambda_code``) at the critic's rate and betas; None
    when the model has none."""
    if model.code_critic is None:
        return None
    betas = (float(tcfg["beta1"]), float(tcfg["beta2"]))
    return torch.optim.Adam(model.code_critic.parameters(), tcfg["lr_critic"], betas=betas)


class WGANGPTrainer(Trainer):
    model_type = "wgan_gp"
    build_network = staticmethod(build_wgan_gp)
    default_phase = "gan"
    log_file, log_fields, finite_keys, grad_norm_keys = PHASE_LOGS["gan"]
    healthy_ranges = HEALTHY_RANGES
    divergence_advice = ("Remedies: lower training.lr_critic/lr_generator (/5), raise model.lambda_gp "
                         "(10 -> 20), or set training.on_divergence=rollback")

    def build(self, cfg):
        t = self.tcfg
        self.model = self.build_network(cfg).to(self.device)
        self.phase = t["phase"]
        # Algorithm 1 of Gulrajani et al.: a fresh real minibatch for each critic iteration.
        self.batches_per_step = self.model.n_critic if t["fresh_critic_batches"] and self.phase == "gan" else 1
        self.model.train_conditions = self.data["train"].raw_conditions.clone()
        if self.model.lambda_size > 0:
            self.model.size_conventions = self.fit_size_conventions()
        self.ema = EMA(self.model.generator, t["ema_decay"], t["ema_update_every"],
                       ema_model=self.model.ema_generator)
        self.opt_g, self.opt_c, self.opt_e = make_optimizers(self.model, t)
        self.opt_f = torch.optim.Adam(self.model.flow.parameters(), t["lr_flow"])
        if t["compile"]:
            self.model.compile_generator_passes()
        self.optimizers = {"g_optimizer_state_dict": (self.opt_g, "lr_generator"),   # the plan's keys
                           "c_optimizer_state_dict": (self.opt_c, "lr_critic"),
                           "e_optimizer_state_dict": (self.opt_e, "lr_encoder"),
                           "f_optimizer_state_dict": (self.opt_f, "lr_flow")}
        self.opt_k = make_code_critic_optimizer(self.model, t)
        if self.opt_k is not None:
            self.optimizers["k_optimizer_state_dict"] = (self.opt_k, "lr_critic")
        self.log_file, self.log_fields, self.finite_keys, self.grad_norm_keys = PHASE_LOGS[self.phase]
        self.halve_on_rollback = {"gan": {"lr_generator", "lr_critic"}, "encoder": {"lr_encoder"},
                                  "flow": {"lr_flow"}}[self.phase]
        # Fixed noise and test conditions for the progress grids.
        z = torch.randn(32, self.model.latent_dim, generator=torch.Generator().manual_seed(12345))
        test_cond = self.data["test"].conditions
        self.fixed_z = z.to(self.device)
        self.fixed_cond = (test_cond[torch.arange(32) % len(test_cond)].to(self.device)
                           if self.model.cond_dim > 0 else None)
        self.collapse_probe = self.make_collapse_probe() if self.phase == "gan" else None   # only gan checks it

    def make_collapse_probe(self):
        """Fixed latents and test conditions for the within-condition spread check, and the
        reference: the spread of real training pairs whose conditions are within 1 unit."""
        test = self.data["test"]
        n_cond = min(COLLAPSE_CONDITIONS, len(test))
        gen = torch.Generator().manual_seed(4321)
        z = torch.randn(n_cond * COLLAPSE_DRAWS, self.model.latent_dim, generator=gen)
        cond = test.conditions[:n_cond].repeat_interleave(COLLAPSE_DRAWS, 0) if self.model.cond_dim else None
        real, pairs = real_pair_diversity(self.train_set.images_float, self.train_set.raw_conditions,
                                          max_pairs=2000)
        if not pairs:   # no two training conditions within 1 unit: all pairs are the yardstick
            real = mean_pairwise_l1(self.train_set.images_float)
        return {"z": z.to(self.device), "cond": None if cond is None else cond.to(self.device), "real": real}

    def check_checkpoint(self, ckpt, path):
        """The sampler's validation of a WGAN-GP checkpoint (an older format named first)."""
        return check_checkpoint(ckpt, path)

    def model_state(self):
        state = {f"{name}_state_dict": getattr(self.model, name).state_dict() for name in NETWORKS}
        state["flow_state_dict"] = self.model.flow.state_dict()
        if self.model.code_critic is not None:
            state["code_critic_state_dict"] = self.model.code_critic.state_dict()
        state["ema_state"] = {"step": self.ema.step, "num_updates": self.ema.num_updates}
        state["train_conditions"] = self.model.train_conditions
        state["wgan_gp_version"] = CHECKPOINT_VERSION
        return state

    def load_model_state(self, ckpt, path):
        check_checkpoint_version(ckpt, path)
        for name in NETWORKS:
            load_state_strict(getattr(self.model, name), ckpt[f"{name}_state_dict"], name, path)
        load_flow_state(self.model, ckpt, path, say=self.say)
        if self.model.code_critic is not None:
            if "code_critic_state_dict" in ckpt:
                load_state_strict(self.model.code_critic, ckpt["code_critic_state_dict"], "code_critic", path)
            else:
                self.say(f"{path}: no code critic in this checkpoint (trained with model.lambda_code = 0, or "
                         "before the option): it starts untrained")
        self.ema.step, self.ema.num_updates = ckpt["ema_state"]["step"], ckpt["ema_state"]["num_updates"]

    def train_step(self, real, cond):
        """One step of the phase: gan = n_critic critic updates, one generator update, EMA,
        maybe an encoder update and a flow update (during the warm start: reach-term updates
        only, ``autoencoder_step``); encoder = one encoder update; flow = one flow update."""
        if self.phase == "encoder":
            return self.encoder_step(real, cond)
        if self.phase == "flow":
            return self.flow_step(real, cond)
        t = self.tcfg
        warming_up = self.epoch < t["reach_warmup_epochs"]
        # the logged keys that must stay finite: the warm start has no critic (whole epochs of it)
        self.finite_keys, self.grad_norm_keys = WARMUP_CHECKS if warming_up else PHASE_LOGS["gan"][2:]
        if warming_up:
            return self.autoencoder_step(real, cond)
        row = self.gan_step(real, cond)
        if t["encoder_every"] and self.epoch >= t["encoder_start_epoch"] and self.step % t["encoder_every"] == 0:
            row.update(self.encoder_step(real, cond))
        if t["flow_every"] and self.step % t["flow_every"] == 0:
            row.update(self.flow_step(real, cond))   # after the encoder moved: the flow follows it
        return row

    def clip(self, params):
        """-> (gradient norm before clipping, 1 if clipped) at training.grad_clip_norm."""
        return clip_gradients(params, self.tcfg["grad_clip_norm"])

    def gan_step(self, real, cond):
        """n_critic critic updates (each on its own minibatch when the loader yields
        n_critic of them, else all on the one), one generator update, EMA -> log row."""
        m = self.model
        reals = real.chunk(self.batches_per_step)
        conds = cond.chunk(self.batches_per_step) if cond is not None else [None] * len(reals)
        c_clipped = 0                 # how many of the n_critic updates were clipped
        for i in range(m.n_critic):
            real, cond = reals[i % len(reals)], conds[i % len(reals)]
            self.opt_c.zero_grad(set_to_none=True)
            with self.autocast:
                out_c = m(real, cond=cond, step="critic")
            out_c["critic_loss"].backward()
            self.dist.average_gradients(m.critic.parameters())
            c_norm, clipped = self.clip(m.critic.parameters())
            c_clipped += clipped
            self.opt_c.step()
        if m.code_critic is not None:    # one code-critic update on the last critic batch
            self.opt_k.zero_grad(set_to_none=True)
            with self.autocast:
                out_k = m.code_critic_step(real, cond)
            out_k["code_critic_loss"].backward()
            self.dist.average_gradients(m.code_critic.parameters())
            self.clip(m.code_critic.parameters())
            self.opt_k.step()
        self.opt_g.zero_grad(set_to_none=True)
        reach = m.lambda_rec > 0          # the reach term also trains the encoder, on full real images
        if reach:
            self.opt_e.zero_grad(set_to_none=True)
        with self.autocast:
            out_g = m(real, cond=cond, step="generator")
        out_g["generator_loss"].backward()
        self.dist.average_gradients(m.generator.parameters())
        g_norm, g_clipped = self.clip(m.generator.parameters())
        self.opt_g.step()
        if reach:
            self.dist.average_gradients(m.encoder.parameters())
            self.clip(m.encoder.parameters())
            self.opt_e.step()
            self.encoder_moved()
        self.ema.update()
        row = {"critic_loss": out_c["critic_loss"].item(), "generator_loss": out_g["generator_loss"].item(),
               "wasserstein_distance": out_c["wasserstein_distance"].item(),
               "gradient_penalty": out_c["gradient_penalty"].item(),
               "critic_grad_norm": c_norm, "generator_grad_norm": g_norm,
               "critic_clipped": float(c_clipped), "generator_clipped": float(g_clipped)}
        for out, key in ((out_g, "mode_seeking_loss"), (out_c, "cond_loss_real"), (out_g, "cond_loss_fake"),
                         (out_g, "reconstruction_loss"), (out_g, "latent_kl"), (out_g, "euler_loss"),
                         (out_g, "size_loss"), (out_g, "code_loss")):
            if key in out:
                row[key] = out[key].item()
        if m.code_critic is not None:
            row["code_critic_loss"] = out_k["code_critic_loss"].item()
        return row

    def autoencoder_step(self, real, cond):
        """The warm start: one reach-term update of the encoder and generator (no critic) per
        minibatch the step drew (n_critic of them with fresh critic batches), each followed by
        the EMA -> log row of the last."""
        m = self.model
        conds = cond.chunk(self.batches_per_step) if cond is not None else [None] * self.batches_per_step
        for real_i, cond_i in zip(real.chunk(self.batches_per_step), conds):
            self.opt_g.zero_grad(set_to_none=True)
            self.opt_e.zero_grad(set_to_none=True)
            with self.autocast:
                out = m(real_i, cond=cond_i, step="autoencoder")
            out["autoencoder_loss"].backward()
            self.dist.average_gradients(m.generator.parameters())
            self.dist.average_gradients(m.encoder.parameters())
            g_norm, g_clipped = self.clip(m.generator.parameters())
            e_norm, e_clipped = self.clip(m.encoder.parameters())
            self.opt_g.step()
            self.opt_e.step()
            self.encoder_moved()
            self.ema.update()
        return {"generator_loss": out["autoencoder_loss"].item(),
                "reconstruction_loss": out["reconstruction_loss"].item(), "latent_kl": out["latent_kl"].item(),
                "generator_grad_norm": g_norm, "encoder_grad_norm": e_norm,
                "generator_clipped": float(g_clipped), "encoder_clipped": float(e_clipped)}

    def fit_size_conventions(self):
        """How each condition column measures the train split's images (``fit_condition_conventions``,
        as evaluation measures the condition error) -> one {"measure", "slope", "intercept"} per
        column, None where no measurement fits (the size term leaves it out, with a warning)."""
        train, columns = self.data["train"], list(self.cfg["data"]["condition_columns"])
        fits = fit_condition_conventions(train.images_float.numpy(), train.raw_conditions.numpy(), columns)
        unfit = [f"{c} (best: {f['slope']:.3g} * {f['measure']} + {f['intercept']:.3g}, off by {f['residual']:.2f} px)"
                 for c, f in fits.items() if not f["ok"]]
        if len(unfit) == len(columns):
            raise ValueError(f"model.lambda_size = {self.model.lambda_size}: no condition column is a measurement "
                             f"of the train images: {'; '.join(unfit)}. Set model.lambda_size: 0")
        if unfit:
            self.say(f"WARNING: the size term leaves out condition column(s) that no measurement fits: "
                     f"{'; '.join(unfit)}")
        return [{k: fits[c][k] for k in ("measure", "slope", "intercept")} if fits[c]["ok"] else None
                for c in columns]

    def encoder_step(self, real, cond):
        """One encoder (GAN inversion) update (on the step's first minibatch) -> {"encoder_loss",
        ...}; nothing else changes."""
        m = self.model
        real = real.chunk(self.batches_per_step)[0]       # one minibatch (per rank under torchrun)
        cond = None if cond is None else cond.chunk(self.batches_per_step)[0]
        self.opt_e.zero_grad(set_to_none=True)
        with self.autocast:
            out_e = m.encoder_loss(real, cond, self.tcfg["encoder_mask_prob"], self.tcfg["encoder_latent_weight"])
        out_e["encoder_loss"].backward()
        self.dist.average_gradients(m.encoder.parameters())
        e_norm, e_clipped = self.clip(m.encoder.parameters())
        self.opt_e.step()
        self.encoder_moved()
        return {"encoder_loss": out_e["encoder_loss"].item(), "latent_loss": out_e["latent_loss"].item(),
                "image_loss": out_e["image_loss"].item(), "encoder_grad_norm": e_norm,
                "encoder_clipped": float(e_clipped)}

    def encoder_moved(self):
        """The flow describes E(x): a new encoder makes it stale until refitted, unless the gan
        phase updates it along (``flow_every``), so that it tracks the encoder."""
        if not (self.phase == "gan" and self.tcfg["flow_every"]):
            self.model.flow.fitted.zero_()

    @torch.no_grad()
    def encode(self, images, cond=None, batch=256):
        """E(x | c) of whole (N, C, H, W) images in [0, 1] with their (N, cond_dim) conditions or
        None, in batches -> (N, latent_dim) on the device."""
        part = lambda t, i: None if t is None else t[i:i + batch].to(self.device)
        return torch.cat([self.model.encoder(part(images, i), None, part(cond, i)) for i in range(0, len(images), batch)])

    def flow_step(self, real, cond):
        """One flow update: NLL of the encoder's latents E(x) under p(z | c) (nats per latent
        dimension); the encoder, generator and critic are only read. An unfitted (or stale)
        flow first restarts from the mean and scale of the train split's latents (``initialize``)."""
        m, flow = self.model, self.model.flow
        real = real.chunk(self.batches_per_step)[0]       # one minibatch, as the encoder step
        cond = None if cond is None else cond.chunk(self.batches_per_step)[0]
        if not int(flow.fitted):
            flow.initialize(self.encode(self.train_set.images_float,
                                        self.train_set.conditions if m.cond_dim > 0 else None))
            self.opt_f.state.clear()          # no Adam moments from an earlier fit
            flow.fitted.fill_(1)
        with torch.no_grad():
            z = m.encoder(real, None, cond).float()
        self.opt_f.zero_grad(set_to_none=True)
        nll = -flow.log_prob(z, cond).mean() / flow.dim
        nll.backward()
        self.dist.average_gradients(flow.parameters())
        f_norm, f_clipped = self.clip(flow.parameters())
        self.opt_f.step()
        return {"flow_nll": nll.item(), "flow_grad_norm": f_norm, "flow_clipped": float(f_clipped)}

    @torch.no_grad()
    def latent_nll(self, split="test", batch=256):
        """Mean NLL (nats per latent dimension) of E(x) over a split: under the flow and
        under N(0, I) -> {"<split>_flow_nll", "<split>_normal_nll"}."""
        data, m = self.data[split], self.model
        out = {}
        for prior in ("flow", "normal"):
            total = 0.0
            for i in range(0, len(data), batch):
                x = data.images_float[i:i + batch].to(self.device)
                cond = data.conditions[i:i + batch].to(self.device) if m.cond_dim > 0 else None
                total += float(m.log_likelihood(x, cond, prior=prior).sum())
            out[f"{split}_{prior}_nll"] = -total / (len(data) * m.latent_dim)
        return out

    @torch.no_grad()
    def snapshot(self):
        """Grid of EMA samples from fixed noise/conditions; warns when the generator ignores z.
        Phase flow: latents drawn from the flow (fixed seed), and the test split's latent NLL."""
        suffix = ""
        if self.phase == "flow":
            nll = self.latent_nll("test")
            self.history[-1].update(nll)
            self.say(f"epoch {self.epoch}: test latent NLL {nll['test_flow_nll']:.4f} nats/dim under the flow, "
                     f"{nll['test_normal_nll']:.4f} under N(0, I)")
            samples = self.model.sample(cond=self.fixed_cond, batch_size=len(self.fixed_z), prior="flow",
                                        generator=torch.Generator().manual_seed(12345))
            suffix = "_flow"
        else:
            samples = self.model.sample(z=self.fixed_z, cond=self.fixed_cond)
        if self.dist.is_main:
            grid = save_grid(samples.cpu(), self.run_dir / f"samples_epoch_{self.epoch:04d}{suffix}.png",
                             self.cfg["data"]["component_dirs"], mirror=self.grid_mirror)
            self.board.image(f"samples{suffix}", grid, self.step)
        if self.phase == "gan":
            self.check_collapse()
            self.history[-1].update(self.critic_overfit())

    @torch.no_grad()
    def critic_overfit(self, n=OVERFIT_PROBE):
        """Whether the critic memorises the training set (Karras et al. 2020): its mean score
        on training images and on held-back test images (never trained on) at their own
        conditions, their gap, and ADA's overfitting heuristic r_t = E[sign(D(x_train) - m)],
        centred on the held-back images' median score m (a Wasserstein critic has no fixed
        zero): near 0 while the critic scores both alike, toward 1 as it memorises
        -> {critic_score_train, critic_score_test, critic_train_test_gap, critic_sign_rt}."""
        def scores(dataset):
            group = self.model.critic.minibatch_std.group_size if self.model.critic.minibatch_std else 1
            m = min(n, len(dataset)) // group * group
            x = dataset.images_float[:m].to(self.device)
            cond = dataset.conditions[:m].to(self.device) if self.model.cond_dim else None
            return torch.cat([self.model.critic(x[i:i + 256], None if cond is None else cond[i:i + 256]).float()
                              for i in range(0, m, 256)])
        train, test = scores(self.train_set), scores(self.data["test"])
        return {"critic_score_train": float(train.mean()), "critic_score_test": float(test.mean()),
                "critic_train_test_gap": float(train.mean() - test.mean()),
                "critic_sign_rt": float((train - test.median()).sign().mean())}

    def check_collapse(self):
        """Spread over z at fixed conditions (mean pairwise L1 of COLLAPSE_DRAWS samples per
        test condition) vs real pairs of nearly equal conditions; warns below COLLAPSE_RATIO."""
        ratio = self.probe_spread() / max(self.collapse_probe["real"], 1e-8)
        self.history[-1]["within_condition_spread_ratio"] = ratio
        if ratio < COLLAPSE_RATIO and self.epoch > 1:
            self.warn("collapse", f"samples that share a condition are {ratio:.2f}x as varied as real designs "
                      f"of nearly equal conditions: the generator ignores its latent (mode collapse). "
                      f"Raise model.lambda_ms (mode seeking), model.n_critic, or lower training.lr_generator")
        return ratio

    @torch.no_grad()
    def probe_spread(self):
        p = self.collapse_probe
        samples = self.model.sample(z=p["z"], cond=p["cond"])
        return within_condition_diversity(samples.view(-1, COLLAPSE_DRAWS, *samples.shape[1:]))

    def health_check(self, means):
        recent = [h for h in self.history[-PATIENCE:] if "critic_loss" in h]   # gan-phase epochs
        if len(recent) < PATIENCE or self.phase != "gan":
            return
        if all(h["critic_loss"] < CRITIC_DOMINATES for h in recent):
            self.warn("critic", f"critic loss below {CRITIC_DOMINATES} for {PATIENCE} epochs (critic "
                      f"dominates, generator failing): lower model.n_critic or training.lr_critic, or "
                      f"raise training.lr_generator")
        if all(h["gradient_penalty"] > HIGH_PENALTY for h in recent):
            self.warn("gp", f"gradient penalty above {HIGH_PENALTY} for {PATIENCE} epochs: raise "
                      f"model.lambda_gp (10 -> 20) or lower training.lr_critic")


def train(cfg, resume=None, resume_state=None, verbose=True):
    """Train from a resolved config; ``resume`` = checkpoint path to continue from."""
    return run_training(WGANGPTrainer, cfg, resume, resume_state, verbose)
