"""Sampling modes shared by every model with the common API
(``model.sample(batch_size=, cond=, guidance_scale=, z=, generator=)`` and
``model.inpaint(partial, mask, num_steps=, cond=, generator=, ...)``, both in [0, 1]).

Each mode writes a samples folder through ``save_component_images`` plus ``manifest.json``.
The manifest's ``options`` hold only the options that mode applied; ``not_applied`` names
config options the model or mode does not use (an explicit CLI flag the model cannot use is
an error). Conditional samples record ``condition_index`` (which requested condition each
sample was drawn for); ``--per_condition K`` draws K samples for each condition (for the
within-condition diversity of evaluate.py). Inpainting samples record ``ground_truth``, ``mask``,
``test_indices`` and, unless ``--no_cond``, the raw ``conditions`` they were completed for; their
folder also gets ``triplets.png`` (given | completed | truth per sample).
"""
from __future__ import annotations

import argparse
import dataclasses
import inspect
import time
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from ..evaluation.postprocess import clean
from ..utils.resources import check_sampling_memory
from .config import CHOICES, check_value, schema_for
from ..utils.io import mirror_side, prepare_output_dir, save_component_images, write_json
from ..utils.masks import component_indices, create_mask
from ..utils.precision import autocast, resolve_precision
from ..utils.triplets import save_triplet_grid

MODES = CHOICES["sampling_mode"]
MAX_CONDITION_SD = 20.0       # requested conditions further from the training ones are refused


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
    parser.add_argument("--unconditional", choices=CHOICES["unconditional"],
                        help="WGAN-GP unconditional mode: null = G(z, null token) (jointly trained), marginal = "
                             "G(z, c) with c drawn from the stored training conditions (default: config)")
    parser.add_argument("--prior", choices=CHOICES["prior"],
                        help="WGAN-GP latent prior: normal N(0, I) or flow (the fitted p(z | c)) (default: config, normal)")
    parser.add_argument("--guidance_space", choices=CHOICES["guidance_space"],
                        help="WGAN-GP: where guidance extrapolates: pixels (outputs), logits or style "
                             "(default: config)")
    parser.add_argument("--cond", action="append", default=[], metavar="W,H",
                        help="raw condition values, e.g. --cond 24,48 (repeatable; cycled over samples)")
    parser.add_argument("--cond_csv", help="CSV with the condition columns (raw units), one row per sample")
    parser.add_argument("--components", nargs="+", help="inpainting: the components to preserve")
    parser.add_argument("--inpaint_steps", type=int, help="inpainting optimization/denoising steps")
    parser.add_argument("--inpaint_lr", type=float, help="inpainting latent learning rate (WGAN-GP)")
    parser.add_argument("--inpaint_loss", choices=CHOICES["inpaint_loss"], help="inpainting loss on known pixels")
    parser.add_argument("--restarts", type=int, help="inpainting restarts (best one kept)")
    parser.add_argument("--no_cond", action="store_true", help="inpainting: ignore the test conditions")
    parser.add_argument("--seed", type=int, default=0, help="random seed (default: 0)")
    parser.add_argument("--out", help="output folder (default: <samples_dir>/<mode>)")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing non-empty output folder")
    parser.add_argument("--device", default="auto", help="auto | cpu | cuda")
    parser.add_argument("--precision", choices=CHOICES["precision"],
                        help="the networks' passes: fp32, or bf16 autocast (CPUs with AMX, GPUs; "
                             "falls back to fp32 elsewhere) (default: config sampling.precision)")
    parser.add_argument("--postprocess", choices=CHOICES["postprocess"], default="none",
                        help="clean: threshold, drop small pieces, fill small holes (raw kept in the npz)")
    parser.add_argument("--min_size", type=int, default=4, help="clean: smallest piece kept (pixels)")
    parser.add_argument("--max_hole", type=int, default=4, help="clean: largest hole filled (pixels)")
    return parser


def cli_or_config(args, section, name):
    """``args.<name>`` when given on the command line (not None), else ``section[name]``."""
    value = getattr(args, name, None)
    return value if value is not None else section.get(name)


def sampling_options(args, cfg):
    """Each sampling option: the CLI's value when given, else the config's ``sampling`` value
    (None for an option this model's schema does not have)."""
    s, model_type = cfg["sampling"], cfg["model"]["type"]
    names = ("mode", "num_samples", "batch_sz", "guidance_scale", "components", "inpaint_steps", "inpaint_lr",
             "inpaint_loss", "restarts", "per_condition", "precision")
    known = schema_for(model_type)["sampling"]
    for name in names + ("truncation_psi",):      # a flag's value meets the schema's type and range
        if getattr(args, name, None) is not None and name in known:
            check_value(model_type, "sampling", name, getattr(args, name), f"--{name}")
    opts = {name: cli_or_config(args, s, name) for name in names}
    opts.update({name: s.get(name) for name in ("inpaint_prior_weight", "inpaint_lr_schedule", "inpaint_noise")})
    return opts


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
    {option: value} configured but not applied). A CLI flag the model does not use is a ValueError."""
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
        if opts[option] is not None:
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


@dataclasses.dataclass
class Job:
    """One sampling request, checked: what every mode function reads."""
    model: object                  # eval-mode model with ``cond_normalizer`` (raw -> normalized conditions)
    cfg: dict
    args: argparse.Namespace
    opts: dict                     # sampling_options(args, cfg)
    generator: torch.Generator
    device: torch.device
    raw_cond: torch.Tensor | None  # (N, k) raw conditions from --cond / --cond_csv
    sample_kwargs: dict            # model-specific options of ``sample`` (e.g. the DDPM's sampler)
    inpaint_kwargs: dict           # model-specific options of ``inpaint``

    @property
    def names(self):
        return self.cfg["data"]["component_dirs"]

    @property
    def columns(self):
        return list(self.cfg["data"].get("condition_columns") or [])


@dataclasses.dataclass
class Generated:
    """What a mode produced: images (N, C, H, W) in [0, 1], the raw conditions they were drawn
    for (N, k) or None, arrays for samples.npz, manifest entries, and the model-specific options
    applied / configured but not applied."""
    images: torch.Tensor
    conditions: torch.Tensor | None = None
    extra: dict = dataclasses.field(default_factory=dict)
    info: dict = dataclasses.field(default_factory=dict)
    applied: dict = dataclasses.field(default_factory=dict)
    not_applied: dict = dataclasses.field(default_factory=dict)


def sample_unconditional(job):
    n, bs = job.opts["num_samples"], job.opts["batch_sz"]
    return Generated(torch.cat([job.model.sample(batch_size=b - a, generator=job.generator, **job.sample_kwargs).cpu()
                                for a, b in _batches(n, bs, "sampling")]))


def sample_conditional(job):
    """Conditions from --cond / --cond_csv or the test split, each repeated ``per_condition`` times."""
    if not job.columns:
        raise ValueError("this model was trained without conditions; use --mode unconditional")
    n, bs, per_condition = job.opts["num_samples"], job.opts["batch_sz"], job.opts["per_condition"]
    n_cond, raw_cond, extra = n // per_condition, job.raw_cond, {}
    test = _test_split(job.cfg, job.model.cond_normalizer) if raw_cond is None else None
    available = len(raw_cond) if raw_cond is not None else len(test)
    if n_cond > available:
        source = "the test split has" if raw_cond is None else "--cond/--cond_csv give"
        if per_condition > 1:
            raise ValueError(f"--per_condition {per_condition} with --num_samples {n} needs {n_cond} "
                             f"conditions but {source} {available}; use --num_samples <= "
                             f"{available * per_condition}")
        print(f"note: {n} samples for {available} conditions: conditions repeat, so evaluate.py will refuse "
              f"the folder for the distribution metrics (use --num_samples <= {available}, or --per_condition)")
    condition_index = (torch.arange(n_cond) % available).repeat_interleave(per_condition) if per_condition > 1 \
        else torch.arange(n) % available
    if raw_cond is None:
        raw_cond = test.raw_conditions[condition_index]
        extra["test_indices"] = condition_index.numpy()
    else:
        raw_cond = raw_cond[condition_index]
    extra["condition_index"] = condition_index.numpy()
    cond = job.model.cond_normalizer.normalize(raw_cond)
    far = cond.abs().amax(1) > MAX_CONDITION_SD
    if far.any():
        raise ValueError(f"condition {raw_cond[far][0].tolist()} ({', '.join(job.columns)}) lies more than "
                         f"{MAX_CONDITION_SD:g} standard deviations from the training conditions (mean "
                         f"{_rounded(job.model.cond_normalizer.mean)}, sd {_rounded(job.model.cond_normalizer.std)}): "
                         f"the model has never seen anything near it; ask for a size within the data's range")
    images = torch.cat([job.model.sample(cond=cond[a:b].to(job.device), guidance_scale=job.opts["guidance_scale"],
                                         generator=job.generator, **job.sample_kwargs).cpu()
                        for a, b in _batches(n, bs, "sampling")])
    return Generated(images, raw_cond, extra)


def _rounded(values):
    return [round(float(v), 2) for v in values]


def sample_inpainting(job):
    """The first ``num_samples`` test designs with ``components`` kept, the rest completed."""
    test = _test_split(job.cfg, job.model.cond_normalizer)
    idx = torch.arange(min(job.opts["num_samples"], len(test)))
    truth = test.images_float[idx]
    mask = create_mask(job.opts["components"], job.names, len(idx), job.cfg["model"]["image_size"])
    use_cond = bool(job.columns) and not job.args.no_cond
    model_inpaint, not_applied = inpaint_options(job.model, job.opts, job.args)
    parts, device = [], job.device
    for a, b in _batches(len(idx), job.opts["batch_sz"], "inpainting"):
        cond = test.conditions[idx[a:b]].to(device) if use_cond else None
        parts.append(job.model.inpaint(truth[a:b].to(device) * mask[a:b].to(device), mask[a:b].to(device),
                                       num_steps=job.opts["inpaint_steps"], cond=cond, generator=job.generator,
                                       **model_inpaint, **job.inpaint_kwargs).cpu())
    return Generated(torch.cat(parts), test.raw_conditions[idx] if use_cond else None,   # evaluate.py: condition error
                     dict(ground_truth=truth, mask=mask, test_indices=idx.numpy()), {"used_conditions": use_cond},
                     model_inpaint, not_applied)


MODE_RUNNERS = {"unconditional": sample_unconditional, "conditional": sample_conditional,
                "inpainting": sample_inpainting}


def check_model_flags(cfg, args, sample_kwargs):
    """A sampling flag the model's ``sample`` does not take is an error, not silently ignored."""
    for flag in ("prior", "guidance_space", "truncation_psi", "unconditional"):
        if getattr(args, flag, None) is not None and flag not in sample_kwargs:
            raise ValueError(f"--{flag} {getattr(args, flag)}: model '{cfg['model']['type']}' has no such option "
                             f"(it is the WGAN-GP's); drop the flag")


def check_request(cfg, args, opts, raw_cond, extra_modes):
    """Clear errors before any work: the mode, its options, the conditions given."""
    mode, names = opts["mode"], cfg["data"]["component_dirs"]     # values already meet the schema
    if mode not in MODE_RUNNERS and mode not in (extra_modes or {}):
        raise ValueError(f"mode '{mode}' is not available for model '{cfg['model']['type']}'")
    if mode == "inpainting":
        component_indices(opts["components"] or [], names)
        if not opts["components"]:
            raise ValueError(f"inpainting needs --components (any of {names})")
    if raw_cond is not None and mode != "conditional":
        raise ValueError("--cond/--cond_csv apply to --mode conditional only")
    n, per_condition = opts["num_samples"], opts["per_condition"]
    if per_condition > 1 and mode != "conditional":
        raise ValueError(f"--per_condition applies to --mode conditional only (got mode {mode})")
    if n % per_condition:
        raise ValueError(f"--num_samples {n} is not a multiple of --per_condition {per_condition}: "
                         f"use e.g. --num_samples {n - n % per_condition or per_condition}")
    check_sampling_memory(n, len(names), *cfg["model"]["image_size"])


def postprocess(result, cfg, args):
    """``--postprocess clean``: threshold, drop small pieces, fill small holes (the raw images
    kept in the npz as ``images_raw``) -> the manifest's record of it, or None."""
    if args.postprocess != "clean":
        return None
    side = mirror_side(result.images, cfg["data"].get("mirror", "auto"))   # the data's mid-plane, as the grids find it
    result.extra["images_raw"] = result.images
    result.images = torch.as_tensor(clean(result.images.numpy(), min_size=args.min_size, max_hole=args.max_hole,
                                          mirror=side))
    return {"method": "clean", "min_size": args.min_size, "max_hole": args.max_hole, "mirror": side}


def run_sampling(model, cfg, args, ckpt_path, extra_modes=None, sample_kwargs=None, inpaint_kwargs=None):
    """Run one mode and write its folder (images, grids, samples.npz, manifest.json); returns the path.

    extra_modes: {name: fn(model, cfg, opts, generator) -> (images, extra_arrays, info)} for a
    model's own modes; sample_kwargs / inpaint_kwargs: model-specific options passed to
    ``sample`` / ``inpaint`` (e.g. the DDPM's sampler and step count)."""
    sample_kwargs, inpaint_kwargs = sample_kwargs or {}, inpaint_kwargs or {}
    check_model_flags(cfg, args, sample_kwargs)
    opts = sampling_options(args, cfg)
    raw_cond = parse_conditions(args, list(cfg["data"].get("condition_columns") or []))
    check_request(cfg, args, opts, raw_cond, extra_modes)
    mode = opts["mode"]
    out = prepare_output_dir(args.out or Path(cfg["paths"]["samples_dir"]) / mode, args.overwrite,
                             "samples folder")
    device = next(model.parameters()).device
    precision = resolve_precision(opts["precision"], device, "sampling.precision")
    gen = torch.Generator().manual_seed(args.seed)
    torch.manual_seed(args.seed)
    job = Job(model, cfg, args, opts, gen, device, raw_cond, sample_kwargs, inpaint_kwargs)
    start = time.time()
    with autocast(precision, device):
        if mode in MODE_RUNNERS:
            result = MODE_RUNNERS[mode](job)
        else:
            images, extra, info = extra_modes[mode](model, cfg, opts, gen)
            result = Generated(images, extra=dict(extra), info=info)
    elapsed = time.time() - start
    cleaned = postprocess(result, cfg, args)
    save_component_images(result.images, out, job.names, conditions=result.conditions, extra_arrays=result.extra,
                          condition_columns=job.columns or ("width_px", "height_px"),
                          mirror=cfg["data"].get("mirror", "auto"))
    if mode == "inpainting":
        save_triplet_grid(result.images, result.extra["ground_truth"], result.extra["mask"], out / "triplets.png",
                          job.names, mirror=cfg["data"].get("mirror", "auto"))
    options = {k: opts[k] for k in MODE_OPTIONS[mode]}
    options.update({INPAINT_MODEL_OPTIONS[k][0]: v for k, v in result.applied.items()})
    n = len(result.images)
    manifest = {
        "model": cfg["model"]["type"], "mode": mode, "checkpoint": str(ckpt_path), "seed": args.seed,
        "num_samples": int(n), "options": options, "not_applied": result.not_applied,
        "per_condition": opts["per_condition"] if mode == "conditional" else None,
        "postprocess": cleaned, "wall_time_s": round(elapsed, 3),
        "seconds_per_image": round(elapsed / max(n, 1), 5), "device": str(device), "precision": precision,
        "component_names": job.names, "condition_columns": job.columns, "config": cfg,
        "model_options": {**(sample_kwargs if mode in ("unconditional", "conditional") else {}),
                          **(inpaint_kwargs if mode == "inpainting" else {})}, **result.info,
    }
    write_json(manifest, out / "manifest.json")
    print(f"wrote {n} {mode} samples to {out} ({elapsed:.1f}s, {elapsed / max(n, 1) * 1000:.1f} ms/image)")
    return out
