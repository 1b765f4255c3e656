"""WGAN-GP training phases (gan | encoder | flow): each trains only its networks; the flow
prior's checkpoint key (old checkpoints still load); gradient clipping; TensorBoard events;
the likelihood evaluation and sample.py --prior flow end to end."""
import json
import shutil
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from src_new.evaluation.likelihood import auroc, batched, likelihood_report, shift_component
from src_new.models.wgan_gp.sample import load_model_from_checkpoint
from src_new.models.wgan_gp.train import WGANGPTrainer
from src_new.utils.checkpoint import load_checkpoint, save_checkpoint
from src_new.pipeline.training import TensorBoard, clip_gradients, grad_norm

from conftest import make_cfg, run_script

FROZEN = {"flow": ("encoder", "generator", "ema_generator", "critic"),
          "encoder": ("generator", "ema_generator", "critic", "flow")}


@pytest.fixture(scope="module")
def gan_checkpoint(toy_root, tmp_path_factory):
    """One gan-phase epoch of the tiny model -> its checkpoint_latest.pt."""
    out = tmp_path_factory.mktemp("phases")
    run_dir = WGANGPTrainer(make_cfg(toy_root, out), verbose=False).run()
    return run_dir / "checkpoint_latest.pt"


def resume(toy_root, ckpt_path, **training):
    out = ckpt_path.parent.parent
    cfg = make_cfg(toy_root, out, training={"run_name": ckpt_path.parent.name, **training})
    return WGANGPTrainer(cfg, resume_state=load_checkpoint(ckpt_path), resume_path=ckpt_path, verbose=False)


def copy_run(ckpt_path, tmp_path, drop=()):
    """A copy of the run folder (its checkpoint optionally without some keys)."""
    run_dir = Path(shutil.copytree(ckpt_path.parent, tmp_path / "outputs" / "copy"))
    ckpt = load_checkpoint(ckpt_path)
    for key in drop:
        ckpt.pop(key)
    return save_checkpoint(ckpt, run_dir / "checkpoint_latest.pt")


@pytest.mark.parametrize("phase", ["flow", "encoder"])
def test_a_phase_trains_only_its_network(toy_root, gan_checkpoint, tmp_path, phase):
    ckpt_path = copy_run(gan_checkpoint, tmp_path)
    before = load_checkpoint(ckpt_path)
    trainer = resume(toy_root, ckpt_path, phase=phase, epochs=1)   # 1 epoch of this phase
    trainer.run()
    after = load_checkpoint(ckpt_path)
    assert after["epoch"] == 2 and after["phase"] == {"name": phase, "start_epoch": 1}
    for name in FROZEN[phase]:                                       # bit-identical
        a, b = before[f"{name}_state_dict"], after[f"{name}_state_dict"]
        assert all(torch.equal(a[k], b[k]) for k in a), name
    trained = "flow" if phase == "flow" else "encoder"
    a, b = before[f"{trained}_state_dict"], after[f"{trained}_state_dict"]
    assert any(not torch.equal(a[k], b[k]) for k in a if a[k].is_floating_point())
    assert after["ema_state"] == before["ema_state"]
    log = pd.read_csv(ckpt_path.parent / f"losses_{phase}.csv")
    assert len(log) == 4 and log["epoch"].eq(2).all()
    # the gan phase's log is untouched (32 samples, n_critic = 2 minibatches of 8 per step: 2 steps)
    assert len(pd.read_csv(ckpt_path.parent / "losses.csv")) == 2
    if phase == "flow":
        assert np.isfinite(log["flow_nll"]).all()
        nll = after["history"][-1]
        # the fitted flow beats N(0, I) on held-out latents (nats per dimension)
        assert nll["test_flow_nll"] < nll["test_normal_nll"], nll
        assert (ckpt_path.parent / "samples_epoch_0002_flow.png").exists()
    # the same phase again: training.epochs counts from the phase's start, so nothing to do
    again = resume(toy_root, ckpt_path, phase=phase, epochs=1)
    assert again.end_epoch == 2
    again.run()
    assert load_checkpoint(ckpt_path)["global_step"] == after["global_step"]


def test_flow_prior_sampling_and_likelihood(toy_root, gan_checkpoint, tmp_path):
    ckpt_path = copy_run(gan_checkpoint, tmp_path)
    model, _ = load_model_from_checkpoint(ckpt_path)
    cond = torch.randn(6, 2)
    with pytest.raises(ValueError, match="untrained.*training.phase=flow"):
        model.sample(cond=cond, prior="flow")
    with pytest.raises(ValueError, match="untrained"):
        model.log_likelihood(torch.rand(6, 5, 64, 32), cond)
    trainer = resume(toy_root, ckpt_path, phase="flow", epochs=1)
    trainer.run()
    model, _ = load_model_from_checkpoint(ckpt_path)
    gen = lambda: torch.Generator().manual_seed(0)
    x = model.sample(cond=cond, prior="flow", generator=gen())
    assert x.shape == (6, 5, 64, 32) and 0 <= x.min() and x.max() <= 1
    assert torch.equal(x, model.sample(cond=cond, prior="flow", generator=gen()))
    assert not torch.equal(x, model.sample(cond=cond, generator=gen()))          # not N(0, I)
    with pytest.raises(ValueError, match="prior must be"):
        model.sample(cond=cond, prior="gauss")
    ll = model.log_likelihood(x, cond)
    assert ll.shape == (6,) and torch.isfinite(ll).all()
    with torch.no_grad():
        z = model.encoder(x, None, cond)
    assert torch.allclose(ll, model.flow.log_prob(z, cond), atol=1e-5)
    normal = model.log_likelihood(x, cond, prior="normal")
    assert torch.allclose(normal, torch.distributions.Normal(0.0, 1.0).log_prob(z).sum(1), atol=1e-4)
    # an encoder update makes the flow stale: it must be refitted before use
    assert int(trainer.model.flow.fitted) == 1
    trainer.encoder_step(*next(iter(trainer.loader)))
    assert int(trainer.model.flow.fitted) == 0
    with pytest.raises(ValueError, match="stale"):
        trainer.model.log_likelihood(x.clone(), cond)


def test_old_checkpoint_without_flow_still_loads_and_fits(toy_root, gan_checkpoint, tmp_path, capsys):
    ckpt_path = copy_run(gan_checkpoint, tmp_path, drop=("flow_state_dict", "f_optimizer_state_dict", "phase"))
    model, _ = load_model_from_checkpoint(ckpt_path)
    assert int(model.flow.fitted) == 0
    trainer = resume(toy_root, ckpt_path, phase="flow", epochs=1)
    assert trainer.phase_start == 1
    trainer.run()
    assert int(load_model_from_checkpoint(ckpt_path)[0].flow.fitted) == 1


def test_clip_gradients_bounds_the_norm():
    net = torch.nn.Linear(10, 10)
    net(torch.randn(4, 10)).pow(2).sum().mul(100).backward()
    before = grad_norm(net.parameters())
    assert before > 1
    assert clip_gradients(net.parameters(), None) == (pytest.approx(before), 0)        # off: untouched
    assert grad_norm(net.parameters()) == pytest.approx(before)
    norm, clipped = clip_gradients(net.parameters(), 0.5)
    assert norm == pytest.approx(before) and clipped == 1
    assert grad_norm(net.parameters()) <= 0.5 * (1 + 1e-5)
    assert clip_gradients(net.parameters(), 10 * before)[1] == 0


def test_trainer_clips_every_network_and_logs_it(toy_root, tmp_path):
    cfg = make_cfg(toy_root, tmp_path / "outputs", training={"grad_clip_norm": 1e-3})
    trainer = WGANGPTrainer(cfg, verbose=False)
    real, cond = next(iter(trainer.loader))
    row = trainer.train_step(real, cond)
    m = trainer.model
    assert row["critic_clipped"] == m.n_critic and row["generator_clipped"] == 1 and row["encoder_clipped"] == 1
    assert row["generator_grad_norm"] > 1e-3                         # the logged norm is before clipping
    for net in (m.generator, m.critic, m.encoder):                   # the gradients the optimizer used
        assert grad_norm(net.parameters()) <= 1e-3 * (1 + 1e-4)
    trainer.tcfg["grad_clip_norm"] = None                            # off (the default)
    row = trainer.train_step(real, cond)
    assert row["critic_clipped"] == row["generator_clipped"] == row["encoder_clipped"] == 0


def test_tensorboard_events_hold_every_logged_column(toy_root, tmp_path, gan_checkpoint):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    cfg = make_cfg(toy_root, tmp_path / "outputs", logging={"tensorboard": True})
    run_dir = WGANGPTrainer(cfg, verbose=False).run()
    events = EventAccumulator(str(run_dir / "tensorboard"))
    events.Reload()
    log = pd.read_csv(run_dir / "losses.csv")
    columns = [c for c in log.columns if c != "step" and log[c].notna().any()]   # (mode seeking is off)
    assert set(events.Tags()["scalars"]) == set(columns)
    for column in columns:
        scalars = events.Scalars(column)
        assert [s.step for s in scalars] == log["step"].tolist()
        assert np.allclose([s.value for s in scalars], log[column], rtol=1e-5, atol=1e-6), column
    assert "samples" in events.Tags()["images"]
    assert not (gan_checkpoint.parent / "tensorboard").exists()     # off by default


def test_tensorboard_missing_gives_a_clear_error(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "torch.utils.tensorboard", None)   # import fails
    with pytest.raises(ImportError, match="pip install tensorboard"):
        TensorBoard(tmp_path / "tb", enabled=True)
    TensorBoard(tmp_path / "tb", enabled=False).log({"a": 1.0}, 1)      # disabled: a silent no-op


def test_auroc_and_corruption():
    assert auroc([2, 3], [0, 1]) == 1.0 and auroc([0, 1], [2, 3]) == 0.0
    assert auroc([1, 1], [1, 1]) == 0.5
    rng = np.random.default_rng(0)
    a, b = rng.normal(1, 1, 300), rng.normal(0, 1, 200)
    assert auroc(a, b) == pytest.approx(np.mean([[x > y for y in b] for x in a]))
    with pytest.raises(ValueError, match="NaN"):
        auroc([np.nan], [0])
    images = (rng.random((20, 5, 16, 8)) > 0.5).astype(np.float32)
    images[:, :, :3] = images[:, :, -3:] = images[:, :, :, :3] = images[:, :, :, -3:] = 0   # room to move
    bad, comps = shift_component(images, rng)
    for i, c in enumerate(comps):
        others = [j for j in range(5) if j != c]
        assert np.array_equal(bad[i, others], images[i, others])
        assert not np.array_equal(bad[i, c], images[i, c])
        assert bad[i, c].sum() == images[i, c].sum()                  # moved, not cut
        moved = [np.array_equal(bad[i, c], np.roll(images[i, c], s, axis=a)) for s in (3, -3) for a in (0, 1)]
        assert sum(moved) == 1


def test_likelihood_report_separates_what_the_score_sees():
    """A score that knows the true condition (the mean pixel) and the true layout separates
    real from shuffled conditions and from shifted components; N(0, I)-like scores that ignore
    the condition sit at 0.5 for shuffled conditions."""
    rng = np.random.default_rng(1)
    images = np.zeros((60, 2, 16, 8), np.float32)
    for i in range(60):
        images[i, :, 4:4 + i % 8 + 2, 2:6] = 1
    cond = images.mean((1, 2, 3))[:, None]
    template = images.mean(0)

    def score(x, c):
        return -np.abs(x.mean((1, 2, 3))[:, None] - c).sum(1) * 100 - np.abs(x - template).sum((1, 2, 3)) * 0.01

    blind = lambda x, c: -np.abs(x - template).sum((1, 2, 3))
    report = likelihood_report({"good": score, "blind": blind}, images, cond, dims=4, seed=0)
    assert report["good"]["auroc_shuffled_conditions"] > 0.8
    assert report["blind"]["auroc_shuffled_conditions"] == 0.5
    assert report["good"]["nll_per_dim"] == pytest.approx(-report["good"]["mean_log_likelihood"] / 4)
    assert report["good"]["auroc_corrupted"] > 0.8 and report["blind"]["auroc_corrupted"] > 0.8
    unconditional = likelihood_report({"s": blind}, images, None)["s"]
    assert "auroc_corrupted" in unconditional and "auroc_shuffled_conditions" not in unconditional


def test_batched_score_equals_one_pass_over_numpy_arrays():
    rng = np.random.default_rng(0)
    images, cond = rng.random((7, 2, 4, 4), dtype=np.float32), rng.random((7, 3), dtype=np.float32)
    fn = lambda x, c, scale=1.0: scale * (x.flatten(1).sum(1) + (0 if c is None else c.sum(1)))
    whole = fn(torch.from_numpy(images), torch.from_numpy(cond), scale=2.0).numpy()
    score = batched(fn, batch=3, scale=2.0)
    assert score(images, cond).shape == (7,) and np.allclose(score(images, cond), whole)
    assert np.allclose(score(images, None), 2.0 * images.reshape(7, -1).sum(1))


def test_cli_flow_phase_sample_and_likelihood(toy_root, gan_checkpoint, tmp_path):
    ckpt_path = copy_run(gan_checkpoint, tmp_path)
    run_script("train.py", "--resume", ckpt_path, "--set", "training.phase=flow", "--epochs", "1")
    out = tmp_path / "flow_samples"
    run_script("sample.py", "--checkpoint", ckpt_path, "--mode", "conditional", "--prior", "flow",
               "--num_samples", 8, "--out", out)
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["model_options"]["prior"] == "flow" and manifest["num_samples"] == 8
    report = tmp_path / "likelihood.json"
    proc = run_script("evaluate.py", "--likelihood", ckpt_path, "--out", report)
    result = json.loads(report.read_text())
    assert {"flow", "normal"} <= set(result["scores"])
    for values in result["scores"].values():
        assert 0 <= values["auroc_corrupted"] <= 1 and 0 <= values["auroc_shuffled_conditions"] <= 1
    assert "auroc_corrupted" in proc.stdout


def test_joint_flow_tracks_the_encoder(toy_root, tmp_path):
    """training.flow_every: the gan phase updates the flow by the NLL of the encoder's latents
    of the step's first minibatch (the gradient reaches the flow, never the encoder or the
    generator), and the flow stays fitted although the reach term moves the encoder."""
    cfg = make_cfg(toy_root, tmp_path, model={"lambda_rec": 1.0}, training={"flow_every": 1})
    trainer = WGANGPTrainer(cfg, verbose=False)
    m = trainer.model
    real, cond = next(iter(trainer.loader))
    encoder_before = {k: v.clone() for k, v in m.encoder.state_dict().items()}
    row = trainer.train_step(real, cond)
    assert int(m.flow.fitted) == 1 and np.isfinite(row["flow_nll"]) and "flow_grad_norm" in row
    assert any(not torch.equal(encoder_before[k], v) for k, v in m.encoder.state_dict().items())
    # one more flow update, checked by hand: its NLL is the flow's on E(x) of the first minibatch
    x0, c0 = real.chunk(trainer.batches_per_step)[0], cond.chunk(trainer.batches_per_step)[0]
    with torch.no_grad():
        z = m.encoder(x0, None, c0)
        u, logdet = m.flow.inverse(z, c0)
        nll = -(-0.5 * (u.pow(2) + np.log(2 * np.pi)).sum(1) + logdet).mean() / m.flow.dim
    flow_before = {k: v.clone() for k, v in m.flow.state_dict().items()}
    for net in (m.encoder, m.generator):
        net.zero_grad(set_to_none=True)
    out = trainer.flow_step(real, cond)
    assert out["flow_nll"] == pytest.approx(nll.item(), rel=1e-5)
    assert any(not torch.equal(flow_before[k], v) for k, v in m.flow.state_dict().items())
    assert all(p.grad is None for net in (m.encoder, m.generator) for p in net.parameters())
    # without flow_every the encoder's move marks the flow stale (it must be refitted)
    trainer.tcfg["flow_every"] = 0
    trainer.train_step(real, cond)
    assert int(m.flow.fitted) == 0
    trainer.dist.close()


def test_reach_warmup_trains_an_autoencoder_then_the_game(toy_root, tmp_path):
    """training.reach_warmup_epochs: its epochs update the encoder and generator by the reach
    term alone, one update per minibatch the step drew (the critic bit-identical, the EMA
    following every update), log no critic columns; the game starts after them."""
    cfg = make_cfg(toy_root, tmp_path, model={"lambda_rec": 1.0, "lambda_latent_kl": 0.1},
                   training={"reach_warmup_epochs": 1, "epochs": 1, "encoder_every": 1})
    trainer = WGANGPTrainer(cfg, verbose=False)
    before = {name: {k: v.clone() for k, v in getattr(trainer.model, name).state_dict().items()}
              for name in ("critic", "generator", "encoder")}
    ckpt_path = trainer.run() / "checkpoint_latest.pt"
    after = load_checkpoint(ckpt_path)
    assert all(torch.equal(before["critic"][k], v) for k, v in after["critic_state_dict"].items())
    for name in ("generator", "encoder"):
        assert any(not torch.equal(before[name][k], v) for k, v in after[f"{name}_state_dict"].items()
                   if v.is_floating_point()), name
    # 32 samples, n_critic = 2 minibatches of 8 per step: 2 steps, 4 updates
    assert after["global_step"] == 2 and after["ema_state"]["num_updates"] == 4
    log = pd.read_csv(ckpt_path.parent / "losses.csv")
    assert log["critic_loss"].isna().all() and np.isfinite(log["reconstruction_loss"]).all()
    assert log["encoder_loss"].isna().all()           # no inversion steps in the warm start
    # one more epoch: the game
    cfg["training"].update(run_name=ckpt_path.parent.name, epochs=2)
    WGANGPTrainer(cfg, resume_state=after, resume_path=ckpt_path, verbose=False).run()
    game = load_checkpoint(ckpt_path)
    assert any(not torch.equal(after["critic_state_dict"][k], v) for k, v in game["critic_state_dict"].items()
               if v.is_floating_point())
    log = pd.read_csv(ckpt_path.parent / "losses.csv")
    assert len(log) == 4 and np.isfinite(log.loc[log["epoch"] == 2, ["critic_loss", "encoder_loss"]]).all().all()


def test_trainer_updates_the_code_critic_and_keeps_it_in_checkpoints(toy_root, tmp_path, gan_checkpoint, capsys):
    """model.lambda_code: one code-critic update per gan step (logged), its weights and optimizer
    in the checkpoint; a checkpoint without one (lambda_code = 0) resumes with it untrained, saying so."""
    cfg = make_cfg(toy_root, tmp_path, model={"lambda_rec": 1.0, "lambda_code": 1.0})
    trainer = WGANGPTrainer(cfg, verbose=False)
    before = {k: v.clone() for k, v in trainer.model.code_critic.state_dict().items()}
    ckpt = load_checkpoint(trainer.run() / "checkpoint_latest.pt")
    assert any(not torch.equal(before[k], v) for k, v in ckpt["code_critic_state_dict"].items())
    assert "k_optimizer_state_dict" in ckpt
    run_logs = list(tmp_path.glob("*/losses.csv"))
    assert len(run_logs) == 1
    log = pd.read_csv(run_logs[0])
    assert np.isfinite(log[["code_critic_loss", "code_loss"]]).all().all()
    ckpt_path = copy_run(gan_checkpoint, tmp_path)                  # trained without a code critic
    cfg = make_cfg(toy_root, ckpt_path.parent.parent, model={"lambda_rec": 1.0, "lambda_code": 1.0},
                   training={"run_name": ckpt_path.parent.name, "epochs": 2})
    resumed = WGANGPTrainer(cfg, resume_state=load_checkpoint(ckpt_path), resume_path=ckpt_path, verbose=True)
    assert "no code critic in this checkpoint" in capsys.readouterr().out
    resumed.dist.close()


def test_code_critic_needs_the_reach_term(toy_root):
    with pytest.raises(ValueError, match=r"model.lambda_code = 1.0 pulls the reach term's latents"):
        make_cfg(toy_root, model={"lambda_rec": 0.0, "lambda_code": 1.0})


def test_reach_warmup_needs_the_reach_term(toy_root):
    with pytest.raises(ValueError, match=r"training.reach_warmup_epochs = 2 trains by the reach term alone, "
                                         r"which is off \(model.lambda_rec = 0.0\)"):
        make_cfg(toy_root, model={"lambda_rec": 0.0}, training={"reach_warmup_epochs": 2})


@pytest.mark.parametrize("key,value,match", [
    ("training.phase", "flows", r"training.phase = 'flows': expected one of \['gan', 'encoder', 'flow'\]"),
    ("training.grad_clip_norm", -1, "training.grad_clip_norm = -1: expected a finite number > 0"),
    ("training.lr_flow", 0, "lr_flow = 0: expected a finite number > 0"),
    ("training.flow_every", -1, "training.flow_every = -1: expected"),
    ("training.reach_warmup_epochs", -1, "training.reach_warmup_epochs = -1: expected"),
    ("model.flow_layers", 1.5, "model.flow_layers = 1.5: expected a whole number"),
    ("logging.tensorboard", "yes", "logging.tensorboard = 'yes': expected true or false"),
])
def test_new_config_keys_are_validated(toy_root, key, value, match):
    section, name = key.split(".")
    with pytest.raises(ValueError, match=match):
        make_cfg(toy_root, **{section: {name: value}})


def test_prior_flow_is_refused_for_models_without_one(tmp_path):
    from argparse import Namespace

    from src_new.pipeline.sampling import run_sampling

    with pytest.raises(ValueError, match="--prior flow: model 'ddpm' has no such option"):
        run_sampling(None, {"model": {"type": "ddpm"}}, Namespace(prior="flow"), "x.pt")
    with pytest.raises(ValueError, match="--guidance_space logits: model 'ddpm' has no such option"):
        run_sampling(None, {"model": {"type": "ddpm"}}, Namespace(guidance_space="logits"), "x.pt",
                     sample_kwargs={"sampler": "ddim"})
