"""DDPM sampling: unconditional / conditional (DDIM or ancestral, classifier-free guidance)
/ inpainting (known regions replaced along the reverse process), through the shared modes.

    python src_new/scripts/sample.py --checkpoint outputs/ddpm/<run>/checkpoint_latest.pt --mode conditional
"""
from __future__ import annotations

import copy

from ...datasets.multicomponent import ConditionNormalizer
from ...utils.checkpoint import check_finite_weights, load_checkpoint, load_state_strict, validate_checkpoint
from ...pipeline.config import auto_complete_config, validate_config
from ...utils.runtime import resolve_device
from ...pipeline.sampling import run_sampling
from . import build_ddpm


# What a DDPM checkpoint holds beyond every model's entries (utils.checkpoint.MODEL_ENTRIES).
CHECKPOINT_ENTRIES = ("unet_state_dict", "ema_unet_state_dict")


def load_model_from_checkpoint(path, device="cpu", ckpt=None):
    """Rebuild the diffusion model from the checkpoint's config; returns (model in eval mode, cfg).
    The checkpoint is validated, and refused when a network holds NaN/inf weights."""
    ckpt = ckpt if ckpt is not None else load_checkpoint(path)
    validate_checkpoint(ckpt, path, "ddpm", CHECKPOINT_ENTRIES)
    check_finite_weights(ckpt, CHECKPOINT_ENTRIES, path)
    cfg = validate_config(auto_complete_config(ckpt["config"], verbose=False))
    model = build_ddpm(cfg)
    model.ema_unet = copy.deepcopy(model.unet)
    load_state_strict(model.unet, ckpt["unet_state_dict"], "unet", path)
    load_state_strict(model.ema_unet, ckpt["ema_unet_state_dict"], "ema_unet", path)
    model.cond_normalizer = ConditionNormalizer.from_state_dict(ckpt["cond_normalizer"])
    return model.to(resolve_device(device) if isinstance(device, str) else device).eval(), cfg


def main(args, ckpt=None):
    for flag in ("truncation_psi", "unconditional"):
        if getattr(args, flag, None) is not None:
            raise ValueError(f"--{flag} applies to WGAN-GP checkpoints only; drop it for the DDPM")
    model, cfg = load_model_from_checkpoint(args.checkpoint, args.device, ckpt)
    s = cfg["sampling"]
    # only what the chosen sampler uses (the manifest records these): the ancestral sampler
    # runs every timestep with its own noise, so ddim_steps / ddim_eta do not apply to it
    sample_kwargs = {"sampler": s["sampler"]}
    if s["sampler"] == "ddim":
        sample_kwargs.update(steps=s["ddim_steps"], eta=s["ddim_eta"])
    return run_sampling(model, cfg, args, args.checkpoint, sample_kwargs=sample_kwargs,
                        inpaint_kwargs={"resample": s["repaint_resample"]})
