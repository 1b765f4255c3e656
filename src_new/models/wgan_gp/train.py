"""WGAN-GP training loop: n_critic critic steps, one generator step, EMA, encoder inversion.

    python src_new/scripts/train.py --model wgan_gp --config configs/wgan_gp_toy.yaml
    python src_new/scripts/train.py --resume outputs/wgan_gp/<run>/checkpoint_latest.pt \
        --set training.lr_generator=1e-5 --epochs 200
"""
from __future__ import annotations

import contextlib
import sys
import time
import warnings
from pathlib import Path

import torch
from tqdm import tqdm

from ...datasets.multicomponent import ConditionNormalizer, build_datasets
from ...utils.checkpoint import check_model_type, load_checkpoint, load_state_strict, remove_stale_temp_files
from ...utils.config import dump_config
from ...utils.distributed import DistContext
from ...utils.ema import EMA
from ...utils.io import save_grid
from ...utils.runtime import get_rng_state, resolve_device, seed_everything, set_rng_state
from ...utils.training import (CSVLogger, SignalGuard, TensorBoard, TrainingDiverged, TrainingInterrupted,
                               check_finite, create_run_dir, grad_norm, make_loader, mean_pairwise_l1,
                               write_checkpoint)
from . import build_wgan_gp

LOG_FIELDS = ["step", "epoch", "critic_loss", "generator_loss", "wasserstein_distance", "gradient_penalty",
              "critic_grad_norm", "generator_grad_norm", "encoder_loss", "lr_g", "lr_c", "images_per_s"]

# Health checks (the tuning guide's reading of the losses), on epoch means.
CRITIC_DOMINATES = -10.0      # critic loss below this for PATIENCE epochs
HIGH_PENALTY = 1.0            # gradient penalty above this for PATIENCE epochs
COLLAPSE_RATIO = 0.3          # fixed-noise sample diversity below this share of the real data's
PATIENCE = 3
MAX_ROLLBACKS = 3


class WGANGPTrainer:
    """Owns the model, optimizers, EMA, data and run folder of one training run."""

    def __init__(self, cfg, resume_state=None, resume_path=None, verbose=True):
        self.cfg, self.tcfg = cfg, cfg["training"]
        self.dist = DistContext(self.tcfg["device"])
        self.device = self.dist.device(resolve_device(self.tcfg["device"]))
        self.verbose = verbose and self.dist.is_main
        seed = self.tcfg["seed"]
        seed_everything(seed)                       # identical initial weights on every rank
        if self.device.type == "cpu":
            torch.use_deterministic_algorithms(True, warn_only=True)
        self.data = build_datasets(cfg, ("train", "test"), verbose=self.verbose)
        self.train_set = self.data["train"]
        self.model = build_wgan_gp(cfg).to(self.device)
        self.model.cond_normalizer = self.train_set.normalizer
        self.ema = EMA(self.model.generator, self.tcfg["ema_decay"], self.tcfg["ema_update_every"],
                       ema_model=self.model.ema_generator)
        betas = (self.tcfg["beta1"], self.tcfg["beta2"])
        fused = dict(foreach=True)
        self.opt_g = torch.optim.Adam(self.model.generator.parameters(), self.tcfg["lr_generator"], betas=betas, **fused)
        self.opt_c = torch.optim.Adam(self.model.critic.parameters(), self.tcfg["lr_critic"], betas=betas, **fused)
        self.opt_e = torch.optim.Adam(self.model.encoder.parameters(), self.tcfg["lr_encoder"], **fused)
        self.loader, self.loader_gen, self.sampler = make_loader(
            self.train_set, self.tcfg["batch_size"], seed, self.dist, self.tcfg["num_workers"], self.device)
        self.epoch, self.step, self.history, self.rollbacks = 0, 0, [], 0
        self.warned = {}
        if resume_state is not None:  # restores the RNG streams too
            self.load_state(resume_state, resume_path)
            self.run_dir = Path(resume_path).resolve().parent
            if self.dist.is_main:
                remove_stale_temp_files(self.run_dir)   # from a process killed mid-save
                dump_config(cfg, self.run_dir / "config.yaml")
        else:
            self.run_dir = create_run_dir(cfg) if self.dist.is_main else None
            self.run_dir = Path(self.dist.broadcast_object(str(self.run_dir)))
            seed_everything(seed + 1000 * self.dist.rank)   # per-rank z / dropout / eps streams
        self.fixed_z, self.fixed_cond = self._fixed_inputs()
        self.real_diversity = mean_pairwise_l1(self.train_set.images_float[:64])
        self.autocast = (torch.autocast("cuda", dtype=torch.bfloat16)
                         if self.tcfg["bf16"] and self.device.type == "cuda" else contextlib.nullcontext())

    # ------------------------------------------------------------------ state
    def state_dict(self):
        m = self.model
        return {
            "model_type": "wgan_gp",
            "encoder_state_dict": m.encoder.state_dict(),
            "generator_state_dict": m.generator.state_dict(),
            "ema_generator_state_dict": m.ema_generator.state_dict(),
            "critic_state_dict": m.critic.state_dict(),
            "g_optimizer_state_dict": self.opt_g.state_dict(),
            "c_optimizer_state_dict": self.opt_c.state_dict(),
            "e_optimizer_state_dict": self.opt_e.state_dict(),
            "ema_state": {"step": self.ema.step, "num_updates": self.ema.num_updates},
            "epoch": self.epoch,
            "global_step": self.step,
            "config": {k: v for k, v in self.cfg.items()},
            "cond_normalizer": m.cond_normalizer.state_dict(),
            "rng_state": get_rng_state({"loader": self.loader_gen}),
            "history": self.history,
            "rollbacks": self.rollbacks,
        }

    def load_state(self, ckpt, path):
        check_model_type(ckpt, "wgan_gp", path)
        m = self.model
        for key, module in (("encoder_state_dict", m.encoder), ("generator_state_dict", m.generator),
                            ("ema_generator_state_dict", m.ema_generator), ("critic_state_dict", m.critic)):
            load_state_strict(module, ckpt[key], key.replace("_state_dict", ""), path)
        self.opt_g.load_state_dict(ckpt["g_optimizer_state_dict"])
        self.opt_c.load_state_dict(ckpt["c_optimizer_state_dict"])
        self.opt_e.load_state_dict(ckpt["e_optimizer_state_dict"])
        self.rollbacks = ckpt.get("rollbacks", 0)
        # The config's learning rates win over the stored ones (the tuning guide's resume
        # workflow: --set training.lr_generator=1e-5), halved once per divergence rollback.
        for opt, lr in ((self.opt_g, self.tcfg["lr_generator"] * 0.5 ** self.rollbacks),
                        (self.opt_c, self.tcfg["lr_critic"] * 0.5 ** self.rollbacks),
                        (self.opt_e, self.tcfg["lr_encoder"])):
            for group in opt.param_groups:
                group["lr"] = lr
        self.ema.step, self.ema.num_updates = ckpt["ema_state"]["step"], ckpt["ema_state"]["num_updates"]
        self.model.cond_normalizer = ConditionNormalizer.from_state_dict(ckpt["cond_normalizer"])
        self.epoch, self.step = ckpt["epoch"], ckpt["global_step"]
        self.history = list(ckpt.get("history", []))
        if not self.dist.enabled:
            set_rng_state(ckpt["rng_state"], {"loader": self.loader_gen})
        else:  # per-rank streams, reproducible from the seed, the rank and the epoch
            seed_everything(self.tcfg["seed"] + 1000 * self.dist.rank + 7919 * self.epoch)

    def _fixed_inputs(self, n=32):
        """Fixed noise and conditions for the progress grids (from the test split)."""
        gen = torch.Generator().manual_seed(12345)
        z = torch.randn(n, self.model.latent_dim, generator=gen)
        source = self.data["test"].conditions
        cond = source[torch.arange(n) % len(source)] if self.model.cond_dim > 0 else None
        return z.to(self.device), None if cond is None else cond.to(self.device)

    # ------------------------------------------------------------------ steps
    def train_step(self, real, cond):
        """n_critic critic updates, one generator update, EMA, maybe an encoder update.
        Returns plain floats for logging."""
        m, t = self.model, self.tcfg
        for _ in range(m.n_critic):
            self.opt_c.zero_grad(set_to_none=True)
            with self.autocast:
                out_c = m(real, cond=cond, step="critic")
            out_c["critic_loss"].backward()
            self.dist.average_gradients(m.critic.parameters())
            c_norm = grad_norm(m.critic.parameters())
            self.opt_c.step()
        self.opt_g.zero_grad(set_to_none=True)
        with self.autocast:
            out_g = m(real, cond=cond, step="generator")
        out_g["generator_loss"].backward()
        self.dist.average_gradients(m.generator.parameters())
        g_norm = grad_norm(m.generator.parameters())
        self.opt_g.step()
        self.ema.update()
        row = {"critic_loss": out_c["critic_loss"].item(), "generator_loss": out_g["generator_loss"].item(),
               "wasserstein_distance": out_c["wasserstein_distance"].item(),
               "gradient_penalty": out_c["gradient_penalty"].item(),
               "critic_grad_norm": c_norm, "generator_grad_norm": g_norm}
        if t["encoder_every"] and self.epoch >= t["encoder_start_epoch"] and self.step % t["encoder_every"] == 0:
            self.opt_e.zero_grad(set_to_none=True)
            with self.autocast:
                out_e = m.encoder_loss(real, cond, t["encoder_mask_prob"])
            out_e["encoder_loss"].backward()
            self.dist.average_gradients(m.encoder.parameters())
            self.opt_e.step()
            row["encoder_loss"] = out_e["encoder_loss"].item()
        return row

    # ------------------------------------------------------------------ loop
    def run(self):
        t, epochs = self.tcfg, self.tcfg["epochs"]
        if self.epoch >= epochs:
            self.say(f"checkpoint is at epoch {self.epoch} >= training.epochs = {epochs}; nothing to do "
                     f"(raise --epochs to train further)")
            return self.run_dir
        logger = CSVLogger(self.run_dir / "losses.csv", LOG_FIELDS) if self.dist.is_main else None
        board = TensorBoard(self.run_dir / "tensorboard", enabled=self.dist.is_main)
        self.say(f"training wgan_gp on {self.device} ({self.dist.world_size} process(es)): "
                 f"{len(self.train_set)} train samples, {len(self.loader)} steps/epoch, "
                 f"epochs {self.epoch + 1}..{epochs}; run folder {self.run_dir}")
        try:
            with SignalGuard() as guard:
                while self.epoch < epochs:
                    try:
                        self.run_epoch(logger, board, guard)
                    except TrainingDiverged as err:
                        self.handle_divergence(err)
        finally:
            if logger is not None:
                logger.close()
            board.close()
        self.say(f"done: {self.run_dir / 'checkpoint_latest.pt'}")
        return self.run_dir

    def run_epoch(self, logger, board, guard):
        m, t = self.model, self.tcfg
        if self.sampler is not None:
            self.sampler.set_epoch(self.epoch)
        m.train()
        sums, count = {}, 0
        bar = tqdm(self.loader, desc=f"epoch {self.epoch + 1}/{t['epochs']}", disable=not self.verbose,
                   leave=False, dynamic_ncols=True)
        for real, cond in bar:  # the collated batch is a list [images, conds]: unpack both
            start = time.perf_counter()
            real = real.to(self.device, non_blocking=True)
            cond = cond.to(self.device, non_blocking=True) if cond.shape[1] > 0 else None
            row = self.train_step(real, cond)
            self.step += 1
            check_finite({k: row[k] for k in ("critic_loss", "generator_loss")},
                         {"critic_grad_norm": row["critic_grad_norm"],
                          "generator_grad_norm": row["generator_grad_norm"]}, t["max_grad_norm"], self.step)
            row.update(step=self.step, epoch=self.epoch + 1, lr_g=self.opt_g.param_groups[0]["lr"],
                       lr_c=self.opt_c.param_groups[0]["lr"],
                       images_per_s=len(real) * self.dist.world_size / (time.perf_counter() - start))
            if logger is not None:
                logger.log(row)
            board.log({k: v for k, v in row.items() if k not in ("step", "epoch")}, self.step)
            for k in ("critic_loss", "generator_loss", "wasserstein_distance", "gradient_penalty"):
                sums[k] = sums.get(k, 0.0) + row[k]
            count += 1
            bar.set_postfix(D=f"{row['critic_loss']:.3f}", G=f"{row['generator_loss']:.3f}",
                            W=f"{row['wasserstein_distance']:.3f}", GP=f"{row['gradient_penalty']:.3f}")
            if guard.received:
                self.save(numbered=False)
                raise TrainingInterrupted(
                    f"{guard.received} received at epoch {self.epoch + 1}, step {self.step}: saved "
                    f"{self.run_dir / 'checkpoint_latest.pt'} (the interrupted epoch restarts on resume). "
                    f"Resume with: python src_new/scripts/train.py --resume {self.run_dir / 'checkpoint_latest.pt'}")
        bar.close()
        self.epoch += 1
        means = {k: v / max(count, 1) for k, v in sums.items()}
        means = {k: self.dist.all_mean(v) for k, v in means.items()}
        self.history.append({"epoch": self.epoch, **means})
        self.health_check(means)
        last = self.epoch == t["epochs"]
        if self.epoch % t["eval_every"] == 0 or last:
            self.snapshot()
        if self.epoch % t["check_every"] == 0 or last:
            self.save(numbered=True)
        self.say(f"epoch {self.epoch}: " + ", ".join(f"{k}={v:.4f}" for k, v in means.items()))

    def save(self, numbered):
        if self.dist.is_main:
            write_checkpoint(self.run_dir, self.state_dict(), self.epoch, keep_numbered=numbered)
        self.dist.barrier()

    @torch.no_grad()
    def snapshot(self):
        """Grid of EMA samples from fixed noise/conditions; warns on lost diversity."""
        samples = self.model.sample(z=self.fixed_z, cond=self.fixed_cond)
        diversity = mean_pairwise_l1(samples)
        ratio = diversity / max(self.real_diversity, 1e-8)
        self.history[-1]["sample_diversity_ratio"] = ratio
        if self.dist.is_main:
            save_grid(samples.cpu(), self.run_dir / f"samples_epoch_{self.epoch:04d}.png",
                      self.cfg["data"]["component_dirs"])
        if ratio < COLLAPSE_RATIO and self.epoch > 1:
            self.warn("collapse", f"fixed-noise samples are {ratio:.2f}x as diverse as real data (mode "
                      f"collapse?): raise model.n_critic (5 -> 7-10) or lower training.lr_generator")

    def health_check(self, means):
        recent = self.history[-PATIENCE:]
        if len(recent) < PATIENCE:
            return
        if all(h["critic_loss"] < CRITIC_DOMINATES for h in recent):
            self.warn("critic", f"critic loss below {CRITIC_DOMINATES} for {PATIENCE} epochs (critic "
                      f"dominates, generator failing): lower model.n_critic or training.lr_critic, or "
                      f"raise training.lr_generator")
        if all(h["gradient_penalty"] > HIGH_PENALTY for h in recent):
            self.warn("gp", f"gradient penalty above {HIGH_PENALTY} for {PATIENCE} epochs: raise "
                      f"model.lambda_gp (10 -> 20) or lower training.lr_critic")

    def warn(self, key, message):
        if self.dist.is_main and self.warned.get(key) != self.epoch:
            self.warned[key] = self.epoch
            warnings.warn(f"[wgan_gp health, epoch {self.epoch}] {message}", stacklevel=2)

    def handle_divergence(self, err):
        latest = self.run_dir / "checkpoint_latest.pt"
        if self.tcfg["on_divergence"] != "rollback" or self.rollbacks >= MAX_ROLLBACKS or not latest.exists():
            where = f"the last good checkpoint is {latest}" if latest.exists() else "no checkpoint was written yet"
            raise TrainingDiverged(
                f"training diverged: {err}; {where}. Remedies: lower training.lr_critic/lr_generator "
                f"(/5), raise model.lambda_gp (10 -> 20), or set training.on_divergence=rollback") from None
        self.rollbacks += 1
        ckpt = load_checkpoint(latest, self.device)
        ckpt["rollbacks"] = self.rollbacks
        self.load_state(ckpt, latest)
        self.say(f"diverged ({err}); rolled back to epoch {self.epoch} with learning rates halved "
                 f"(lr_g={self.opt_g.param_groups[0]['lr']:.3g}, lr_c={self.opt_c.param_groups[0]['lr']:.3g}), "
                 f"rollback {self.rollbacks}/{MAX_ROLLBACKS}")
        if self.dist.is_main:
            with open(self.run_dir / "events.log", "a") as f:
                f.write(f"step {self.step}: rollback {self.rollbacks} after: {err}\n")

    def say(self, message):
        if self.verbose:
            tqdm.write(message)


def train(cfg, resume=None, resume_state=None, verbose=True):
    """Train from a resolved config; ``resume`` = checkpoint path to continue from."""
    if resume is not None and resume_state is None:
        resume_state = load_checkpoint(resume)
    trainer = WGANGPTrainer(cfg, resume_state, resume, verbose)
    try:
        return trainer.run()
    except (TrainingDiverged, TrainingInterrupted) as err:
        print(f"{type(err).__name__}: {err}", file=sys.stderr)
        raise SystemExit(3 if isinstance(err, TrainingDiverged) else 130) from None
    finally:
        trainer.dist.close()
