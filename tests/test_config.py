"""Config utilities: loading, overrides, auto-completion and every validation error."""
import argparse

import pytest
import yaml

from src_new.pipeline.config import (PRECISIONS, apply_overrides, auto_complete_config, config_from_args,
                                  load_config, validate_config)


def base():
    return {"model": {"type": "wgan_gp", "latent_dim_per_component": 4, "lambda_gp": 10, "n_critic": 5}}


def resolve(cfg):
    return validate_config(auto_complete_config(cfg, verbose=False))


def test_shipped_configs_resolve():
    for name in ("wgan_gp_default", "wgan_gp_toy", "ddpm_default", "ddpm_toy"):
        cfg = resolve(load_config(name))          # resolves against configs/ by name
        assert cfg["model"]["channels"] == 5 and cfg["model"]["cond_dim"] == 2


def test_ddpm_objective_default_and_validation():
    assert resolve({"model": {"type": "ddpm"}})["model"]["objective"] == "pred_v"
    with pytest.raises(ValueError, match=r"model.objective = 'pred_x0': expected one of \['pred_v', 'pred_noise'\]"):
        resolve({"model": {"type": "ddpm", "objective": "pred_x0"}})


def test_auto_complete_derives_and_reports(capsys):
    cfg = auto_complete_config(base())
    assert cfg["model"]["channels"] == 5
    assert cfg["model"]["cond_dim"] == 2
    assert cfg["model"]["total_latent_dim"] == 20
    assert cfg["paths"]["output_dir"] == "outputs/wgan_gp/"
    out = capsys.readouterr().out
    assert "model.total_latent_dim = 20" in out and "model.channels = 5" in out


def test_default_config_has_the_standard_values():
    cfg = resolve(load_config("wgan_gp_default"))
    m, t = cfg["model"], cfg["training"]
    assert (m["lambda_gp"], m["n_critic"], m["cond_drop_prob"], m["dim"], m["dim_mults"]) == (10, 5, 0.1, 64, [1, 2, 4])
    assert (t["epochs"], t["batch_size"], t["lr_generator"], t["lr_critic"], t["beta1"], t["beta2"]) == \
        (1000, 64, 1e-4, 1e-4, 0.0, 0.9)
    assert (t["ema_decay"], t["ema_update_every"]) == (0.9999, 10)
    assert cfg["sampling"]["guidance_space"] == "style" and cfg["sampling"]["inpaint_steps"] == 100
    assert resolve({"model": {"type": "ddpm"}})["sampling"]["guidance_scale"] == 2.0   # each model its own


def test_overrides_are_yaml_typed():
    cfg = apply_overrides(base(), ["training.lr_critic=2e-4", "model.dim_mults=[1,2,2]", "training.overwrite=true"])
    assert cfg["training"]["lr_critic"] == 2e-4
    assert cfg["model"]["dim_mults"] == [1, 2, 2]
    assert cfg["training"]["overwrite"] is True
    with pytest.raises(ValueError, match="section.key=value"):
        apply_overrides(base(), ["epochs=3"])


def test_override_that_is_not_yaml_is_a_string(capsys):
    pattern = "{prefix}_{component}.png"       # YAML reads '{' as a mapping and fails
    cfg = apply_overrides(base(), [f"data.filename_pattern={pattern}", "data.prefix_column=name"])
    assert cfg["data"]["filename_pattern"] == pattern and cfg["data"]["prefix_column"] == "name"
    out = capsys.readouterr().out
    assert "data.filename_pattern" in out and "not valid YAML; taken as the string" in out
    assert "prefix_column" not in out           # valid YAML: no note
    assert resolve(cfg)["data"]["filename_pattern"] == pattern


def test_convenience_flags(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(base()))
    args = argparse.Namespace(config=str(path), overrides=["training.batch_size=16"], epochs=7, seed=3,
                              device="cpu", output_dir="o/", run_name=None, overwrite=False)
    cfg = config_from_args(args, verbose=False)
    assert (cfg["training"]["epochs"], cfg["training"]["seed"], cfg["training"]["device"]) == (7, 3, "cpu")
    assert cfg["training"]["batch_size"] == 16 and cfg["paths"]["output_dir"] == "o/"


@pytest.mark.parametrize("mutate, match", [
    (lambda c: c["model"].update(type="vae"), r"model.type = 'vae'.*\['ddpm', 'wgan_gp'\]"),
    (lambda c: c["model"].update(channels=4), r"model.channels \(4\) does not match len\(data.component_dirs\) \(5\)"),
    (lambda c: c["model"].pop("latent_dim_per_component"), r"requires model.latent_dim_per_component"),
    (lambda c: c["model"].pop("lambda_gp"), r"requires model.lambda_gp"),
    (lambda c: c["model"].pop("n_critic"), r"requires model.n_critic"),
    (lambda c: c["model"].update(image_size=[60, 32]), r"image_size = \[60, 32\].*divisible by 8"),
    (lambda c: c.setdefault("training", {}).update(lr_generator=0), r"training.lr_generator = 0: expected a finite number > 0"),
    (lambda c: c.setdefault("training", {}).update(lr_critic=-1e-4), r"training.lr_critic = -0.0001: expected a finite number > 0"),
    (lambda c: c.setdefault("training", {}).update(batch_size=0), r"training.batch_size = 0: expected a whole number in \[1, 65536\]"),
    (lambda c: c.setdefault("training", {}).update(epochs=-1), r"training.epochs = -1: expected a whole number >= 1"),
    (lambda c: c["model"].update(cond_drop_prob=1.5), r"model.cond_drop_prob = 1.5: expected a finite number in \[0, 1\]"),
    (lambda c: c["model"].update(lamda_gp=10), r"unknown key 'model.lamda_gp'.*Did you mean 'lambda_gp'"),
    (lambda c: c.setdefault("training", {}).update(n_epochs=3), r"unknown key 'training.n_epochs'.*Did you mean 'epochs'"),
    (lambda c: c.update(trainig={}), r"unknown config section 'trainig'.*Did you mean 'training'"),
    (lambda c: c["model"].update(cond_dim=3), r"model.cond_dim \(3\) does not match"),
    (lambda c: c.setdefault("data", {}).update(filename_pattern="x.png"), r"must contain '\{prefix\}'"),
    (lambda c: c["model"].update(cond_modulation=True, style_dim=64), r"model.cond_modulation needs model.style_dim = 0"),
    (lambda c: c["model"].update(lambda_cond=1, cond_planes="critic"), r"model.lambda_cond = 1 needs .*cond_planes none or generator"),
    (lambda c: c["model"].update(cond_planes="all"), r"model.cond_planes = 'all': expected one of \['none', 'generator', 'critic', 'both'\]"),
    (lambda c: (c["model"].update(lambda_size=1), c.setdefault("data", {}).update(condition_columns=[])), r"model.lambda_size = 1 needs condition columns"),
    (lambda c: (c["model"].update(lambda_rec=1, lambda_latent_kl=0.1, latent_kl="full", latent_dim_per_component=8),
                c.setdefault("training", {}).update(batch_size=32)), r"training.batch_size \(32\) must exceed the latent size"),
    (lambda c: c["model"].update(latent_kl="low_rank"), r"model.latent_kl = 'low_rank': expected one of \['diagonal', 'full', 'sample'\]"),
])
def test_validation_errors(mutate, match):
    cfg = base()
    mutate(cfg)
    with pytest.raises(ValueError, match=match):
        resolve(cfg)


def test_missing_config_file_lists_available():
    with pytest.raises(FileNotFoundError, match="wgan_gp_toy.yaml"):
        load_config("no_such_config")


def test_yaml_python_tag_is_refused(tmp_path):
    path = tmp_path / "evil.yaml"
    path.write_text("model: !!python/object/apply:os.system ['echo pwned > %s']\n" % (tmp_path / "pwned"))
    with pytest.raises(ValueError, match="not a valid \\(safe\\) YAML"):
        load_config(path)
    assert not (tmp_path / "pwned").exists()


def test_precision_is_validated_and_the_old_bf16_key_is_renamed(capsys):
    cfg = auto_complete_config(base())
    assert cfg["training"]["precision"] in PRECISIONS and cfg["sampling"]["precision"] in PRECISIONS
    bad = apply_overrides(base(), ["training.precision=fp16"])
    with pytest.raises(ValueError, match="training.precision = 'fp16'.*fp32"):
        validate_config(auto_complete_config(bad, verbose=False))
    for old, new in ((True, "bf16"), (False, "fp32")):   # configs stored in old checkpoints
        cfg = validate_config(auto_complete_config(apply_overrides(base(), [f"training.bf16={old}"])))
        assert cfg["training"]["precision"] == new and "bf16" not in cfg["training"]
        assert f"training.bf16 = {old} is now training.precision = {new}" in capsys.readouterr().out


@pytest.mark.parametrize("section, key, value, expected", [
    ("model", "dim", 8.5, "model.dim = 8.5: expected a whole number"),
    ("model", "lambda_gp", "10", "model.lambda_gp = '10': expected a finite number >= 0"),
    ("training", "seed", "abc", "training.seed = 'abc': expected a whole number"),
    ("data", "root_dir", None, "data.root_dir = None: expected a value"),
    ("data", "root_dir", 3, "data.root_dir = 3: expected a string"),
    ("model", "dim_mults", "124", "model.dim_mults = '124': expected a list of whole numbers"),
    ("model", "res_blocks", 2, "model.res_blocks = 2: expected a list of whole numbers"),
    ("model", "image_size", [100000, 100000], r"model.image_size = \[100000, 100000\]: .* in \[8, 4096\]"),
    ("model", "dim", 1e25, r"model.dim = 1e\+25: expected a whole number in \[1, 4096\]"),
    ("data", "filename_pattern", "{prefix}_{component}_{x}.png", "no other placeholder"),
    ("data", "test_fraction", 1.5, r"data.test_fraction = 1.5: expected a finite number in \(0, 1\)"),
    ("sampling", "guidance_scale", float("nan"), "sampling.guidance_scale = nan: expected a finite number"),
    ("training", "overwrite", "yes", "training.overwrite = 'yes': expected true or false"),
    ("model", "upsample", "bilinear", r"model.upsample = 'bilinear': expected one of \['transpose', 'nearest_conv'\]"),
])
def test_every_key_is_typed_and_bounded(section, key, value, expected):
    cfg = base()
    cfg.setdefault(section, {})[key] = value
    with pytest.raises(ValueError, match=expected):
        resolve(cfg)


def test_a_section_that_is_not_a_mapping_is_refused():
    with pytest.raises(ValueError, match="needs a 'model' section"):
        resolve({"model": [1, 2]})
    cfg = base()
    cfg["training"] = [1]
    with pytest.raises(ValueError, match="config section 'training' must be a mapping"):
        resolve(cfg)


def test_yaml_aliases_are_refused_before_they_expand(tmp_path):
    bomb = "a: &a [x, x, x, x, x, x, x, x, x]\n" + "".join(
        f"{n}: &{n} [*{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}]\n"
        for p, n in zip("abcdefgh", "bcdefghi"))
    path = tmp_path / "bomb.yaml"
    path.write_text("model: {type: wgan_gp}\nextra:\n" + "".join("  " + line + "\n" for line in bomb.splitlines()))
    with pytest.raises(ValueError, match="anchors and aliases"):
        load_config(path)
    with pytest.raises(ValueError, match="anchors and aliases"):
        apply_overrides(base(), ["model.dim_mults=&a [1, 2, 4]"])


def test_removed_keys_are_refused_in_yaml_and_dropped_from_stored_configs(tmp_path, capsys):
    path = tmp_path / "old.yaml"
    path.write_text(yaml.safe_dump({**base(), "training": {"optimizer": "adam"}}))
    with pytest.raises(ValueError, match=r"training.optimizer was removed \(Adam is the only optimizer\); delete it"):
        load_config(path)
    with pytest.raises(ValueError, match="training.fast was removed"):
        apply_overrides(base(), ["training.fast=false"])
    with pytest.raises(ValueError, match="evaluation.num_samples was removed"):
        apply_overrides(base(), ["evaluation.num_samples=10"])
    stored = {**base(), "training": {"fast": True, "optimizer": "adam"}, "evaluation": {"num_samples": 4000}}
    cfg = resolve(stored)                        # a config inside an older checkpoint still loads
    assert "fast" not in cfg["training"] and "num_samples" not in cfg["evaluation"]
    ddpm = resolve({"model": {"type": "ddpm"}, "sampling": {"inpaint_lr": 0.0, "restarts": 1}})
    assert "restarts" not in ddpm["sampling"]
    with pytest.raises(ValueError, match="unknown key 'sampling.restarts'"):
        validate_config(ddpm | {"sampling": {**ddpm["sampling"], "restarts": 1}})
