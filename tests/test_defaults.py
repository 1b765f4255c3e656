"""One source for every default and every set of choices: the schema in pipeline/config.py.
Shipped YAML files list only what differs from it (each with a reason), the API's keyword
defaults and the CLIs' defaults agree with it, and the CLIs offer the schema's choices."""
import argparse
import inspect
import re

import pytest
import yaml

from src_new.models.ddpm import GaussianDiffusion, UNet
from src_new.models.wgan_gp import ConditionalFlowPrior, Critic, Encoder, Generator, WGANGP
from src_new.pipeline.config import CHOICES, REQUIRED, add_config_args, defaults_for, schema_for
from src_new.pipeline.sampling import add_sampling_args

from conftest import ROOT

# (callable, parameter) -> the schema key its default must equal
SIGNATURE_DEFAULTS = {
    (WGANGP.__init__, "cond_drop_prob"): ("wgan_gp", "model.cond_drop_prob"),
    (WGANGP.__init__, "critic_null_condition"): ("wgan_gp", "model.critic_null_condition"),
    (WGANGP.__init__, "lambda_ms"): ("wgan_gp", "model.lambda_ms"),
    (WGANGP.__init__, "lambda_cond"): ("wgan_gp", "model.lambda_cond"),
    (WGANGP.__init__, "lambda_rec"): ("wgan_gp", "model.lambda_rec"),
    (WGANGP.__init__, "lambda_latent_kl"): ("wgan_gp", "model.lambda_latent_kl"),
    (WGANGP.__init__, "latent_kl"): ("wgan_gp", "model.latent_kl"),
    (WGANGP.__init__, "lambda_rec_adv"): ("wgan_gp", "model.lambda_rec_adv"),
    (WGANGP.__init__, "lambda_euler"): ("wgan_gp", "model.lambda_euler"),
    (WGANGP.__init__, "euler_gap"): ("wgan_gp", "model.euler_gap"),
    (WGANGP.__init__, "lambda_size"): ("wgan_gp", "model.lambda_size"),
    (WGANGP.__init__, "critic_input"): ("wgan_gp", "model.critic_input"),
    (WGANGP.__init__, "augment_p"): ("wgan_gp", "model.augment_p"),
    (WGANGP.__init__, "augment_policy"): ("wgan_gp", "model.augment_policy"),
    (WGANGP.encoder_loss, "mask_prob"): ("wgan_gp", "training.encoder_mask_prob"),
    (WGANGP.encoder_loss, "latent_weight"): ("wgan_gp", "training.encoder_latent_weight"),
    (WGANGP.sample, "truncation_psi"): ("wgan_gp", "sampling.truncation_psi"),
    (WGANGP.sample, "prior"): ("wgan_gp", "sampling.prior"),
    (WGANGP.inpaint, "num_steps"): ("wgan_gp", "sampling.inpaint_steps"),
    (WGANGP.inpaint, "lr"): ("wgan_gp", "sampling.inpaint_lr"),
    (WGANGP.inpaint, "restarts"): ("wgan_gp", "sampling.restarts"),
    (WGANGP.inpaint, "loss"): ("wgan_gp", "sampling.inpaint_loss"),
    (WGANGP.inpaint, "prior_weight"): ("wgan_gp", "sampling.inpaint_prior_weight"),
    (WGANGP.inpaint, "lr_schedule"): ("wgan_gp", "sampling.inpaint_lr_schedule"),
    (WGANGP.inpaint, "noise"): ("wgan_gp", "sampling.inpaint_noise"),
    (Generator.__init__, "dim"): ("wgan_gp", "model.dim"),
    (Generator.__init__, "dim_mults"): ("wgan_gp", "model.dim_mults"),
    (Generator.__init__, "res_blocks"): ("wgan_gp", "model.res_blocks"),
    (Generator.__init__, "bottleneck_res_blocks"): ("wgan_gp", "model.bottleneck_res_blocks"),
    (Generator.__init__, "upsample"): ("wgan_gp", "model.upsample"),
    (Generator.__init__, "style_dim"): ("wgan_gp", "model.style_dim"),
    (Generator.__init__, "mapping_layers"): ("wgan_gp", "model.mapping_layers"),
    (Generator.__init__, "cond_modulation"): ("wgan_gp", "model.cond_modulation"),
    (Critic.__init__, "dim"): ("wgan_gp", "model.critic_dim"),
    (Critic.__init__, "spectral_norm"): ("wgan_gp", "model.spectral_norm"),
    (Critic.__init__, "cond_mode"): ("wgan_gp", "model.critic_cond"),
    (Critic.__init__, "minibatch_std_group"): ("wgan_gp", "model.minibatch_std_group"),
    (Critic.__init__, "patch_weight"): ("wgan_gp", "model.critic_patch_weight"),
    (Encoder.__init__, "dim"): ("wgan_gp", "model.encoder_dim"),
    (ConditionalFlowPrior.__init__, "num_layers"): ("wgan_gp", "model.flow_layers"),
    (ConditionalFlowPrior.__init__, "hidden"): ("wgan_gp", "model.flow_hidden"),
    (GaussianDiffusion.__init__, "timesteps"): ("ddpm", "model.timesteps"),
    (GaussianDiffusion.__init__, "cond_drop_prob"): ("ddpm", "model.cond_drop_prob"),
    (GaussianDiffusion.__init__, "objective"): ("ddpm", "model.objective"),
    (GaussianDiffusion.sample, "sampler"): ("ddpm", "sampling.sampler"),
    (GaussianDiffusion.inpaint, "num_steps"): ("ddpm", "sampling.inpaint_steps"),
    (GaussianDiffusion.inpaint, "resample"): ("ddpm", "sampling.repaint_resample"),
    (UNet.__init__, "dim"): ("ddpm", "model.dim"),
    (UNet.__init__, "dim_mults"): ("ddpm", "model.dim_mults"),
    (UNet.__init__, "res_blocks"): ("ddpm", "model.res_blocks"),
    (UNet.__init__, "attn_resolutions"): ("ddpm", "model.attn_resolutions"),
    (UNet.__init__, "dropout"): ("ddpm", "model.dropout"),
}
# Keyword defaults that mean "off" in the Python API, whatever the config's choice: a notebook
# call samples unguided unless asked (the CLI's default is the config's sampling.guidance_scale).
OFF_DEFAULTS = {(WGANGP.sample, "guidance_scale"): 0.0, (WGANGP.sample, "candidates"): 1,
                (GaussianDiffusion.sample, "guidance_scale"): 0.0,
                (GaussianDiffusion.inpaint, "guidance_scale"): 0.0}


def default(model_type, dotted):
    section, key = dotted.split(".")
    return defaults_for(model_type)[section][key]


@pytest.mark.parametrize("fn, param", list(SIGNATURE_DEFAULTS), ids=lambda x: getattr(x, "__qualname__", x))
def test_signature_defaults_are_the_schemas(fn, param):
    model_type, dotted = SIGNATURE_DEFAULTS[(fn, param)]
    value = inspect.signature(fn).parameters[param].default
    expected = default(model_type, dotted)
    assert (list(value) if isinstance(value, tuple) else value) == expected, \
        f"{fn.__qualname__}({param}={value!r}) but the schema's {dotted} = {expected!r}"


def test_off_defaults_are_off():
    for (fn, param), off in OFF_DEFAULTS.items():
        assert inspect.signature(fn).parameters[param].default == off


def config_lines(path):
    """(section, key, value, comment) of each key line of a shipped YAML config."""
    cfg = yaml.safe_load(path.read_text())
    section = None
    for line in path.read_text().splitlines():
        if re.match(r"^\w+:\s*$", line):
            section = line.rstrip(":").strip()
        elif re.match(r"^\s+\w+:", line):
            key = line.split(":", 1)[0].strip()
            yield section, key, cfg[section][key], line.split("#", 1)[1].strip() if "#" in line else ""


@pytest.mark.parametrize("path", sorted((ROOT / "configs").glob("*.yaml")), ids=lambda p: p.name)
def test_shipped_configs_list_only_what_differs_from_the_schema(path):
    model_type = yaml.safe_load(path.read_text())["model"]["type"]
    defaults = defaults_for(model_type)
    for section, key, value, comment in config_lines(path):
        if (section, key) == ("model", "type"):
            continue
        assert key in defaults[section], f"{path.name}: {section}.{key} is not a schema key"
        assert value != defaults[section][key], \
            f"{path.name}: {section}.{key} = {value!r} restates the schema's default; delete the line"
        assert comment, f"{path.name}: {section}.{key} differs from the schema without a reason (# comment)"
    required = [f"model.{k}" for k, v in defaults["model"].items() if v is REQUIRED and k != "type"]
    given = yaml.safe_load(path.read_text())["model"]
    assert all(k.split(".")[1] in given for k in required), (path.name, required)


def test_cli_defaults_leave_the_choice_to_the_config_and_offer_the_schemas_choices():
    sample = add_sampling_args(argparse.ArgumentParser())
    schema = schema_for("wgan_gp")["sampling"] | schema_for("ddpm")["sampling"]
    actions = {a.dest: a for a in sample._actions}
    shared = sorted(set(actions) & set(schema))
    assert len(shared) >= 10
    for dest in shared:
        assert actions[dest].default is None, f"sample.py --{dest} has its own default; the config's applies"
        if schema[dest].choices:
            assert tuple(actions[dest].choices) == CHOICES[schema[dest].choices], dest
    train = {a.dest: a for a in add_config_args(argparse.ArgumentParser())._actions}
    for dest in ("epochs", "seed", "device", "output_dir", "run_name"):
        assert train[dest].default is None, f"train.py --{dest} has its own default"


def test_every_choice_set_is_used_by_the_schema_or_a_cli():
    used = {key.choices for model in ("wgan_gp", "ddpm") for keys in schema_for(model).values()
            for key in keys.values() if key.choices}
    # sample.py --postprocess has no config key; training.device also takes cuda:<index>
    assert set(CHOICES) - used == {"postprocess", "device"}
