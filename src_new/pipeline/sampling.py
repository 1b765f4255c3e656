"""Sampling modes shared by every model with the common API
(``model.sample(batch_size=, cond=, guidance_scale=, z=, generator=)`` and
``model.inpaint(partial, mask, num_steps=, cond=, generator=, ...)``, both in [0, 1]).

Each mode writes a samples folder through ``save_component_images`` plus ``manifest.json``.
The manifest's ``options`` hold only the options that mode applied; ``not_applied`` names
config options the model or mode does not use (an explicit CLI flag the model cannot use is
an error). Conditional samples record ``condition_index`` (which requested condition each
sample was drawn for); ``--per_condition K`` draws K samples for each condition (for the
within-condition diversity of evaluate.py). Inpainting samples record ``ground_truth``, ``mask``,
``test_indices`` and, unless ``--no_cond``, the raw ``conditions`` they were completed for.
"""
from __future__ import annotations

import argparse
import inspect
import time
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from ..utils.io import mirror_side, prepare_output_dir, save_component_images, write_json
from ..utils.masks import component_indices, create_mask
from ..utils.precision import PRECISIONS, autocast, resolve_precision

MODES = ("unconditional", "conditional", "inpainting", "interpolate")


def add_sampling_args(parser: argparse.ArgumentParser):
    """The options of ``src_new/scripts/sample.py`` (unset ones fall back to the config's
    ``sampling`` section, then to the defaults in config.py)."""
    parser.add_argument("--checkpoint", required=True, help="checkpoint .pt written by training")
    parser.add_argument("--mode", choices=MODES, help="sampling mode (default: config sampling.mode)")
    parser.add_argument("--num_samples", type=int, help="number of samples (default: config)")
    parser.add_argument("--batch_sz", type=int, help="batch size (default: config)")
    parser.add_argument("--guidance_scale", type=float, help="classifier-free guidance scale s (0 = none)")
    parser.add_argument("--per_condition", type=int,
                        help="conditional: K samples per condition (num_samples / K conditions; K >= 2 lets "
                             "evaluate.py measure the within-condition diversity; default: config, 1)")
    parser.add_argument("--truncation_psi", type=float,
                        help="WGAN-GP: truncation trick in [0, 1] (1 = off; lower = more typical, less varied)")
    parser.add_argument("--unconditional", choices=("null", "marginal"),
                        help="WGAN-GP unconditional mode: null = G(z, null token) (jointly trained), marginal = "
                             "G(z, c) with c drawn from the stored training conditions (default: config)")
    parser.add_argument("--prior", choices=("normal", "flow"),
                        help="WGAN-GP latent prior: normal N(0, I) or flow (the fitted p(z | c)) (default: config, normal)")
    parser.add_argument("--cond", action="append", default=[], metavar="W,H",
                        help="raw condition values, e.g. --cond 24,48 (repeatable; cycled over samples)")
    parser.add_argument("--cond_csv", help="CSV with the condition columns (raw units), one row per sample")
    parser.add_argument("--components", nargs="+", help="inpainting: the components to preserve")
    parser.add_argument("--inpaint_steps", type=int, help="inpainting optimization/denoising steps")
    parser.add_argument("--inpaint_lr", type=float, help="inpainting latent learning rate (WGAN-GP)")
    parser.add_argument("--inpaint_loss", choices=("bce", "mse", "l1"), help="inpainting loss on known pixels")
    parser.add_argument("--restarts", type=int, help="inpainting restarts (best one kept)")
    parser.add_argument("--no_cond", action="store_true", help="inpainting: ignore the test conditions")
    parser.add_argument("--seed", type=int, default=0, help="random seed (default: 0)")
    parser.add_argument("--out", help="output folder (default: <samples_dir>/<mode>)")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing non-empty output folder")
    parser.add_argument("--device", default="auto", help="auto | cpu | cuda")
    parser.add_argument("--precision", choices=PRECISIONS,
                        help="the networks' passes: fp32, or bf16 autocast (AMX / AVX-512 BF16 CPUs, GPUs; "
                             "falls back to fp32 elsewhere) (default: config sampling.precision)")
    parser.add_argument("--postprocess", choices=("none", "clean"), default="none",
                        help="clean: threshold, drop small pieces, fill small holes (raw kept in the npz)")
    parser.add_argument("--min_size", type=int, default=4, help="clean: smallest piece kept (pixels)")
    parser.add_argument("--max_hole", type=int, default=4, help="clean: largest hole filled (pixels)")
    return parser


def cli_or_config(args, section, name):
    """``args.<name>`` when given on the command line (not None), else ``section[name]``."""
    value = getattr(args, name, None)
    return value if value is not None else section.get(name)


def sampling_options(args, cfg):
    """CLI value, else config ``sampling`` value."""
    s = cfg.get("sampling", {})
    pick = lambda name: cli_or_config(args, s, name)
    return {"mode": pick("mode"), "num_samples": pick("num_samples"), "batch_sz": pick("batch_sz"),
            "guidance_scale": pick("guidance_scale"), "components": pick("components"),
            "inpaint_steps": pick("inpaint_steps"), "inpaint_lr": pick("inpaint_lr"),
            "inpaint_loss": pick("inpaint_loss"), "restarts": pick("restarts"),
            "inpaint_prior_weight": s.get("inpaint_prior_weight", 0.0),
            "inpaint_lr_schedule": s.get("inpaint_lr_schedule"), "inpaint_noise": s.get("inpaint_noise"),
            "per_condition": pick("per_condition") or 1, "precision": pick("precision") or "fp32"}


# model.inpaint keyword <- (option name, CLI flag) for the options only some models use
INPAINT_MODEL_OPTIONS = {"lr": ("inpaint_lr", "--inpaint_lr"), "restarts": ("restarts", "--restarts"),
                         "loss": ("inpaint_loss", "--inpaint_loss"),
                         "prior_weight": ("inpaint_prior_weight", None),
                         "lr_schedule": ("inpaint_lr_schedule", None), "noise": ("inpaint_noise", None)}
MODE_OPTIONS = {"unconditional": ("num_samples", "batch_sz"),
                "conditional": ("num_samples", "batch_sz", "guidance_scale", "per_condition"),
                "inpainting": ("num_samples", "batch_sz", "components", "inpaint_steps"),
                "interpolate": ()}


def inpaint_options(model, opts, args):
    """The model-specific keyword arguments of ``model.inpaint`` that it accepts -> (kwargs,
    {option: value} not applied). A CLI flag the model does not use is a ValueError."""
    params = inspect.signature(model.inpaint).parameters
    accepted = {n for n, p in params.items() if p.kind is not inspect.Parameter.VAR_KEYWORD}
    kwargs, not_applied = {}, {}
    for keyword, (option, flag) in INPAINT_MODEL_OPTIONS.items():
        if keyword in accepted:
            kwargs[keyword] = opts[option]
            continue
        if flag and getattr(args, option, None) is not None:
            raise ValueError(f"{flag} does not apply to {type(model).__name__} inpainting (it accepts "
                             f"{sorted(accepted - {'partial', 'mask'})}); drop the flag")
        not_applied[option] = opts[option]
    return kwargs, not_applied


def parse_conditions(args, columns):
    """Raw (N, k) conditions from --cond strings or --cond_csv; None when neither is given."""
    rows = []
    for text in args.cond:
        parts = [p for p in text.replace(" ", "").split(",") if p]
        try:
            values = [float(p) for p in parts]
        except ValueError:
            raise ValueError(f"--cond {text!r}: values must be numbers, e.g. --cond 24,48") from None
        if len(values) != len(columns) or not all(np.isfinite(values)):
            raise ValueError(f"--cond {text!r}: expected {len(columns)} finite values ({', '.join(columns)})")
        rows.append(values)
    if args.cond_csv:
        import pandas as pd
        frame = pd.read_csv(args.cond_csv)
        missing = [c for c in columns if c not in frame.columns]
        if missing:
            raise ValueError(f"{args.cond_csv}: missing column(s) {missing}; available: {list(frame.columns)}")
        values = frame[columns].apply(pd.to_numeric, errors="coerce").to_numpy(dtype=float)
        if not np.isfinite(values).all():
            raise ValueError(f"{args.cond_csv}: non-numeric or missing condition values")
        rows.extend(values.tolist())
    return torch.tensor(rows, dtype=torch.float32) if rows else None


def _batches(n, size, desc):
    starts = range(0, n, size)
    for start in tqdm(starts, desc=desc, leave=False, disable=len(starts) < 2):
        yield start, min(start + size, n)


def _test_split(cfg, normalizer):
    from ..datasets.factory import make_dataset
    return make_dataset(cfg["data"], "test", cfg["model"]["image_size"], normalizer, verbose=False)


def run_sampling(model, cfg, args, ckpt_path, extra_modes=None, sample_kwargs=None, inpaint_kwargs=None):
    """Run one mode and write its folder; returns the folder path.

    model: eval-mode model with ``cond_normalizer`` (raw -> normalized conditions).
    extra_modes: {name: fn(model, cfg, opts, generator) -> (images, extra_arrays, info)}.
    sample_kwargs / inpaint_kwargs: model-specific options passed to ``sample`` / ``inpaint``
    (e.g. the DDPM's sampler and step count)."""
    sample_kwargs, inpaint_kwargs = sample_kwargs or {}, inpaint_kwargs or {}
    if (getattr(args, "prior", None) or "normal") != sample_kwargs.get("prior", "normal"):
        raise ValueError(f"--prior {args.prior}: model '{cfg['model']['type']}' has no such latent prior "
                         f"(the flow prior is the WGAN-GP's)")
    opts = sampling_options(args, cfg)
    mode, names = opts["mode"], cfg["data"]["component_dirs"]
    columns = list(cfg["data"].get("condition_columns") or [])
    if mode not in MODES:
        raise ValueError(f"unknown mode {mode!r}; use one of {MODES}")
    if mode in ("interpolate",) and mode not in (extra_modes or {}):
        raise ValueError(f"mode '{mode}' is not available for model '{cfg['model']['type']}'")
    if mode == "inpainting":
        component_indices(opts["components"] or [], names)          # clear error before any work
        if not opts["components"]:
            raise ValueError(f"inpainting needs --components (any of {names})")
    raw_cond = parse_conditions(args, columns)
    if raw_cond is not None and mode != "conditional":
        raise ValueError("--cond/--cond_csv apply to --mode conditional only")
    n, bs, per_condition = opts["num_samples"], opts["batch_sz"], int(opts["per_condition"])
    if per_condition < 1:
        raise ValueError(f"--per_condition {per_condition}: use a positive number of samples per condition")
    if per_condition > 1 and mode != "conditional":
        raise ValueError(f"--per_condition applies to --mode conditional only (got mode {mode})")
    if n % per_condition:
        raise ValueError(f"--num_samples {n} is not a multiple of --per_condition {per_condition}: "
                         f"use e.g. --num_samples {n - n % per_condition or per_condition}")
    out = prepare_output_dir(args.out or Path(cfg["paths"]["samples_dir"]) / mode, args.overwrite,
                             "samples folder")
    device = next(model.parameters()).device
    precision = resolve_precision(opts["precision"], device, "sampling.precision")
    gen = torch.Generator().manual_seed(args.seed)
    torch.manual_seed(args.seed)
    start = time.time()
    with autocast(precision, device):
        images, conditions, extra, info, applied, not_applied = _generate(
            model, cfg, args, opts, gen, device, raw_cond, extra_modes, sample_kwargs, inpaint_kwargs)
    elapsed = time.time() - start
    postprocess = None
    if args.postprocess == "clean":
        from ..evaluation.postprocess import clean
        extra["images_raw"] = images
        side = mirror_side(images, cfg["data"].get("mirror", "auto"))   # the data's mid-plane, as the grids find it
        images = torch.as_tensor(clean(images.numpy(), min_size=args.min_size, max_hole=args.max_hole, mirror=side))
        postprocess = {"method": "clean", "min_size": args.min_size, "max_hole": args.max_hole, "mirror": side}
    save_component_images(images, out, names, conditions=conditions, extra_arrays=extra,
                          condition_columns=columns or ("width_px", "height_px"),
                          mirror=cfg["data"].get("mirror", "auto"))
    options = {k: opts[k] for k in MODE_OPTIONS[mode]}
    options.update({INPAINT_MODEL_OPTIONS[k][0]: v for k, v in applied.items()})
    manifest = {
        "model": cfg["model"]["type"], "mode": mode, "checkpoint": str(ckpt_path), "seed": args.seed,
        "num_samples": int(len(images)), "options": options, "not_applied": not_applied,
        "per_condition": per_condition if mode == "conditional" else None,
        "postprocess": postprocess, "wall_time_s": round(elapsed, 3),
        "seconds_per_image": round(elapsed / max(len(images), 1), 5), "device": str(device), "precision": precision,
        "component_names": names, "condition_columns": columns, "config": cfg,
        "model_options": {**(sample_kwargs if mode in ("unconditional", "conditional") else {}),
                          **(inpaint_kwargs if mode == "inpainting" else {})}, **info,
    }
    write_json(manifest, out / "manifest.json")
    print(f"wrote {len(images)} {mode} samples to {out} ({elapsed:.1f}s, "
          f"{elapsed / max(len(images), 1) * 1000:.1f} ms/image)")
    return out



def _generate(model, cfg, args, opts, gen, device, raw_cond, extra_modes, sample_kwargs, inpaint_kwargs):
    """The images of ``opts["mode"]`` -> (images, raw conditions or None, extra arrays, info,
    applied / not applied model-specific inpainting options)."""
    mode, names = opts["mode"], cfg["data"]["component_dirs"]
    columns = list(cfg["data"].get("condition_columns") or [])
    n, bs, per_condition = opts["num_samples"], opts["batch_sz"], int(opts["per_condition"])
    extra, info = {}, {}
    conditions = None
    applied, not_applied = {}, {}          # model-specific inpainting options
    if mode == "unconditional":
        images = torch.cat([model.sample(batch_size=b - a, generator=gen, **sample_kwargs).cpu()
                            for a, b in _batches(n, bs, "sampling")])
    elif mode == "conditional":
        if not columns:
            raise ValueError("this model was trained without conditions; use --mode unconditional")
        n_cond = n // per_condition
        available = len(raw_cond) if raw_cond is not None else None
        if raw_cond is None:
            test = _test_split(cfg, model.cond_normalizer)
            available = len(test)
        if n_cond > available:
            source = "the test split has" if raw_cond is None else "--cond/--cond_csv give"
            if per_condition > 1:
                raise ValueError(f"--per_condition {per_condition} with --num_samples {n} needs {n_cond} "
                                 f"conditions but {source} {available}; use --num_samples <= "
                                 f"{available * per_condition}")
            print(f"note: {n} samples for {available} conditions: conditions repeat, so evaluate.py will refuse "
                  f"the folder for the distribution metrics (use --num_samples <= {available}, or --per_condition)")
        cond_idx = torch.arange(n_cond) % available
        condition_index = cond_idx.repeat_interleave(per_condition) if per_condition > 1 \
            else torch.arange(n) % available
        if raw_cond is None:
            raw_cond = test.raw_conditions[condition_index]
            extra["test_indices"] = condition_index.numpy()
        else:
            raw_cond = raw_cond[condition_index]
        extra["condition_index"] = condition_index.numpy()
        conditions = raw_cond
        cond = model.cond_normalizer.normalize(raw_cond)
        images = torch.cat([model.sample(cond=cond[a:b].to(device), guidance_scale=opts["guidance_scale"],
                                         generator=gen, **sample_kwargs).cpu() for a, b in _batches(n, bs, "sampling")])
    elif mode == "inpainting":
        test = _test_split(cfg, model.cond_normalizer)
        idx = torch.arange(min(n, len(test)))
        truth = test.images_float[idx]
        mask = create_mask(opts["components"], names, len(idx), cfg["model"]["image_size"])
        use_cond = bool(columns) and not args.no_cond
        model_inpaint, not_applied = inpaint_options(model, opts, args)
        applied.update(model_inpaint)
        parts = []
        for a, b in _batches(len(idx), bs, "inpainting"):
            cond = test.conditions[idx[a:b]].to(device) if use_cond else None
            parts.append(model.inpaint(truth[a:b].to(device) * mask[a:b].to(device), mask[a:b].to(device),
                                       num_steps=opts["inpaint_steps"], cond=cond, generator=gen,
                                       **model_inpaint, **inpaint_kwargs).cpu())
        images = torch.cat(parts)
        extra.update(ground_truth=truth, mask=mask, test_indices=idx.numpy())
        conditions = test.raw_conditions[idx] if use_cond else None    # evaluate.py: condition error
        info["used_conditions"] = use_cond
    else:
        images, more, info = extra_modes[mode](model, cfg, opts, gen)
        extra.update(more)
    return images, conditions, extra, info, applied, not_applied
