"""WGAN-GP sampling: load a checkpoint, then unconditional / conditional / inpainting /
interpolate (latent interpolation between two seeds and a sweep of each latent dimension).

    python src_new/scripts/sample.py --checkpoint outputs/wgan_gp/<run>/checkpoint_latest.pt \
        --mode inpainting --components fpu group_nc
"""
from __future__ import annotations

import torch

from ...datasets.multicomponent import ConditionNormalizer
from ...utils.checkpoint import (check_finite_weights, check_model_type, load_checkpoint, load_state_strict,
                                 validate_checkpoint)
from ...pipeline.config import auto_complete_config, validate_config
from ...utils.io import save_grid
from ...utils.runtime import resolve_device
from ...pipeline.sampling import cli_or_config, run_sampling
from . import build_wgan_gp
from .flow import load_flow_state


# 2: generator restructured (blocks, optional mapping network / style modulation), critic with a
# learned null condition and a projection head, training conditions stored (issue 14).
CHECKPOINT_VERSION = 2


def check_checkpoint_version(ckpt, path):
    """A clear error for a checkpoint of an older network design than this code builds."""
    found = ckpt.get("wgan_gp_version", 1)
    if found != CHECKPOINT_VERSION:
        raise ValueError(
            f"{path}: WGAN-GP checkpoint format {found}, this code reads format {CHECKPOINT_VERSION}. "
            f"Format 2 changed the networks (the generator's layers are regrouped, with an optional mapping "
            f"network whose style modulates every norm; the critic has a learned null condition and a "
            f"projection head): older weights do not fit. "
            f"Retrain, or sample it with the commit that trained it (git log src_new/models/wgan_gp).")


# What a WGAN-GP checkpoint holds beyond every model's entries (utils.checkpoint.MODEL_ENTRIES);
# flow_state_dict and the optimizers are optional (runs from before the flow prior), as is
# code_critic_state_dict (only runs with model.lambda_code > 0 have one; sampling never reads it).
CHECKPOINT_ENTRIES = ("encoder_state_dict", "generator_state_dict", "ema_generator_state_dict",
                      "critic_state_dict", "train_conditions")
NETWORK_ENTRIES = ("encoder_state_dict", "generator_state_dict", "ema_generator_state_dict",
                   "critic_state_dict", "flow_state_dict", "code_critic_state_dict")


def check_checkpoint(ckpt, path):
    """``validate_checkpoint`` for the WGAN-GP; an older format is named as such (before the
    entries it lacks). Returns ``ckpt``; raises ValueError."""
    validate_checkpoint(ckpt, path)                 # types first: the checks below read them
    if "config" in ckpt:                            # without it: named among the missing entries
        check_model_type(ckpt, "wgan_gp", path)
        check_checkpoint_version(ckpt, path)
    return validate_checkpoint(ckpt, path, "wgan_gp", CHECKPOINT_ENTRIES)


def load_model_from_checkpoint(path, device="cpu", ckpt=None):
    """Rebuild the WGANGP from the checkpoint's own config; returns (model in eval mode, cfg).
    The checkpoint is validated, and refused when a network holds NaN/inf weights."""
    ckpt = check_checkpoint(ckpt if ckpt is not None else load_checkpoint(path), path)
    check_finite_weights(ckpt, NETWORK_ENTRIES, path)
    cfg = validate_config(auto_complete_config(ckpt["config"], verbose=False))
    model = build_wgan_gp(cfg)
    for key, module in (("encoder_state_dict", model.encoder), ("generator_state_dict", model.generator),
                        ("ema_generator_state_dict", model.ema_generator), ("critic_state_dict", model.critic)):
        load_state_strict(module, ckpt[key], key.replace("_state_dict", ""), path)
    load_flow_state(model, ckpt, path, say=lambda message: None)   # unfitted: sample/log_likelihood say so
    model.cond_normalizer = ConditionNormalizer.from_state_dict(ckpt["cond_normalizer"])
    model.train_conditions = ckpt["train_conditions"]
    return model.to(resolve_device(device) if isinstance(device, str) else device).eval(), cfg


def interpolate(model, cfg, opts, generator, steps=8, sweep_values=(-2.5, -1.5, -0.5, 0.5, 1.5, 2.5)):
    """Images of a linear path between two random latents (``steps`` samples), plus a grid
    ``latent_sweep.png`` varying each latent dimension alone around the first latent: with
    4 latents per component, rows show what each dimension controls."""
    device = next(model.parameters()).device
    z_a, z_b = torch.randn(2, model.latent_dim, generator=generator)
    t = torch.linspace(0, 1, steps)[:, None]
    path = model.sample(z=((1 - t) * z_a + t * z_b).to(device)).cpu()
    values = torch.tensor(sweep_values)
    z_sweep = z_a.repeat(model.latent_dim, len(values), 1)             # (latent, values, latent)
    z_sweep[torch.arange(model.latent_dim), :, torch.arange(model.latent_dim)] = values
    sweep = model.sample(z=z_sweep.view(-1, model.latent_dim).to(device)).cpu()
    return path, {"latent_sweep": sweep.view(model.latent_dim, len(values), *sweep.shape[1:]),
                  "sweep_values": values}, {"steps": steps}


def main(args, ckpt=None):
    model, cfg = load_model_from_checkpoint(args.checkpoint, args.device, ckpt)
    s = cfg["sampling"]
    sample_kwargs = {"truncation_psi": cli_or_config(args, s, "truncation_psi"),
                     "unconditional": cli_or_config(args, s, "unconditional"),
                     "prior": cli_or_config(args, s, "prior"),
                     "guidance_space": cli_or_config(args, s, "guidance_space")}
    out = run_sampling(model, cfg, args, args.checkpoint, extra_modes={"interpolate": interpolate},
                       sample_kwargs=sample_kwargs)
    if (out / "manifest.json").exists() and (args.mode or cfg["sampling"]["mode"]) == "interpolate":
        import numpy as np
        with np.load(out / "samples.npz") as data:
            sweep = data["latent_sweep"]
        save_grid(sweep.reshape(-1, *sweep.shape[2:]), out / "latent_sweep.png",
                  cfg["data"]["component_dirs"], ncol=sweep.shape[1], mirror=cfg["data"]["mirror"])
    return out
