"""DDPM training on the shared loop (``src_new.pipeline.training.Trainer``): one noise-prediction
step per batch, gradient clipping, EMA of the UNet.

    python src_new/scripts/train.py --model ddpm --config configs/ddpm_toy.yaml
"""
from __future__ import annotations

import copy

import torch

from ...utils.checkpoint import load_state_strict
from ...utils.ema import EMA
from ...utils.io import save_grid
from ...pipeline.training import Trainer, clip_gradients, run_training
from . import build_ddpm
from .sample import CHECKPOINT_ENTRIES


class DDPMTrainer(Trainer):
    model_type = "ddpm"
    build_network = staticmethod(build_ddpm)
    log_fields = ["step", "epoch", "loss", "grad_norm", "grad_clipped", "lr", "images_per_s"]
    finite_keys = ("loss",)
    grad_norm_keys = ("grad_norm",)
    divergence_advice = "Remedies: lower training.lr (/5) or training.grad_clip, or set training.on_divergence=rollback"
    checkpoint_entries = CHECKPOINT_ENTRIES      # checked on resume, as for sampling

    def build(self, cfg):
        t = self.tcfg
        self.model = self.build_network(cfg).to(self.device)
        self.model.ema_unet = copy.deepcopy(self.model.unet)
        self.ema = EMA(self.model.unet, t["ema_decay"], t["ema_update_every"], ema_model=self.model.ema_unet)
        self.opt = torch.optim.Adam(self.model.unet.parameters(), t["lr"], betas=(float(t["beta1"]), float(t["beta2"])),
                                    foreach=True)
        self.optimizers = {"optimizer_state_dict": (self.opt, "lr")}
        self.halve_on_rollback = {"lr"}
        gen = torch.Generator().manual_seed(12345)
        test_cond = self.data["test"].conditions
        self.fixed_noise = torch.randn(32, self.model.channels, *self.model.image_size, generator=gen)
        self.fixed_cond = test_cond[torch.arange(32) % len(test_cond)] if self.model.cond_dim > 0 else None

    def model_state(self):
        return {"unet_state_dict": self.model.unet.state_dict(), "ema_unet_state_dict": self.model.ema_unet.state_dict(),
                "ema_state": {"step": self.ema.step, "num_updates": self.ema.num_updates}}

    def load_model_state(self, ckpt, path):
        load_state_strict(self.model.unet, ckpt["unet_state_dict"], "unet", path)
        load_state_strict(self.model.ema_unet, ckpt["ema_unet_state_dict"], "ema_unet", path)
        self.ema.step, self.ema.num_updates = ckpt["ema_state"]["step"], ckpt["ema_state"]["num_updates"]

    def train_step(self, real, cond):
        self.opt.zero_grad(set_to_none=True)
        with self.autocast:
            loss = self.model(real, cond=cond)["loss"]
        loss.backward()
        self.dist.average_gradients(self.model.unet.parameters())
        # The norm before clipping: that is what the divergence check reads.
        norm, clipped = clip_gradients(self.model.unet.parameters(), self.tcfg["grad_clip"])
        self.opt.step()
        self.ema.update()
        return {"loss": loss.item(), "grad_norm": norm, "grad_clipped": float(clipped)}

    @torch.no_grad()
    def snapshot(self):
        """Grid of EMA samples (deterministic DDIM, 20 steps) from fixed noise and test conditions:
        comparable across epochs, and no draws from the training RNG."""
        cond = None if self.fixed_cond is None else self.fixed_cond.to(self.device)
        samples = self.model.sample(batch_size=len(self.fixed_noise), cond=cond, z=self.fixed_noise.to(self.device),
                                    sampler="ddim", steps=20, eta=0.0)
        if self.dist.is_main:
            grid = save_grid(samples.cpu(), self.run_dir / f"samples_epoch_{self.epoch:04d}.png",
                             self.cfg["data"]["component_dirs"], mirror=self.grid_mirror)
            self.board.image("samples", grid, self.step)


def train(cfg, resume=None, resume_state=None, verbose=True):
    """Train from a resolved config; ``resume`` = checkpoint path to continue from."""
    return run_training(DDPMTrainer, cfg, resume, resume_state, verbose)
