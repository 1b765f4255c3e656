"""Configuration: YAML -> load_config -> auto_complete_config -> validate_config -> dict.

All defaults live here, in ``SCHEMA`` (keys every model shares) and ``MODEL_SCHEMA``
(keys of one model type). A key whose default is ``REQUIRED`` must be given in the YAML.
Anything not listed is an unknown key and is rejected with a did-you-mean suggestion.
"""
from __future__ import annotations

import argparse
import copy
import dataclasses
import difflib
import math
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
MODEL_TYPES = ("ddpm", "wgan_gp")

# Every set of allowed values, once: validation, the CLIs' ``choices`` and the models' own
# checks read them from here (precisions and data types from the modules that implement them).
CHOICES = {
    "model_type": MODEL_TYPES,
    "data_type": DATA_TYPES,
    "mirror": ("auto", "left", "right", "none"),
    "device": ("auto", "cpu", "cuda"),            # and cuda:<index>
    "on_divergence": ("stop", "rollback"),
    "sampling_mode": ("unconditional", "conditional", "inpainting", "interpolate"),
    "precision": PRECISIONS,
    "upsample": ("transpose", "nearest_conv"),
    "critic_cond": ("projection", "concat"),
    "phase": ("gan", "encoder", "flow"),
    "inpaint_loss": ("bce", "mse", "l1"),
    "lr_schedule": ("cosine", "constant"),
    "unconditional": ("marginal", "null"),
    "prior": ("normal", "flow"),
    "guidance_space": ("pixels", "logits", "style"),
    "objective": ("pred_v", "pred_noise"),
    "sampler": ("ddim", "ddpm"),
    "postprocess": ("none", "clean"),
    "critic_input": ("soft", "binary"),
    "augment": ("translation", "cutout"),       # src_new/models/wgan_gp/augment.py
    "cond_planes": ("none", "generator", "critic", "both"),
    "euler_gap": ("expected", "thresholded", "both"),   # src_new/models/wgan_gp/losses.py euler_loss
    "encoder_pool": ("mean", "flatten"),                # src_new/models/wgan_gp/encoder.py
    "latent_kl": ("diagonal", "full", "sample"),        # src_new/models/wgan_gp/losses.py reach_loss
}

# Documented ceilings on sizes (beyond them a model or a request does not fit a machine anyway).
MAX_WIDTH = 4096          # channel widths
MAX_SIDE = 4096           # image height / width in pixels


@dataclasses.dataclass(frozen=True)
class Key:
    """One config key: its default, its type and what values it accepts.

    kind: int | float | bool | str | ints (list of int) | strs (list of str); nullable: None
    allowed (auto / off); min / max inclusive and gt / lt exclusive bounds (numbers, and each
    entry of a list); choices: a name in ``CHOICES``; doc: one line for the README."""
    default: object
    kind: str
    doc: str = ""
    nullable: bool = False
    min: float | None = None
    max: float | None = None
    gt: float | None = None
    lt: float | None = None
    choices: str | None = None


def _int(default, doc="", **bounds):
    return Key(default, "int", doc, **bounds)


def _float(default, doc="", **bounds):
    return Key(default, "float", doc, **bounds)


def _choice(default, choices, doc=""):
    return Key(default, "str", doc, choices=choices)


_PROB = {"min": 0, "max": 1}
_WEIGHT = {"min": 0}                                 # a loss weight: 0 = off
_POSITIVE = {"gt": 0}

# Keys shared by every model type: {section: {key: Key}}. The docs are the README's configuration
# reference (rendered by bench/render_docs.py).
SCHEMA = {
    "model": {
        "type": _choice(REQUIRED, "model_type", "`wgan_gp` or `ddpm`"),
        "channels": _int(None, "number of components (null: `len(data.component_dirs)`)", nullable=True, min=1),
        "image_size": Key([64, 32], "ints", "`[H, W]`, both divisible by 8", min=8, max=MAX_SIDE),
        "cond_dim": _int(None,
            "condition size (null: `len(data.condition_columns)`; 0 = unconditional)", nullable=True, min=0),
        "dim": _int(64, "base channel width (generator / UNet)", min=1, max=MAX_WIDTH),
        "dim_mults": Key([1, 2, 4], "ints", "width multipliers per resolution", min=1, max=64),
        "cond_drop_prob": _float(0.1, "condition dropout for classifier-free guidance", min=0, max=1),
    },
    "data": {
        "type": _choice("multicomponent", "data_type",
            "`multicomponent` (one PNG per component) or `image_folder` (pictures, below)"),
        "root_dir": Key("data/", "str", "dataset root (either layout; image_folder: the folder of images)"),
        "condition_csv": Key("data/dimensions.csv", "str", "the CSV (also looked up in `root_dir`)", nullable=True),
        "component_dirs": Key(["group_nc", "group_km", "bt", "fpu", "tpc"], "strs",
            "component names = folder names, in channel order"),
        "condition_columns": Key(["width_px", "height_px"], "strs",
            "condition columns (may be empty)", nullable=True),
        "prefix_column": Key("matching", "str", "CSV column with the file prefix"),
        "filename_pattern": Key("mdbk_{prefix}_{component}.png", "str", "file name pattern"),
        "split_column": Key("train", "str", "train/test flag column (True/1/\"true\" = train)", nullable=True),
        "normalized": Key(False, "bool", "false: standardize conditions with train statistics"),
        "mirror": _choice("auto", "mirror",
            "grids and composites mirror each image about this side: `auto` (the edge column the data touches),"
            " `left`, `right`, `none`"),
        "test_fraction": _float(0.1,
            "image_folder without conditions: fixed random share of images in the test split", gt=0, lt=1),
    },
    "training": {
        "epochs": _int(1000, "epochs", min=1),
        "batch_size": _int(64, "global batch size (split across torchrun processes)", min=1, max=65536),
        "num_workers": _int(0, "DataLoader workers (data is cached in memory)", min=0),
        "seed": _int(0, "seed; on CPU the same seed gives the same losses"),
        "device": Key("auto", "str", "`auto`, `cpu`, `cuda` or `cuda:<index>`"),
        "ema_decay": _float(0.9999,
            "EMA decay; effective decay `min(decay, (1+n)/(10+n))` after n updates", min=0, lt=1),
        "ema_update_every": _int(10, "EMA update every k optimizer steps", min=1),
        "eval_every": _int(100, "epochs between progress grids (and the collapse check)", min=1),
        "check_every": _int(100, "epochs between numbered checkpoints (`checkpoint_latest.pt` too)", min=1),
        "run_name": Key(None, "str",
            "run folder name under `paths.output_dir` (null: the config file's name)", nullable=True),
        "overwrite": Key(False, "bool", "reuse (clear) an existing run folder"),
        "max_grad_norm": _float(10000.0, "a larger gradient norm counts as divergence", gt=0),
        "on_divergence": _choice("stop", "on_divergence",
            "`stop`, or `rollback` to the last checkpoint with halved learning rates"),
    },
    "paths": {
        "output_dir": Key(None, "str",
            "run folders go in `<output_dir>/<run_name>/` (null: `outputs/<model.type>/`)", nullable=True),
        "samples_dir": Key(None, "str",
            "default sampling output folder `<samples_dir>/<mode>` (null: `samples/<model.type>/`)", nullable=True),
    },
    "sampling": {
        "num_samples": _int(16, "samples per run", min=1, max=10000000),
        "batch_sz": _int(8, "sampling batch size", min=1, max=65536),
        "mode": _choice("conditional", "sampling_mode", "default mode of `sample.py`"),
        "components": Key(["fpu", "group_nc", "group_km"], "strs", "components preserved when inpainting"),
        "per_condition": _int(1,
            "conditional: K draws per condition (`num_samples / K` conditions); K >= 2 gives the within-"
            "condition diversity", min=1),
    },
    "evaluation": {
        "inception_weights": Key(None, "str",
            "path to pytorch-fid Inception weights for the classic FID (null: skipped)", nullable=True),
    },
    "logging": {
        "tensorboard": Key(False, "bool",
            "also write TensorBoard events to `<run>/tensorboard/` (every `losses*.csv` column, the progress "
            "grids)"),
    },
}

# Keys of one model type, merged into SCHEMA when model.type names it.
MODEL_SCHEMA = {
    "wgan_gp": {
        "model": {
            "latent_dim_per_component": _int(REQUIRED,
                "latents per component (4 -> 20 in all)", min=1, max=MAX_WIDTH),
            "total_latent_dim": _int(None, "null: `channels * latent_dim_per_component`", nullable=True, min=1),
            "lambda_gp": _float(REQUIRED, "gradient penalty weight (10 in Gulrajani et al.)", min=0),
            "n_critic": _int(REQUIRED, "critic updates per generator update (5 in Gulrajani et al.)", min=1),
            "res_blocks": Key([1, 2, 2], "ints",
                "generator ResBlocks per upsampling stage (low -> high res)", min=0, max=64),
            "bottleneck_res_blocks": _int(1, "generator ResBlocks at H/8 x W/8", min=0, max=64),
            "upsample": _choice("transpose", "upsample", "`transpose` or `nearest_conv` (no checkerboard)"),
            "critic_dim": _int(64, "critic base width", min=1, max=MAX_WIDTH),
            "spectral_norm": Key(False, "bool", "spectral norm on the critic's layers"),
            "encoder_dim": _int(64, "encoder base width", min=1, max=MAX_WIDTH),
            "encoder_pool": _choice("mean", "encoder_pool",
                "how the encoder reduces its H/8 x W/8 feature map to a vector: `mean` (global average pool: "
                "blind to where a feature is) or `flatten` (a Linear over the whole map: keeps positions, so "
                "G(E(x)) places thin bands where x has them; docs/results.md, round twelve)"),
            "style_dim": _int(0,
                "WGAN-GP mapping-network width: `w = mapping([z, embed(c)])` modulates every generator norm; 0 "
                "= off (z enters once, through the first Linear): modulation was sharper but far less varied "
                "(docs/results.md, D1 vs D0)", min=0, max=MAX_WIDTH),
            "mapping_layers": _int(2, "MLP layers of the mapping network", min=0, max=64),
            "cond_modulation": Key(False, "bool",
                "the condition's embedding alone modulates every generator norm (conditional normalization, "
                "as in BigGAN) while z still enters once, through the first Linear; needs `style_dim: 0`. Measured: "
                "a lower condition error, but fewer samples in clean pieces and less variety at one size "
                "(docs/results.md, round six)"),
            "cond_planes": _choice("none", "cond_planes",
                "CoordConv planes with the condition (row and column coordinates, each normalized condition "
                "broadcast, a presence plane) into the `generator`'s upsampling and output convs, the `critic`'s "
                "input, or `both`: an edge can sit where an affine function of the condition puts it (`critic` "
                "and `both` need `lambda_cond: 0`)"),
            "critic_cond": _choice("projection", "critic_cond",
                "how the critic sees the condition: `projection` (score + <embed(c), features>, Miyato & "
                "Koyama) or `concat` (an embedding map concatenated to the input)"),
            "minibatch_std_group": _int(4,
                "critic minibatch-std feature over groups of this many samples (0 = off; must divide "
                "`training.batch_size`): the largest FD gain of the ablation (docs/results.md, row D3)", min=0),
            "critic_null_condition": Key(True, "bool",
                "a dropped condition is a learned null token in the critic too, with the generator's per-sample"
                " mask (joint conditional / unconditional training); false: the critic always sees the true "
                "condition"),
            "critic_patch_weight": _float(0.0,
                "weight of the critic's local (patch) head: the mean of per-patch scores on its H/4 map "
                "joins the score, so stray pixels move a few patches (0 = off)", min=0),
            "lambda_ms": _float(0.0,
                "weight of the mode-seeking term (MSGAN) in the generator loss (0 = off)", min=0),
            "lambda_cond": _float(0.0,
                "condition regression (continuous AC-GAN): a head on the critic learns the normalized condition"
                " of real images, its error on generated images joins the generator loss; needs `critic_cond: "
                "projection` (0 = off)", min=0),
            "lambda_rec": _float(0.0,
                "reach term: BCE between G(E(x, c), c)'s logits and the real image in the generator loss; "
                "trains the generator and the encoder (0 = off; the shipped configs use 20: more recall, "
                "coverage and reach at equal wall clock, in slower steps; docs/results.md, reach)", min=0),
            "lambda_latent_kl": _float(0.0,
                "with `lambda_rec`: KL of the latents to N(0, I) (of the batch's E(x) moments, or each design's "
                "own with `latent_kl: sample`), so reached latents stay where sampling draws z", min=0),
            "latent_kl": _choice("diagonal", "latent_kl",
                "with `lambda_latent_kl`: the Gaussian fitted to the batch's E(x): `diagonal` (each latent's mean "
                "and variance) or `full` (the mean and the full covariance, so correlated latents are pulled "
                "apart too; needs `training.batch_size` above the latent size; it shapes the latents like the "
                "prior but did not give the flatten encoder its precision back: docs/results.md, round thirteen),"
                " or `sample`: a variational encoder (VAE-GAN) gives each design a Gaussian, the reach term decodes"
                " a draw from it and the KL is each design's own against N(0, I)"),
            "lambda_rec_adv": _float(0.0,
                "with `lambda_rec`: the critic's score of the reconstructions G(E(x, c), c) joins the generator "
                "loss (VAE-GAN's adversarial reconstruction), so that they must look real, not only match per "
                "pixel (0 = off; one-seed screening in docs/results.md)", min=0),
            "lambda_code": _float(0.0,
                "with `lambda_rec`: a code critic (alpha-GAN's code discriminator, Rosca et al. 2017), a small MLP "
                "that tells the encoder's latents E(x, c) from N(0, I) draws (each beside its condition), pulls "
                "E(x, c) toward the sampling prior in its whole shape, not only its moments as the KL does; this "
                "weight scales the encoder's non-saturating term in the generator loss (0 = off)", min=0),
            "code_critic_dim": _int(128, "with `lambda_code`: the code critic's hidden width (two hidden layers)",
                                    min=1),
            "lambda_euler": _float(0.0,
                "topology term: Huber gap between each generated component's expected Euler number (pieces "
                "minus holes, 4-connected; `losses.euler_loss`) and the real batch's median, in the generator "
                "loss, against stray specks and broken thin parts (0 = off)", min=0),
            "euler_gap": _choice("expected", "euler_gap",
                "with `lambda_euler`: the gap the topology term scores: `expected` (the soft output's expected "
                "Euler number: every sample pulled toward the count) or `thresholded` (the count of the "
                "thresholded sample, as a user receives it, the gradient straight through the expected one: "
                "only samples in the wrong number of pieces are pulled) or `both` (the sum of the two)"),
            "lambda_size": _float(0.0,
                "size term: Huber gap in px between each generated sample's measured size, through the "
                "convention fitted on the train split for each condition column (bounding-box extent or far "
                "edge, affinely mapped; `losses.size_loss`), and its requested condition, in the generator "
                "loss; needs condition columns (0 = off)", min=0),
            "critic_input": _choice("soft", "critic_input",
                "what the critic scores of a fake: `soft` (the [0, 1] output) or `binary` (thresholded at 0.5, "
                "the image a user gets; straight-through gradients), so that thresholding specks cost score"),
            "augment_p": _float(0.0,
                "DiffAugment: probability that a critic input (real and fake alike) is augmented (0 = off)",
                min=0, max=1),
            "augment_policy": Key(["translation"], "strs",
                "DiffAugment's transformations: `translation` (whole pixels, never cutting the real design: its "
                "extent stays) and/or `cutout` (hides half of each side: the measured size can change)",
                choices="augment"),
            "flow_layers": _int(6, "WGAN-GP flow prior p(z \\| c): affine coupling layers", min=0, max=256),
            "flow_hidden": _int(64, "width of the flow's coupling and prior MLPs", min=1, max=MAX_WIDTH),
        },
        "training": {
            "lr_generator": _float(1.0e-4, "WGAN-GP generator Adam learning rate", gt=0),
            "lr_critic": _float(1.0e-4, "WGAN-GP critic Adam learning rate (TTUR: set them apart)", gt=0),
            "lr_encoder": _float(1.0e-4, "WGAN-GP encoder Adam learning rate", gt=0),
            "beta1": _float(0.0,
                "Adam beta1 (WGAN-GP: generator and critic; encoder and flow: Adam's (0.9, 0.999))", min=0, lt=1),
            "beta2": _float(0.9, "Adam beta2 (WGAN-GP: generator and critic)", min=0, lt=1),
            "encoder_every": _int(1, "encoder inversion step every k generator steps (0 = never)", min=0),
            "encoder_start_epoch": _int(0, "first epoch with encoder steps", min=0),
            "encoder_mask_prob": _float(0.5,
                "probability of hiding each component from the encoder in training", min=0, max=1),
            "encoder_latent_weight": _float(0.1,
                "weight of the latent regression `||E(G(z)) - z||^2` beside the BCE reconstruction of real "
                "designs", min=0),
            "compile": Key(False, "bool",
                "WGAN-GP: `torch.compile` the generator passes that run without autograd (critic-step fakes, "
                "sampling, the encoder's generated batch); same values; off: not measured faster on CPU"),
            "fresh_critic_batches": Key(True, "bool",
                "WGAN-GP: each of the `n_critic` critic steps gets its own real minibatch (Algorithm 1 of "
                "Gulrajani et al.); false = one minibatch for all"),
            "phase": _choice("gan", "phase",
                "WGAN-GP: what a run trains: `gan`, `encoder` (encoder only) or `flow` (flow prior only); "
                "`training.epochs` counts the phase's epochs"),
            "reach_warmup_epochs": _int(0,
                "WGAN-GP gan phase: the first N epochs train the encoder and generator as an autoencoder (the "
                "reach term `model.lambda_rec` with its latent KL alone, one update per minibatch, no critic), "
                "then the game starts: a warm start toward the real designs; needs `model.lambda_rec` > 0", min=0),
            "lr_flow": _float(1.0e-3, "WGAN-GP flow prior Adam learning rate", gt=0),
            "flow_every": _int(0,
                "WGAN-GP gan phase: one flow-prior update (NLL of the minibatch's E(x), the encoder only read) "
                "every k generator steps, so the flow tracks the encoder and `prior: flow` works from any "
                "checkpoint (0 = never: fit it afterwards with `training.phase=flow`)", min=0),
            "grad_clip_norm": _float(None,
                "WGAN-GP: clip the generator's, critic's, encoder's and flow's gradient norm (null = off); "
                "`*_clipped` columns count clipped updates", nullable=True, gt=0),
            "precision": _choice("bf16", "precision",
                "`fp32`, or `bf16`: the networks' passes under bf16 autocast (CPUs with AMX, GPUs; "
                "fp32 with a note elsewhere); weights, optimizer state, losses and the gradient penalty stay "
                "fp32. WGAN-GP: bf16 measured as good or better at equal wall clock (docs/results.md); DDPM: "
                "not measured yet"),
        },
        "sampling": {
            "inpaint_steps": _int(100,
                "inpainting steps (WGAN-GP: Adam steps on z; DDPM: RePaint DDIM steps)", min=0),
            "inpaint_lr": _float(0.01, "WGAN-GP latent learning rate", gt=0),
            "inpaint_loss": _choice("mse", "inpaint_loss",
                "WGAN-GP inpainting loss on known pixels: `mse` or `l1` on the generator's [0, 1] output, `bce`"
                " on its logits; mse with 2 restarts matched bce with 4-8 restarts at a third of the time "
                "(docs/results.md)"),
            "inpaint_prior_weight": _float(0.0, "WGAN-GP: weight of `mean(z^2)` in the inpainting loss", min=0),
            "inpaint_lr_schedule": _choice("cosine", "lr_schedule",
                "WGAN-GP inpainting learning rate: `cosine` (to 0 over the steps) or `constant`"),
            "inpaint_noise": _float(0.0,
                "WGAN-GP inpainting: std of noise added to z, decaying to 0 at 3/4 of the steps", min=0),
            "restarts": _int(2,
                "WGAN-GP inpainting restarts (encoder guess + random), optimized as one batch; the best by "
                "masked loss is kept", min=1),
            "truncation_psi": _float(1.0,
                "WGAN-GP truncation trick: styles pulled toward their condition's mean style (1 = off, 0 = the "
                "mean image)", min=0, max=1),
            "guidance_scale": _float(0.0,
                "guidance scale s: `G(z,∅) + s (G(z,c) - G(z,∅))` in `guidance_space` (0 = plain conditional, "
                "the default: with the size term, style guidance at 1.5 leaves the condition error where it is "
                "and costs FD, recall and spread; docs/results.md, round nine)"),
            "guidance_space": _choice("style", "guidance_space",
                "WGAN-GP: where guidance extrapolates: `style` (the generator's input w, one pass), `pixels` "
                "(the [0, 1] outputs, clamped) or `logits` (before the sigmoid); pixels and logits measured "
                "worse than unguided at every scale (docs/results.md)"),
            "unconditional": _choice("marginal", "unconditional",
                "WGAN-GP unconditional mode: `marginal` = G(z, c), c drawn from the training conditions stored "
                "in the checkpoint; `null` = G(z, null token); marginal measured better (docs/results.md)"),
            "prior": _choice("normal", "prior",
                "WGAN-GP latent prior: `normal` N(0, I) or `flow` (the fitted p(z \\| c), after "
                "`training.phase=flow` or trained along, `training.flow_every`); `--prior` overrides"),
            "precision": _choice("fp32", "precision",
                "`fp32` or `bf16` for sampling and inpainting (`--precision`); any checkpoint samples in either"),
        },
    },
    "ddpm": {
        "model": {
            "timesteps": _int(1000, "DDPM diffusion steps", min=1, max=100000),
            "objective": _choice("pred_v", "objective", "DDPM: the UNet predicts `pred_v` (v) or `pred_noise` (eps)"),
            "res_blocks": _int(2, "generator ResBlocks per upsampling stage (low -> high res)", min=1, max=64),
            "attn_resolutions": Key([], "ints", "DDPM: feature-map heights with self-attention", min=1),
            "dropout": _float(0.0, "DDPM ResBlock dropout", min=0, lt=1),
        },
        "training": {
            "lr": _float(2.0e-4, "DDPM learning rate", gt=0),
            "beta1": _float(0.9,
                "Adam beta1 (WGAN-GP: generator and critic; encoder and flow: Adam's (0.9, 0.999))", min=0, lt=1),
            "beta2": _float(0.999, "Adam beta2 (WGAN-GP: generator and critic)", min=0, lt=1),
            "grad_clip": _float(1.0,
                "DDPM gradient clipping (max norm; null = off); column `grad_clipped`", nullable=True, gt=0),
            "precision": _choice("fp32", "precision",
                "`fp32`, or `bf16`: the networks' passes under bf16 autocast (CPUs with AMX, GPUs; "
                "fp32 with a note elsewhere); weights, optimizer state, losses and the gradient penalty stay "
                "fp32. WGAN-GP: bf16 measured as good or better at equal wall clock (docs/results.md); DDPM: "
                "not measured yet"),
        },
        "sampling": {
            "guidance_scale": _float(2.0, "guidance scale s: `eps_u + s (eps_c - eps_u)` (0 = plain conditional)"),
            "sampler": _choice("ddim", "sampler", "DDPM: `ddim` or `ddpm` (ancestral)"),
            "ddim_steps": _int(50, "DDPM: DDIM steps", min=1),
            "ddim_eta": _float(1.0,
                "DDPM: DDIM eta (1: fresh noise each step, fewer stray pixels; 0: deterministic)", min=0),
            "repaint_resample": _int(1, "DDPM inpainting: RePaint resampling jumps per step", min=1),
            "inpaint_steps": _int(100,
                "inpainting steps (WGAN-GP: Adam steps on z; DDPM: RePaint DDIM steps)", min=1),
            "precision": _choice("fp32", "precision",
                "`fp32` or `bf16` for sampling and inpainting (`--precision`); any checkpoint samples in either"),
        },
    },
}
assert tuple(sorted(MODEL_SCHEMA)) == MODEL_TYPES

# Keys renamed since checkpoints were written: old (section, key) -> (new key, value map).
# Applied when a config is completed, so old run folders and checkpoints still load.
RENAMED_KEYS = {("training", "bf16"): ("precision", lambda on: "bf16" if on else "fp32")}
# Keys removed: (model type or None for all, section, key) -> why. A YAML file or --set that
# names one is refused with the reason; a config stored in an older checkpoint loses it quietly.
REMOVED_KEYS = {
    (None, "evaluation", "num_samples"): "it was never read: evaluate.py scores every sample of the folder "
                                         "(sample.py --num_samples sets how many)",
    ("wgan_gp", "training", "optimizer"): "Adam is the only optimizer",
    ("wgan_gp", "training", "fast"): "the fused critic pass is the only path (bench/bench_wgan.py keeps the "
                                     "plain reference and checks that it agrees)",
    **{("ddpm", "sampling", key): "DDPM inpainting is RePaint: it never used the WGAN-GP's latent-optimisation "
                                  "options" for key in ("inpaint_lr", "inpaint_loss", "inpaint_prior_weight",
                                                        "restarts")},
}


def reference_table():
    """The README's configuration reference: one Markdown row per key (``key | default | meaning``),
    a key both models have shows each model's default where they differ."""
    def show(value):
        if value is REQUIRED:
            return "required"
        if value is None:
            return "`null`"
        return f"`{yaml.safe_dump(value, default_flow_style=True).strip().removesuffix('...').strip()}`"

    rows, seen = ["| key | default | meaning |", "|---|---|---|"], {}
    for owner, sections in [(None, SCHEMA)] + [(m, MODEL_SCHEMA[m]) for m in MODEL_TYPES]:
        for section, keys in sections.items():
            for name, key in keys.items():
                seen.setdefault(f"{section}.{name}", []).append((owner, key))
    for dotted, entries in seen.items():
        defaults = {show(key.default) for _, key in entries}
        default = defaults.pop() if len(defaults) == 1 else "; ".join(
            f"{show(key.default)} ({owner})" for owner, key in entries)
        docs = list(dict.fromkeys(key.doc for _, key in entries))
        meaning = docs[0] if len(docs) == 1 else "; ".join(f"{owner}: {key.doc}" for owner, key in entries)
        if entries[0][0] is not None and len(entries) == 1 and not meaning.startswith(("WGAN-GP", "DDPM")):
            meaning = f"{'WGAN-GP' if entries[0][0] == 'wgan_gp' else 'DDPM'}: {meaning}"
        rows.append(f"| `{dotted}` | {default} | {meaning.replace('|', chr(92) + '|')} |")
    return "\n".join(rows) + "\n"


def schema_for(model_type):
    """The merged {section: {key: Key}} for ``model_type``."""
    schema = {section: dict(keys) for section, keys in SCHEMA.items()}
    for section, keys in MODEL_SCHEMA.get(model_type, {}).items():
        schema.setdefault(section, {}).update(keys)
    return schema


def defaults_for(model_type):
    """{section: {key: default}} (REQUIRED where the YAML must give the key)."""
    return {section: {k: copy.deepcopy(key.default) for k, key in keys.items()}
            for section, keys in schema_for(model_type).items()}


def removed_keys(cfg):
    """[(section, key, why)] of the removed keys that ``cfg`` still carries."""
    model_type = (cfg.get("model") or {}).get("type") if isinstance(cfg.get("model"), dict) else None
    return [(section, key, why) for (owner, section, key), why in REMOVED_KEYS.items()
            if owner in (None, model_type) and isinstance(cfg.get(section), dict) and key in cfg[section]]


def refuse_removed_keys(cfg, where):
    for section, key, why in removed_keys(cfg):
        raise ValueError(f"{where}: {section}.{key} was removed ({why}); delete it")


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
        cfg = safe_load_without_aliases(Path(resolved).read_text())
    except yaml.YAMLError as err:
        raise ValueError(f"{resolved}: not a valid (safe) YAML config: {err}") from None
    except ValueError as err:
        raise ValueError(f"{resolved}: {err}") from None
    if not isinstance(cfg, dict):
        raise ValueError(f"{resolved}: expected a mapping of sections (model:, data:, ...), "
                         f"got {type(cfg).__name__}")
    for section, body in cfg.items():
        if not isinstance(body, dict):
            raise ValueError(f"{resolved}: section '{section}' must be a mapping of keys (e.g. {section}:\n"
                             f"  key: value), got {type(body).__name__} {body!r:.40}")
    cfg = _parse_value(cfg)
    refuse_removed_keys(cfg, str(resolved))
    cfg.setdefault("_meta", {})["config_path"] = str(resolved)
    return cfg


def safe_load_without_aliases(text):
    """``yaml.safe_load`` that refuses anchors and aliases: an alias bomb (nested aliases that
    expand exponentially) would make loading hang, and a config has no need for them. The
    event scan costs the file's length, whatever the aliases would expand to."""
    for event in yaml.parse(text, Loader=yaml.SafeLoader):
        if isinstance(event, yaml.AliasEvent) or getattr(event, "anchor", None):
            raise ValueError("YAML anchors and aliases (&name / *name) are not accepted in configs; "
                             "write the values out")
    return yaml.safe_load(text)


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
        refuse_removed_keys({"model": cfg.get("model"), section: {key: None}}, f"--set {dotted}")
        try:
            cfg[section][key] = _parse_value(safe_load_without_aliases(raw))
        except yaml.YAMLError:
            cfg[section][key] = raw
            print(f"[config] --set {dotted}: {raw!r} is not valid YAML; taken as the string {raw!r}")
    return cfg


def auto_complete_config(cfg, verbose=True):
    """Fill defaults and derived keys (channels, cond_dim, total_latent_dim); prints derived ones."""
    cfg = copy.deepcopy(cfg)
    model_type = cfg["model"].get("type") if isinstance(cfg.get("model"), dict) else None
    if model_type is not None and not isinstance(model_type, str):
        raise ValueError(f"model.type = {model_type!r:.40} must be one of {sorted(MODEL_SCHEMA)}")
    for (section, old), (new, convert) in RENAMED_KEYS.items():
        sec = cfg.get(section)
        if isinstance(sec, dict) and old in sec:
            value = sec.pop(old)
            sec.setdefault(new, convert(value))
            if verbose:
                print(f"[config] {section}.{old} = {value} is now {section}.{new} = {sec[new]}")
    for section, key, _ in removed_keys(cfg):      # a config stored by an older version
        del cfg[section][key]
    for section, keys in defaults_for(model_type).items():
        sec = cfg.setdefault(section, {})
        if sec is None:
            sec = cfg[section] = {}
        if not isinstance(sec, dict):
            continue                                   # validate_config names the problem
        for key, default in keys.items():
            if key not in sec and default is not REQUIRED:
                sec[key] = default
    model, data = cfg["model"], cfg["data"]
    if not isinstance(model, dict) or not isinstance(data, dict) or not isinstance(cfg["paths"], dict):
        return cfg

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


def _range_text(key):
    """'in [0, 1)', '>= 1', '> 0', ... from the key's bounds ('' when unbounded)."""
    low = f"[{key.min}" if key.min is not None else f"({key.gt}" if key.gt is not None else None
    high = f"{key.max}]" if key.max is not None else f"{key.lt})" if key.lt is not None else None
    if low and high:
        return f" in {low}, {high}"
    if low:
        return f" {'>=' if key.min is not None else '>'} {low[1:]}"
    if high:
        return f" {'<=' if key.max is not None else '<'} {high[:-1]}"
    return ""


def _in_range(key, v):
    return ((key.min is None or v >= key.min) and (key.max is None or v <= key.max)
            and (key.gt is None or v > key.gt) and (key.lt is None or v < key.lt))


def _type_error(key, value):
    """None when ``value`` fits ``key``'s kind, nullability, bounds and choices; else what is expected."""
    if value is None:
        return None if key.nullable else "a value (null is not allowed here)"
    listed = key.kind in ("ints", "strs")
    scalar = {"ints": "int", "strs": "str"}.get(key.kind, key.kind)
    noun = {"int": "whole number", "float": "finite number", "bool": "true or false", "str": "string"}[scalar]
    expected = (f"a list of {noun}s" + (f", each{_range_text(key)}" if _range_text(key) else "")) if listed \
        else ("true or false" if scalar == "bool" else f"a {noun}{_range_text(key)}")
    if listed and not isinstance(value, list):
        return expected
    for v in value if listed else [value]:
        if scalar == "int" and (isinstance(v, bool) or not isinstance(v, int)):
            return expected
        if scalar == "float" and (isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v)):
            return expected
        if scalar in ("bool", "str") and not isinstance(v, {"bool": bool, "str": str}[scalar]):
            return expected
        if key.choices and v not in CHOICES[key.choices]:
            return f"one of {list(CHOICES[key.choices])}"
        if scalar in ("int", "float") and not _in_range(key, v):
            return expected
    return None


def check_value(model_type, section, key, value, where):
    """Refuse ``value`` for ``section.key`` unless it fits the schema's type, range and choices
    (what ``validate_config`` checks, for values that arrive another way, e.g. a CLI flag)."""
    expected = _type_error(schema_for(model_type)[section][key], value)
    if expected:
        raise ValueError(f"{where} {value!r}: expected {expected} ({section}.{key})")
    return value


def _check_structure(cfg, model_type, schema):
    """Sections are mappings of known keys; required keys are present; every value has its type."""
    for section, values in cfg.items():
        if section.startswith("_"):
            continue
        if section not in schema:
            raise ValueError(f"unknown config section '{section}'; valid sections: "
                             f"{sorted(schema)}.{_did_you_mean(section, list(schema))}")
        if not isinstance(values, dict):
            raise ValueError(f"config section '{section}' must be a mapping of keys, got {values!r}")
        for key in values:
            if key not in schema[section]:
                raise ValueError(
                    f"unknown key '{section}.{key}' for model type '{model_type}'."
                    f"{_did_you_mean(str(key), list(schema[section]))} Valid keys: {sorted(schema[section])}")
        for key, spec in schema[section].items():
            if spec.default is REQUIRED and values.get(key) is None:
                raise ValueError(f"{model_type} requires {section}.{key}; add it to the config "
                                 f"(see configs/{model_type}_toy.yaml)")
            expected = _type_error(spec, values.get(key))
            if key in values and expected:
                raise ValueError(f"{section}.{key} = {values[key]!r}: expected {expected}")


def validate_config(cfg):
    """Raise ``ValueError`` naming the key, the bad value and the fix. Returns ``cfg``.
    Every key's type, range and allowed values come from the schema (one loop); the checks
    written out below are the ones that relate several keys."""
    if not isinstance(cfg, dict) or not isinstance(cfg.get("model"), dict):
        raise ValueError("the config needs a 'model' section (a mapping with at least model.type)")
    model_type = cfg["model"].get("type")
    if model_type not in MODEL_SCHEMA:
        raise ValueError(f"model.type = {model_type!r} is not a registered model; "
                         f"use one of {list(MODEL_TYPES)}.{_did_you_mean(str(model_type), MODEL_TYPES)}")
    _check_structure(cfg, model_type, schema_for(model_type))
    model, data, training = cfg["model"], cfg["data"], cfg["training"]
    comps, cols = data["component_dirs"], data["condition_columns"] or []
    if not comps or len(set(comps)) != len(comps):
        raise ValueError(f"data.component_dirs = {comps}: expected a non-empty list of unique names")
    if model["channels"] != len(comps):
        raise ValueError(f"model.channels ({model['channels']}) does not match len(data.component_dirs) "
                         f"({len(comps)}); set it to {len(comps)} or null")
    if model["cond_dim"] != len(cols):
        raise ValueError(f"model.cond_dim ({model['cond_dim']}) does not match len(data.condition_columns) "
                         f"({len(cols)}); set it to {len(cols)} or null")
    size = model["image_size"]
    if len(size) != 2 or any(s % 8 for s in size):
        raise ValueError(f"model.image_size = {size!r}: expected [H, W] with both divisible by 8 "
                         f"(three 2x up/downsampling stages), e.g. [64, 32]")
    if data["type"] == "image_folder" and comps not in PICTURE_CHANNELS.values():
        raise ValueError(f"data.type image_folder: data.component_dirs = {comps} must name the picture's "
                         f"channels: {PICTURE_CHANNELS['rgb']} (RGB) or {PICTURE_CHANNELS['gray']} (grayscale)")
    _check_filename_pattern(data)
    device = training["device"]
    if device not in CHOICES["device"] and not re.fullmatch(r"cuda:\d+", device):
        raise ValueError(f"training.device = {device!r}: use auto, cpu, cuda or cuda:<index>")
    if model_type == "wgan_gp":
        _check_wgan_gp(model, training)
    return cfg


def _check_filename_pattern(data):
    if data["type"] != "multicomponent":
        return
    pattern = data["filename_pattern"]
    try:
        pattern.format(prefix="p", component="c")
        ok = "{prefix}" in pattern and "{component}" in pattern
    except (KeyError, IndexError, ValueError):
        ok = False
    if not ok:
        raise ValueError(f"data.filename_pattern = {pattern!r} must contain '{{prefix}}' and '{{component}}' "
                         f"and no other placeholder, e.g. 'mdbk_{{prefix}}_{{component}}.png'")


def _check_wgan_gp(model, training):
    if model["lambda_cond"] > 0 and (model["critic_cond"] != "projection" or not model["cond_dim"]
                                     or model["cond_planes"] in ("critic", "both")):
        raise ValueError(f"model.lambda_cond = {model['lambda_cond']} needs model.critic_cond = projection, "
                         f"condition columns and model.cond_planes none or generator (the head regresses the "
                         f"condition from features that must not see it); got critic_cond = "
                         f"{model['critic_cond']!r}, cond_dim = {model['cond_dim']}, cond_planes = "
                         f"{model['cond_planes']!r}")
    if model["lambda_size"] > 0 and not model["cond_dim"]:
        raise ValueError(f"model.lambda_size = {model['lambda_size']} needs condition columns "
                         "(data.condition_columns): it compares each sample's size with its condition")
    if model["cond_modulation"] and model["style_dim"]:
        raise ValueError(f"model.cond_modulation needs model.style_dim = 0 (style_dim = {model['style_dim']} "
                         "already modulates every norm with the latent and the condition): set one of them")
    group = model["minibatch_std_group"]
    if group and training["batch_size"] % group:
        raise ValueError(f"model.minibatch_std_group = {group} must divide training.batch_size "
                         f"({training['batch_size']})")
    if model["latent_kl"] == "full" and model["lambda_latent_kl"] > 0 and model["lambda_rec"] > 0 \
            and training["batch_size"] <= model["total_latent_dim"]:
        raise ValueError(f"model.latent_kl = full fits a {model['total_latent_dim']} x {model['total_latent_dim']} "
                         f"covariance to each batch of latents: training.batch_size ({training['batch_size']}) must "
                         "exceed the latent size, or use model.latent_kl = diagonal")
    if model["lambda_code"] > 0 and not model["lambda_rec"] > 0:
        raise ValueError(f"model.lambda_code = {model['lambda_code']} pulls the reach term's latents E(x, c) toward "
                         f"N(0, I), and the reach term is off (model.lambda_rec = {model['lambda_rec']}): set "
                         "model.lambda_rec > 0 (e.g. 20) or model.lambda_code = 0")
    if training["reach_warmup_epochs"] and not model["lambda_rec"] > 0:
        raise ValueError(f"training.reach_warmup_epochs = {training['reach_warmup_epochs']} trains by the reach "
                         f"term alone, which is off (model.lambda_rec = {model['lambda_rec']}): set "
                         "model.lambda_rec > 0 (e.g. 20) or training.reach_warmup_epochs = 0")
    if len(model["res_blocks"]) != 3 or len(model["dim_mults"]) != 3:
        raise ValueError("wgan_gp: model.dim_mults and model.res_blocks need 3 entries "
                         f"(one per 2x stage), got {model['dim_mults']} and {model['res_blocks']}")
    expected = model["channels"] * model["latent_dim_per_component"]
    if model["total_latent_dim"] != expected:
        raise ValueError(f"model.total_latent_dim ({model['total_latent_dim']}) must equal "
                         f"channels * latent_dim_per_component ({expected}); set it to null")


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
