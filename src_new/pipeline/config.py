"""Configuration: YAML -> load_config -> auto_complete_config -> validate_config -> dict.

All defaults live here, in ``SCHEMA`` (keys every model shares) and ``MODEL_SCHEMA``
(keys of one model type). A key whose default is ``REQUIRED`` must be given in the YAML.
Anything not listed is an unknown key and is rejected with a did-you-mean suggestion.
"""
from __future__ import annotations

import argparse
import copy
import difflib
import re
from pathlib import Path

import yaml

from ..datasets.factory import DATA_TYPES
from ..utils.io import PICTURE_CHANNELS
from ..utils.precision import PRECISIONS

REPO_ROOT = Path(__file__).resolve().parents[2]
CONFIG_DIR = REPO_ROOT / "configs"


class _Required:
    def __repr__(self):
        return "REQUIRED"

    def __deepcopy__(self, memo):  # a singleton: `default is REQUIRED` must survive copies
        return self


REQUIRED = _Required()

# Keys shared by every model type: {section: {key: default}}.
SCHEMA = {
    "model": {
        "type": REQUIRED,
        "channels": None,            # auto: len(data.component_dirs)
        "image_size": [64, 32],      # [H, W], each divisible by 8
        "cond_dim": None,            # auto: len(data.condition_columns)
        "dim": 64,                   # base channel width
        "dim_mults": [1, 2, 4],      # channel multipliers per resolution
        "cond_drop_prob": 0.1,       # condition dropout for classifier-free guidance
    },
    "data": {
        "type": "multicomponent",    # multicomponent (one PNG per component) | image_folder (pictures)
        "root_dir": "data/",
        "condition_csv": "data/dimensions.csv",
        "component_dirs": ["group_nc", "group_km", "bt", "fpu", "tpc"],
        "condition_columns": ["width_px", "height_px"],
        "prefix_column": "matching",
        "filename_pattern": "mdbk_{prefix}_{component}.png",
        "split_column": "train",     # True/1/"true" = train row, else test row
        "normalized": False,         # False: standardize conditions with train statistics
        "mirror": "auto",            # grids: side of the symmetry axis, auto | left | right | none
        "test_fraction": 0.1,        # image_folder without conditions: share of images in the test split
    },
    "training": {
        "epochs": 1000,
        "batch_size": 64,
        "num_workers": 0,
        "seed": 0,
        "device": "auto",            # auto | cpu | cuda
        "ema_decay": 0.9999,
        "ema_update_every": 10,
        "eval_every": 100,           # epochs between sample grids
        "check_every": 100,          # epochs between checkpoints
        "run_name": None,            # default: <config name>
        "overwrite": False,          # allow reusing an existing run folder
        "max_grad_norm": 1.0e4,      # a larger gradient norm counts as divergence
        "on_divergence": "stop",     # stop | rollback (reload last checkpoint, halve lrs)
    },
    "paths": {
        "output_dir": None,          # auto: outputs/<model.type>/ (runs go in <output_dir>/<run_name>/)
        "samples_dir": None,         # auto: samples/<model.type>/
    },
    "sampling": {
        "num_samples": 16,
        "batch_sz": 8,
        "guidance_scale": 2.0,
        "mode": "conditional",
        "components": ["fpu", "group_nc", "group_km"],
        "per_condition": 1,          # conditional: K draws per condition (K >= 2: within-condition diversity)
    },
    "evaluation": {
        "inception_weights": None,   # path to pt_inception-2015-12-05 weights (optional)
        "num_samples": 4000,
    },
    "logging": {
        "tensorboard": False,        # true: also write <run>/tensorboard/ (every losses.csv column, grids)
    },
}

# Keys of one model type, merged into SCHEMA when model.type names it.
MODEL_SCHEMA = {
    "wgan_gp": {
        "model": {
            "latent_dim_per_component": REQUIRED,
            "total_latent_dim": None,    # auto: channels * latent_dim_per_component
            "lambda_gp": REQUIRED,
            "n_critic": REQUIRED,
            "res_blocks": [1, 2, 2],     # generator ResBlocks per upsampling stage (low -> high res)
            "bottleneck_res_blocks": 1,  # generator ResBlocks at H/8 x W/8 before upsampling
            "upsample": "transpose",     # transpose | nearest_conv
            "critic_dim": 64,
            "spectral_norm": False,
            "encoder_dim": 64,
            "style_dim": 0,              # mapping-network width; w modulates every generator norm (0 = off: z enters once)
            "mapping_layers": 2,         # MLP layers of the mapping [z, embed(c)] -> w
            "critic_cond": "projection", # projection (Miyato & Koyama) | concat (the plan: embedding map at the input)
            "minibatch_std_group": 0,    # critic minibatch-std feature over groups of this size (0 = off)
            "critic_null_condition": True,  # dropped conditions use a learned null token in the critic too (False = plan)
            "lambda_ms": 0.0,            # mode-seeking (MSGAN) weight in the generator loss (0 = off)
            "lambda_cond": 0.0,          # condition-regression head on the critic (real images) -> generator loss (0 = off)
            "lambda_rec": 0.0,           # reach: BCE of G(E(x, c), c) vs x into the generator and the encoder (0 = off)
            "lambda_latent_kl": 0.0,     # with lambda_rec: KL of the batch's E(x) moments to N(0, I) (0 = off)
            "flow_layers": 6,            # affine coupling layers of the flow prior p(z | c)
            "flow_hidden": 64,           # width of the flow's coupling / prior MLPs
        },
        "training": {
            "lr_generator": 1.0e-4,
            "lr_critic": 1.0e-4,
            "lr_encoder": 1.0e-4,
            "beta1": 0.0,
            "beta2": 0.9,
            "optimizer": "adam",
            "encoder_every": 1,          # encoder step every k generator steps (0 = never)
            "encoder_start_epoch": 0,
            "encoder_mask_prob": 0.5,    # prob. of masking out each component of the encoder input
            "encoder_latent_weight": 0.1,  # weight of ||E(G(z)) - z||^2 beside the BCE reconstruction of real data
            "fast": True,                # fused critic pass / frozen params (same maths)
            "compile": False,            # torch.compile the no-grad generator passes (critic-step fakes, sampling)
            "fresh_critic_batches": True,  # a fresh real minibatch per critic step (Algorithm 1); False: one for all
            "phase": "gan",              # gan | encoder | flow: which networks this run trains
            "lr_flow": 1.0e-3,           # flow prior Adam learning rate (phase flow)
            "grad_clip_norm": None,      # clip each network's gradient norm to this (null = off)
            # fp32 | bf16: the networks' passes under bf16 autocast (AMX / AVX-512 BF16 CPUs, GPUs; fp32
            # elsewhere, with a note). bf16: at equal wall clock as good or better (docs/results.md).
            "precision": "bf16",
        },
        "sampling": {
            "inpaint_steps": 100,
            "inpaint_lr": 0.01,
            "inpaint_loss": "bce",       # bce (on the generator's logits) | mse | l1
            "inpaint_prior_weight": 0.0,
            "inpaint_lr_schedule": "cosine",  # cosine | constant
            "inpaint_noise": 0.0,        # latent noise std at the start, decaying to 0 at 3/4 of the steps
            "restarts": 8,               # latents optimized in one batch; the best by masked loss wins
            "truncation_psi": 1.0,       # truncation trick toward the per-condition mean style (1 = off)
            "unconditional": "marginal", # marginal: G(z, c ~ training conditions) | null: G(z, null token); marginal measured better (docs/results.md)
            "prior": "normal",           # latent prior: normal N(0, I) | flow (the fitted p(z | c), training.phase=flow)
            "precision": "fp32",         # fp32 | bf16: the networks' passes in sampling and inpainting
        },
    },
    "ddpm": {
        "model": {
            "timesteps": 1000,
            "objective": "pred_v",       # pred_v | pred_noise (what the UNet predicts)
            "res_blocks": 2,
            "attn_resolutions": [],
            "dropout": 0.0,
        },
        "training": {
            "lr": 2.0e-4,
            "beta1": 0.9,
            "beta2": 0.999,
            "grad_clip": 1.0,            # clip the UNet's gradient norm to this (null = off)
            "precision": "fp32",         # fp32 | bf16 (bf16 not yet measured for the DDPM's quality)
        },
        "sampling": {
            "sampler": "ddim",           # ddim | ddpm
            "ddim_steps": 50,
            "ddim_eta": 1.0,              # 1: fresh noise each step (fewer stray pixels); 0: deterministic
            "repaint_resample": 1,       # RePaint resampling jumps per step (1 = plain)
            "inpaint_steps": 100,        # kept for CLI symmetry (DDIM steps for inpainting)
            "inpaint_lr": 0.0,
            "inpaint_loss": "mse",
            "inpaint_prior_weight": 0.0,
            "restarts": 1,
            "precision": "fp32",         # fp32 | bf16 for DDIM / DDPM sampling and RePaint
        },
    },
}

MODEL_TYPES = sorted(MODEL_SCHEMA)
PHASES = ("gan", "encoder", "flow")    # wgan_gp training.phase
# Keys renamed since checkpoints were written: old (section, key) -> (new key, value map).
# Applied when a config is completed, so old run folders and checkpoints still load.
RENAMED_KEYS = {("training", "bf16"): ("precision", lambda on: "bf16" if on else "fp32")}
PROBABILITY_KEYS = [("model", "cond_drop_prob"), ("training", "encoder_mask_prob")]
POSITIVE_KEYS = [
    ("training", "epochs"), ("training", "batch_size"), ("training", "lr_generator"),
    ("training", "lr_critic"), ("training", "lr_encoder"), ("training", "lr"), ("training", "lr_flow"),
    ("model", "flow_hidden"),
    ("model", "n_critic"), ("model", "latent_dim_per_component"), ("model", "dim"),
    ("training", "ema_update_every"), ("training", "check_every"), ("training", "eval_every"),
    ("sampling", "num_samples"), ("sampling", "batch_sz"), ("sampling", "per_condition"),
]


def schema_for(model_type):
    """The merged {section: {key: default}} for ``model_type``."""
    schema = copy.deepcopy(SCHEMA)
    for section, keys in MODEL_SCHEMA.get(model_type, {}).items():
        schema.setdefault(section, {}).update(copy.deepcopy(keys))
    return schema


def resolve_config_path(path):
    """``path`` as given, else relative to ``configs/`` (with or without ``.yaml``)."""
    candidates = [Path(path), CONFIG_DIR / path, CONFIG_DIR / f"{path}.yaml"]
    for candidate in candidates:
        if candidate.is_file():
            return candidate
    available = ", ".join(sorted(p.name for p in CONFIG_DIR.glob("*.yaml")))
    raise FileNotFoundError(
        f"config '{path}' not found (looked at {', '.join(str(c) for c in candidates)}). "
        f"Available in configs/: {available}")


_FLOAT = re.compile(r"^[+-]?(\d+\.?\d*|\.\d+)[eE][+-]?\d+$")


def _parse_value(value):
    """YAML 1.1 reads ``1e-4`` (no dot) as a string; read it as the number it is."""
    if isinstance(value, str) and _FLOAT.match(value.strip()):
        return float(value)
    if isinstance(value, dict):
        return {k: _parse_value(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_parse_value(v) for v in value]
    return value


def load_config(path):
    """Read a YAML config with ``yaml.safe_load``; returns a plain dict of sections."""
    resolved = resolve_config_path(path)
    try:
        with open(resolved) as f:
            cfg = yaml.safe_load(f)
    except yaml.YAMLError as err:
        raise ValueError(f"{resolved}: not a valid (safe) YAML config: {err}") from None
    if not isinstance(cfg, dict):
        raise ValueError(f"{resolved}: expected a mapping of sections (model:, data:, ...), "
                         f"got {type(cfg).__name__}")
    cfg = _parse_value(cfg)
    cfg.setdefault("_meta", {})["config_path"] = str(resolved)
    return cfg


def apply_overrides(cfg, overrides):
    """Apply ``section.key=value`` strings; values are parsed as YAML (``1e-4``, ``[1,2]``).
    A value that is not valid YAML (e.g. ``{prefix}_{component}.png``) is taken as the plain
    string, with a note printed."""
    for item in overrides or []:
        if "=" not in item or "." not in item.split("=", 1)[0]:
            raise ValueError(f"--set '{item}': expected section.key=value, e.g. training.epochs=5")
        dotted, raw = item.split("=", 1)
        section, key = dotted.split(".", 1)
        cfg.setdefault(section, {})
        if not isinstance(cfg[section], dict):
            raise ValueError(f"--set '{item}': '{section}' is not a config section")
        try:
            cfg[section][key] = _parse_value(yaml.safe_load(raw))
        except yaml.YAMLError:
            cfg[section][key] = raw
            print(f"[config] --set {dotted}: {raw!r} is not valid YAML; taken as the string {raw!r}")
    return cfg


def auto_complete_config(cfg, verbose=True):
    """Fill defaults and derived keys (channels, cond_dim, total_latent_dim); prints derived ones."""
    cfg = copy.deepcopy(cfg)
    model_type = (cfg.get("model") or {}).get("type")
    for (section, old), (new, convert) in RENAMED_KEYS.items():
        sec = cfg.get(section)
        if isinstance(sec, dict) and old in sec:
            value = sec.pop(old)
            sec.setdefault(new, convert(value))
            if verbose:
                print(f"[config] {section}.{old} = {value} is now {section}.{new} = {sec[new]}")
    for section, keys in schema_for(model_type).items():
        sec = cfg.setdefault(section, {})
        if sec is None:
            sec = cfg[section] = {}
        for key, default in keys.items():
            if key not in sec and default is not REQUIRED:
                sec[key] = copy.deepcopy(default)
    model, data = cfg["model"], cfg["data"]

    def fill(key, value, why):
        if model.get(key) is None:
            model[key] = value
            if verbose:
                print(f"[config] model.{key} = {value} ({why})")

    for key, root in (("output_dir", "outputs"), ("samples_dir", "samples")):
        if cfg["paths"].get(key) is None and model_type:
            cfg["paths"][key] = f"{root}/{model_type}/"
    if isinstance(data.get("component_dirs"), list):
        fill("channels", len(data["component_dirs"]), "len(data.component_dirs)")
    if isinstance(data.get("condition_columns"), list):
        fill("cond_dim", len(data["condition_columns"]), "len(data.condition_columns)")
    if model_type == "wgan_gp" and isinstance(model.get("latent_dim_per_component"), int) \
            and isinstance(model.get("channels"), int):
        fill("total_latent_dim", model["channels"] * model["latent_dim_per_component"],
             "channels * latent_dim_per_component")
    return cfg


def _did_you_mean(word, options):
    match = difflib.get_close_matches(word, options, n=1, cutoff=0.5)
    return f" Did you mean '{match[0]}'?" if match else ""


def validate_config(cfg):
    """Raise ``ValueError`` naming the key, the bad value and the fix. Returns ``cfg``."""
    model_type = (cfg.get("model") or {}).get("type")
    if model_type not in MODEL_SCHEMA:
        raise ValueError(f"model.type = {model_type!r} is not a registered model; "
                         f"use one of {MODEL_TYPES}.{_did_you_mean(str(model_type), MODEL_TYPES)}")
    schema = schema_for(model_type)
    for section, values in cfg.items():
        if section.startswith("_"):
            continue
        if section not in schema:
            raise ValueError(f"unknown config section '{section}'; valid sections: "
                             f"{sorted(schema)}.{_did_you_mean(section, list(schema))}")
        if not isinstance(values, dict):
            raise ValueError(f"config section '{section}' must be a mapping, got {values!r}")
        for key in values:
            if key not in schema[section]:
                raise ValueError(
                    f"unknown key '{section}.{key}' for model type '{model_type}'."
                    f"{_did_you_mean(key, list(schema[section]))} Valid keys: {sorted(schema[section])}")
        for key, default in schema[section].items():
            if default is REQUIRED and values.get(key) is None:
                raise ValueError(f"{model_type} requires {section}.{key}; add it to the config "
                                 f"(see configs/{model_type}_default.yaml)")
    model, data, training = cfg["model"], cfg["data"], cfg["training"]

    comps = data.get("component_dirs")
    if not isinstance(comps, list) or not comps or not all(isinstance(c, str) for c in comps):
        raise ValueError(f"data.component_dirs = {comps!r}: expected a non-empty list of names")
    if len(set(comps)) != len(comps):
        raise ValueError(f"data.component_dirs = {comps}: names must be unique")
    if model.get("channels") != len(comps):
        raise ValueError(f"model.channels ({model.get('channels')}) does not match "
                         f"len(data.component_dirs) ({len(comps)}); set it to {len(comps)} or null")
    cols = data.get("condition_columns") or []
    if not isinstance(cols, list):
        raise ValueError(f"data.condition_columns = {cols!r}: expected a list (may be empty)")
    if model.get("cond_dim") != len(cols):
        raise ValueError(f"model.cond_dim ({model.get('cond_dim')}) does not match "
                         f"len(data.condition_columns) ({len(cols)}); set it to {len(cols)} or null")
    size = model.get("image_size")
    if not (isinstance(size, (list, tuple)) and len(size) == 2
            and all(isinstance(s, int) and s > 0 and s % 8 == 0 for s in size)):
        raise ValueError(f"model.image_size = {size!r}: expected [H, W] with both divisible by 8 "
                         f"(three 2x up/downsampling stages), e.g. [64, 32]")
    if data["type"] not in DATA_TYPES:
        raise ValueError(f"data.type = {data['type']!r}: use one of {list(DATA_TYPES)}")
    if data["type"] == "image_folder":
        if comps not in PICTURE_CHANNELS.values():
            raise ValueError(f"data.type image_folder: data.component_dirs = {comps} must name the picture's "
                             f"channels: {PICTURE_CHANNELS['rgb']} (RGB) or {PICTURE_CHANNELS['gray']} (grayscale)")
        if not (isinstance(data["test_fraction"], (int, float)) and 0 < data["test_fraction"] < 1):
            raise ValueError(f"data.test_fraction = {data['test_fraction']!r}: use a share in (0, 1), e.g. 0.1")
    elif "{prefix}" not in data["filename_pattern"] or "{component}" not in data["filename_pattern"]:
        raise ValueError(f"data.filename_pattern = {data['filename_pattern']!r} must contain "
                         f"'{{prefix}}' and '{{component}}', e.g. 'mdbk_{{prefix}}_{{component}}.png'")
    for section, key in POSITIVE_KEYS:
        value = cfg.get(section, {}).get(key)
        if key in cfg.get(section, {}) and (not isinstance(value, (int, float))
                                              or isinstance(value, bool) or value <= 0):
            raise ValueError(f"{section}.{key} = {value!r} must be a positive number")
    for section, key in PROBABILITY_KEYS:
        value = cfg.get(section, {}).get(key)
        if key in cfg.get(section, {}) and not (isinstance(value, (int, float)) and 0 <= value <= 1):
            raise ValueError(f"{section}.{key} = {value!r} is a probability; use a value in [0, 1]")
    for key in ("ema_decay",):
        if not (0 <= training[key] < 1):
            raise ValueError(f"training.{key} = {training[key]!r} must be in [0, 1)")
    if training["device"] not in ("auto", "cpu", "cuda") and not str(training["device"]).startswith("cuda:"):
        raise ValueError(f"training.device = {training['device']!r}: use auto, cpu or cuda")
    if data["mirror"] not in ("auto", "left", "right", "none"):
        raise ValueError(f"data.mirror = {data['mirror']!r}: use auto (detected from the data), left, right "
                         f"or none (the side of the image the symmetry axis is on)")
    if not isinstance(cfg["sampling"]["per_condition"], int) or isinstance(cfg["sampling"]["per_condition"], bool):
        raise ValueError(f"sampling.per_condition = {cfg['sampling']['per_condition']!r}: expected a positive "
                         f"integer (draws per condition)")
    for section in ("training", "sampling"):
        if cfg[section]["precision"] not in PRECISIONS:
            raise ValueError(f"{section}.precision = {cfg[section]['precision']!r}: use one of {list(PRECISIONS)} "
                             f"(bf16: autocast where the CPU has AMX / AVX-512 BF16 units, or on a GPU)")
    if training["on_divergence"] not in ("stop", "rollback"):
        raise ValueError(f"training.on_divergence = {training['on_divergence']!r}: use stop or rollback")
    if not isinstance(cfg["logging"]["tensorboard"], bool):
        raise ValueError(f"logging.tensorboard = {cfg['logging']['tensorboard']!r}: use true or false")
    for key in ("grad_clip_norm", "grad_clip"):
        value = training.get(key)
        if value is not None and (not isinstance(value, (int, float)) or isinstance(value, bool) or value <= 0):
            raise ValueError(f"training.{key} = {value!r}: use a positive gradient norm or null (no clipping)")
    if model_type == "wgan_gp":
        if model["lambda_gp"] < 0:
            raise ValueError(f"model.lambda_gp = {model['lambda_gp']} must be >= 0 (10 is standard)")
        if model["upsample"] not in ("transpose", "nearest_conv"):
            raise ValueError(f"model.upsample = {model['upsample']!r}: use transpose or nearest_conv")
        samp = cfg.get("sampling", {})
        if samp.get("inpaint_loss") not in ("bce", "mse", "l1"):
            raise ValueError(f"sampling.inpaint_loss = {samp.get('inpaint_loss')!r}: use bce, mse or l1")
        if samp.get("inpaint_lr_schedule") not in ("cosine", "constant"):
            raise ValueError(f"sampling.inpaint_lr_schedule = {samp.get('inpaint_lr_schedule')!r}: use cosine or constant")
        if samp.get("prior") not in ("normal", "flow"):
            raise ValueError(f"sampling.prior = {samp.get('prior')!r}: use normal or flow")
        if samp.get("unconditional") not in ("null", "marginal"):
            raise ValueError(f"sampling.unconditional = {samp.get('unconditional')!r}: use null or marginal")
        psi = samp.get("truncation_psi")
        if isinstance(psi, bool) or not isinstance(psi, (int, float)) or not 0 <= psi <= 1:
            raise ValueError(f"sampling.truncation_psi = {psi!r} must be in [0, 1] (1 = off)")
        if model["critic_cond"] not in ("projection", "concat"):
            raise ValueError(f"model.critic_cond = {model['critic_cond']!r}: use projection or concat")
        for key in ("style_dim", "mapping_layers", "minibatch_std_group"):
            if not isinstance(model[key], int) or isinstance(model[key], bool) or model[key] < 0:
                raise ValueError(f"model.{key} = {model[key]!r} must be a whole number >= 0")
        for key in ("lambda_ms", "lambda_cond", "lambda_rec", "lambda_latent_kl"):
            if isinstance(model[key], bool) or not isinstance(model[key], (int, float)) or model[key] < 0:
                raise ValueError(f"model.{key} = {model[key]!r} must be a number >= 0 (0 = off)")
        if model["lambda_cond"] > 0 and (model["critic_cond"] != "projection" or not model["cond_dim"]):
            raise ValueError(f"model.lambda_cond = {model['lambda_cond']} needs model.critic_cond = projection and "
                             f"condition columns (the head regresses the condition from features that must not "
                             f"see it); got critic_cond = {model['critic_cond']!r}, cond_dim = {model['cond_dim']}")
        group = model["minibatch_std_group"]
        if group and training["batch_size"] % group:
            raise ValueError(f"model.minibatch_std_group = {group} must divide training.batch_size "
                             f"({training['batch_size']})")
        if len(model["res_blocks"]) != 3 or len(model["dim_mults"]) != 3:
            raise ValueError("wgan_gp: model.dim_mults and model.res_blocks need 3 entries "
                             f"(one per 2x stage), got {model['dim_mults']} and {model['res_blocks']}")
        expected = model["channels"] * model["latent_dim_per_component"]
        if model["total_latent_dim"] != expected:
            raise ValueError(f"model.total_latent_dim ({model['total_latent_dim']}) must equal "
                             f"channels * latent_dim_per_component ({expected}); set it to null")
        if training["phase"] not in PHASES:
            raise ValueError(f"training.phase = {training['phase']!r}: use one of {PHASES} (gan trains the GAN, "
                             f"encoder only the encoder, flow only the flow prior)")
        if not isinstance(model["flow_layers"], int) or isinstance(model["flow_layers"], bool) \
                or model["flow_layers"] < 0:
            raise ValueError(f"model.flow_layers = {model['flow_layers']!r}: use a number of coupling layers >= 0")
        if training["optimizer"] != "adam":
            raise ValueError(f"training.optimizer = {training['optimizer']!r}: only adam is supported")
    if model_type == "ddpm" and model["objective"] not in ("pred_v", "pred_noise"):
        raise ValueError(f"model.objective = {model['objective']!r}: use pred_v (default) or pred_noise")
    return cfg


def add_config_args(parser: argparse.ArgumentParser):
    """The override flags every training entry point accepts."""
    parser.add_argument("--config", help="YAML config (path, or name in configs/)")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="SECTION.KEY=VALUE",
                        help="override a config value (YAML-typed, repeatable), e.g. --set training.lr_critic=2e-4")
    parser.add_argument("--epochs", type=int, help="shortcut for --set training.epochs=N")
    parser.add_argument("--seed", type=int, help="shortcut for --set training.seed=N")
    parser.add_argument("--device", help="auto | cpu | cuda (shortcut for training.device)")
    parser.add_argument("--output_dir", help="shortcut for --set paths.output_dir=DIR")
    parser.add_argument("--run_name", help="run folder name under output_dir/<model>/ (default: config name)")
    parser.add_argument("--overwrite", action="store_true", help="reuse an existing run folder")
    return parser


def config_from_args(args, verbose=True, model_type=None):
    """load -> overrides (incl. convenience flags) -> auto-complete -> validate.

    ``model_type`` (from ``--model``) must agree with the config's ``model.type``. When
    ``args.base_config`` is set (a checkpoint's stored config), it replaces the YAML file."""
    base = getattr(args, "base_config", None)
    cfg = copy.deepcopy(base) if base is not None else load_config(args.config)
    found = (cfg.get("model") or {}).get("type")
    if model_type is not None and found is not None and found != model_type:
        raise ValueError(f"--model {model_type} but {cfg.get('_meta', {}).get('config_path')} is a '{found}' "
                         f"config; use --model {found} or a {model_type} config "
                         f"(e.g. configs/{model_type}_toy.yaml)")
    if model_type is not None:
        cfg.setdefault("model", {})["type"] = model_type
    overrides = list(args.overrides or [])
    for flag, key in (("epochs", "training.epochs"), ("seed", "training.seed"),
                      ("device", "training.device"), ("output_dir", "paths.output_dir"),
                      ("run_name", "training.run_name")):
        value = getattr(args, flag, None)
        if value is not None:
            overrides.append(f"{key}={value}")
    if getattr(args, "overwrite", False):
        overrides.append("training.overwrite=true")
    cfg = apply_overrides(cfg, overrides)
    return validate_config(auto_complete_config(cfg, verbose=verbose))


def dump_config(cfg, path):
    """Write the resolved config as YAML (the run folder's ``config.yaml``)."""
    with open(path, "w") as f:
        yaml.safe_dump({k: v for k, v in cfg.items()}, f, sort_keys=False)
