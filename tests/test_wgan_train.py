"""WGAN-GP training: conditions reach the losses, exact resume, checkpoints, divergence,
and the CLI end to end (train, resume, sample every mode without --model)."""
import json
import shutil

import numpy as np
from PIL import Image
import pandas as pd
import pytest
import torch

from src_new.models.wgan_gp.train import WGANGPTrainer
from src_new.utils.checkpoint import load_checkpoint
from src_new.pipeline.training import TrainingDiverged

from conftest import make_cfg, run_script, write_yaml


def read_losses(run_dir):
    return pd.read_csv(run_dir / "losses.csv")



def test_size_term_fits_the_datasets_conventions_and_trains(toy_root, tmp_path):
    trainer = WGANGPTrainer(make_cfg(toy_root, tmp_path, model={"lambda_size": 1.0}), verbose=False)
    # the toy data's columns are the union's bounding box, read from the train split
    assert trainer.model.size_conventions == [{"measure": "width", "slope": 1.0, "intercept": 0.0},
                                              {"measure": "height", "slope": 1.0, "intercept": 0.0}]
    real, cond = next(iter(trainer.loader))
    row = trainer.train_step(real, cond)
    assert np.isfinite(row["size_loss"]) and row["size_loss"] > 0


def test_size_term_refuses_columns_that_measure_nothing(toy_root, tmp_path):
    root = shutil.copytree(toy_root, tmp_path / "toy")
    table = pd.read_csv(root / "dimensions.csv", dtype={"matching": str})
    rng = np.random.default_rng(0)
    for column in ("width_px", "height_px"):
        table[column] = rng.permutation(table[column].to_numpy())   # no longer a size of its image
    table.to_csv(root / "dimensions.csv", index=False)
    cfg = make_cfg(root, tmp_path / "out", model={"lambda_size": 1.0})
    with pytest.raises(ValueError, match=r"lambda_size = 1.0: no condition column is a measurement.*lambda_size: 0"):
        WGANGPTrainer(cfg, verbose=False)

def test_conditions_reach_the_losses(tiny_cfg):
    trainer = WGANGPTrainer(tiny_cfg, verbose=False)
    batch = next(iter(trainer.loader))
    # default collate gives a list; one step's batch holds n_critic = 2 minibatches of 8
    assert isinstance(batch, list) and batch[1].shape == (16, 2)
    real, cond = batch
    state = {k: v.clone() for k, v in trainer.model.state_dict().items()}
    rows = []
    for c in (cond, cond.flip(0) + 1.0):                           # only the conditions differ
        trainer.model.load_state_dict(state)
        torch.manual_seed(0)
        rows.append(trainer.train_step(real, c))
    for key in ("critic_loss", "generator_loss", "wasserstein_distance"):
        assert rows[0][key] != rows[1][key], key


def test_exact_resume(toy_root, tmp_path):
    full = WGANGPTrainer(make_cfg(toy_root, tmp_path / "a", training={"epochs": 2}), verbose=False)
    full.run()
    first = WGANGPTrainer(make_cfg(toy_root, tmp_path / "b", training={"epochs": 1}), verbose=False)
    run_dir = first.run()
    ckpt_path = run_dir / "checkpoint_latest.pt"
    resumed = WGANGPTrainer(make_cfg(toy_root, tmp_path / "b", training={"epochs": 2}),
                            resume_state=load_checkpoint(ckpt_path), resume_path=ckpt_path, verbose=False)
    resumed.run()
    a, b = read_losses(full.run_dir), read_losses(run_dir)
    assert len(a) == len(b) == 4      # 32 samples, 2 minibatches of 8 per step: 2 steps per epoch
    cols = ["critic_loss", "generator_loss", "wasserstein_distance", "gradient_penalty"]
    assert np.array_equal(a[cols].to_numpy(), b[cols].to_numpy())
    for key in ("generator", "ema_generator", "critic", "encoder"):
        sa = getattr(full.model, key).state_dict()
        sb = getattr(resumed.model, key).state_dict()
        assert all(torch.equal(sa[k], sb[k]) for k in sa), key


def test_run_folder_contents_and_checkpoint_keys(tiny_cfg):
    trainer = WGANGPTrainer(tiny_cfg, verbose=False)
    initial = {k: v.clone() for k, v in trainer.model.ema_generator.state_dict().items()}
    run_dir = trainer.run()
    names = {p.name for p in run_dir.iterdir()}
    assert {"config.yaml", "losses.csv", "checkpoint_1.pt", "checkpoint_latest.pt", "samples_epoch_0001.png"} <= names
    ckpt = load_checkpoint(run_dir / "checkpoint_latest.pt")
    for key in ("encoder_state_dict", "generator_state_dict", "ema_generator_state_dict", "critic_state_dict",
                "g_optimizer_state_dict", "c_optimizer_state_dict", "epoch", "config", "e_optimizer_state_dict",
                "global_step", "rng_state", "cond_normalizer", "history"):
        assert key in ckpt, key
    assert ckpt["epoch"] == 1 and ckpt["global_step"] == 2
    log = read_losses(run_dir)
    assert list(log.columns[:6]) == ["step", "epoch", "critic_loss", "generator_loss", "wasserstein_distance",
                                     "gradient_penalty"]
    assert {"critic_grad_norm", "lr_generator", "lr_critic", "images_per_s"} <= set(log.columns)
    # the EMA really averaged (warm-up decay): it moved away from the initial weights (an EMA
    # that never updates fails here) and is not the live copy either
    assert trainer.ema.num_updates == 2
    ema, live = trainer.model.ema_generator.state_dict(), trainer.model.generator.state_dict()
    moved = [k for k in ema if ema[k].is_floating_point() and not torch.equal(ema[k], initial[k])]
    assert len(moved) > len(ema) // 2, f"EMA weights unchanged after 2 updates: {set(ema) - set(moved)}"
    assert any(not torch.equal(ema[k], live[k]) for k in ema)


def test_ema_equals_the_closed_form():
    """EMA over a known sequence of weights: e_n = d_n e_{n-1} + (1 - d_n) w_n with the warm-up
    decay d_n = min(decay, (1 + n) / (10 + n)), n = averaging updates before this one, applied
    every ``update_every`` calls; unrolled, e = prod(d) e_0 + sum_j (1 - d_j) prod_{k>j} d_k w_j."""
    from src_new.utils.ema import EMA

    net = torch.nn.Linear(1, 1, bias=False)
    with torch.no_grad():
        net.weight.fill_(0.0)
    ema = EMA(net, decay=0.5, update_every=2)
    values = [1.0, 2.0, 4.0, 8.0, 16.0, 32.0]
    for v in values:
        with torch.no_grad():
            net.weight.fill_(v)
        ema.update()
    seen = values[1::2]                                      # every 2nd call averages: 2, 8, 32
    decays = [min(0.5, (1 + n) / (10 + n)) for n in range(len(seen))]   # 0.1, 2/11, 0.25
    expected = sum((1 - d) * w * np.prod(decays[j + 1:]) for j, (d, w) in enumerate(zip(decays, seen)))
    assert ema.num_updates == 3 and ema.step == 6
    assert ema.model.weight.item() == pytest.approx(expected, rel=1e-6)
    assert expected == pytest.approx(0.9 * 2 * (2 / 11) * 0.25 + (9 / 11) * 8 * 0.25 + 0.75 * 32)


def test_existing_run_folder_is_not_overwritten(tiny_cfg):
    WGANGPTrainer(tiny_cfg, verbose=False).run()
    with pytest.raises(FileExistsError, match="already exists.*--overwrite"):
        WGANGPTrainer(tiny_cfg, verbose=False)


def test_learning_rate_override_on_resume(toy_root, tmp_path):
    run_dir = WGANGPTrainer(make_cfg(toy_root, tmp_path), verbose=False).run()
    path = run_dir / "checkpoint_latest.pt"
    cfg = make_cfg(toy_root, tmp_path, training={"epochs": 2, "lr_generator": 1e-5, "lr_critic": 3e-4})
    trainer = WGANGPTrainer(cfg, resume_state=load_checkpoint(path), resume_path=path, verbose=False)
    assert trainer.opt_g.param_groups[0]["lr"] == 1e-5 and trainer.opt_c.param_groups[0]["lr"] == 3e-4
    trainer.run()
    assert read_losses(run_dir)["lr_generator"].iloc[-1] == pytest.approx(1e-5)


def inject_nan(trainer, at_step):
    """Make the critic loss NaN once, at global step ``at_step``."""
    original, fired = trainer.model.critic_step, []

    def critic_step(real, cond=None, noise=None):
        out = original(real, cond, noise)
        if trainer.step + 1 == at_step and not fired:
            fired.append(True)
            out["critic_loss"] = out["critic_loss"] * float("nan")
        return out
    trainer.model.critic_step = critic_step


def test_nan_stops_with_clear_message_and_intact_checkpoint(toy_root, tmp_path):
    trainer = WGANGPTrainer(make_cfg(toy_root, tmp_path, training={"epochs": 3}), verbose=False)
    inject_nan(trainer, at_step=3)                 # in epoch 2 (2 steps per epoch)
    with pytest.raises(TrainingDiverged, match=r"critic_loss is nan.*last good checkpoint is .*checkpoint_latest.pt"):
        trainer.run()
    ckpt = load_checkpoint(trainer.run_dir / "checkpoint_latest.pt")
    assert ckpt["epoch"] == 1
    assert all(torch.isfinite(v).all() for v in ckpt["generator_state_dict"].values())


def test_rollback_halves_learning_rates_and_continues(toy_root, tmp_path):
    cfg = make_cfg(toy_root, tmp_path, training={"epochs": 2, "on_divergence": "rollback"})
    trainer = WGANGPTrainer(cfg, verbose=False)
    inject_nan(trainer, at_step=3)
    trainer.run()
    assert trainer.epoch == 2 and trainer.rollbacks == 1
    assert trainer.opt_g.param_groups[0]["lr"] == pytest.approx(cfg["training"]["lr_generator"] / 2)
    assert "rollback 1" in (trainer.run_dir / "events.log").read_text()


def test_exploding_gradient_norm_counts_as_divergence(toy_root, tmp_path):
    cfg = make_cfg(toy_root, tmp_path, training={"max_grad_norm": 1e-6})
    with pytest.raises(TrainingDiverged, match="critic_grad_norm .* exceeds training.max_grad_norm"):
        WGANGPTrainer(cfg, verbose=False).run()


def test_batch_larger_than_dataset(toy_root, tmp_path):
    with pytest.raises(ValueError, match=r"2 minibatches of training.batch_size = 64 are larger than the "
                                         r"training split \(32 samples\)"):
        WGANGPTrainer(make_cfg(toy_root, tmp_path, training={"batch_size": 64}), verbose=False)


def test_cli_train_resume_and_sample_all_modes(toy_root, tmp_path):
    cfg_path = write_yaml(make_cfg(toy_root, tmp_path / "out"), tmp_path / "tiny.yaml")
    run_script("train.py", "--model", "wgan_gp", "--config", cfg_path, "--run_name", "cli")
    run_dir = tmp_path / "out" / "cli"
    assert (run_dir / "checkpoint_1.pt").exists()
    proc = run_script("train.py", "--resume", run_dir / "checkpoint_latest.pt", "--epochs", 2)
    assert (run_dir / "checkpoint_2.pt").exists() and len(read_losses(run_dir)) == 4, proc.stdout
    ckpt = run_dir / "checkpoint_latest.pt"
    for mode, extra in (("unconditional", []), ("conditional", ["--guidance_scale", 2]),
                        ("inpainting", ["--components", "fpu", "group_nc"]), ("interpolate", [])):
        out = tmp_path / "samples" / mode
        run_script("sample.py", "--checkpoint", ckpt, "--mode", mode, "--num_samples", 6, "--out", out, *extra)
        manifest = json.loads((out / "manifest.json").read_text())
        assert manifest["mode"] == mode and manifest["model"] == "wgan_gp" and manifest["seed"] == 0
        data = np.load(out / "samples.npz")
        assert data["images"].shape[1:] == (5, 64, 32) and (out / "grid.png").exists()
        if mode == "inpainting":
            mask = data["mask"].astype(bool)
            assert np.array_equal(data["images"][mask], data["ground_truth"][mask])
            triplets = Image.open(out / "triplets.png")          # given | completed | truth per sample
            assert triplets.size[0] in {(3 * (tile + 2) + 2) * 2 for tile in (32, 64)}     # mirrored or not
            assert triplets.size[1] == (6 * (64 + 2) + 2) * 2 + 2 * 28                      # a row per sample
        if mode == "conditional":
            assert data["conditions"].shape == (6, 2) and data["condition_index"].tolist() == list(range(6))
            assert manifest["options"]["per_condition"] == 1 and manifest["options"]["guidance_scale"] == 2
        if mode == "inpainting":       # the WGAN-GP applies every inpainting option; none is left out
            assert manifest["options"]["restarts"] == 2 and manifest["not_applied"] == {}
        if mode == "unconditional":
            assert "guidance_scale" not in manifest["options"]
        if mode == "interpolate":
            assert data["latent_sweep"].shape[:2] == (10, 6) and (out / "latent_sweep.png").exists()
    # same seed, same samples; a second run into the same folder refuses
    again = tmp_path / "samples" / "again"
    run_script("sample.py", "--checkpoint", ckpt, "--mode", "unconditional", "--num_samples", 6, "--out", again)
    assert np.array_equal(np.load(again / "samples.npz")["images"],
                          np.load(tmp_path / "samples" / "unconditional" / "samples.npz")["images"])
    proc = run_script("sample.py", "--checkpoint", ckpt, "--mode", "unconditional", "--out", again, check=False)
    assert proc.returncode != 0 and "--overwrite" in proc.stderr


def test_cli_errors(toy_root, tmp_path):
    proc = run_script("train.py", "--model", "gan", "--config", "wgan_gp_toy", check=False)
    assert proc.returncode != 0 and "available models: ['ddpm', 'wgan_gp']" in proc.stderr
    cfg_path = write_yaml(make_cfg(toy_root, tmp_path), tmp_path / "tiny.yaml")
    proc = run_script("train.py", "--config", cfg_path, "--set", "model.lamda_gp=3", check=False)
    assert proc.returncode != 0 and "Did you mean 'lambda_gp'" in proc.stderr
    proc = run_script("sample.py", "--checkpoint", tmp_path / "none.pt", check=False)
    assert proc.returncode != 0 and "checkpoint not found" in proc.stderr
    for script in ("train.py", "sample.py"):
        assert "--help" in run_script(script, "--help").stdout


def test_critic_overfitting_figures_use_the_test_split_and_reach_the_curves(toy_root, tmp_path):
    """Each evaluation logs the critic's mean score on training and on held-back test images,
    their gap and ADA's r_t; the test figure is the critic's mean over the test split, and the
    two scores share one panel of curves.png."""
    from src_new.utils.plots import plot_runs

    cfg = make_cfg(toy_root, tmp_path / "out", training={"epochs": 2, "run_name": "o"})
    trainer = WGANGPTrainer(cfg, verbose=False)
    run = trainer.run()
    last = trainer.history[-1]
    for key in ("critic_score_train", "critic_score_test", "critic_train_test_gap", "critic_sign_rt"):
        assert key in last and np.isfinite(last[key]), key
    test = trainer.data["test"]
    m = len(test) // 4 * 4                                              # whole minibatch-std groups
    with torch.no_grad():
        expected = trainer.model.critic(test.images_float[:m], test.conditions[:m]).mean()
    assert last["critic_score_test"] == pytest.approx(float(expected), rel=1e-4, abs=1e-5)
    assert last["critic_train_test_gap"] == pytest.approx(last["critic_score_train"] - last["critic_score_test"])
    assert -1 <= last["critic_sign_rt"] <= 1
    with torch.no_grad():                                               # centred on the test images' median
        n = len(trainer.train_set) // 4 * 4
        train_scores = trainer.model.critic(trainer.train_set.images_float[:n], trainer.train_set.conditions[:n])
        test_scores = trainer.model.critic(test.images_float[:m], test.conditions[:m])
    assert last["critic_sign_rt"] == pytest.approx(float((train_scores - test_scores.median()).sign().mean()))
    fig = plot_runs([run], histories=[trainer.history])
    panel = next(ax for ax in fig.axes if ax.get_title() == "critic score: train vs test (evaluation)")
    assert len(panel.get_lines()) == 2
