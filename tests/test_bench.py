"""The benchmark's smoke run never rots (no timing assertions), and its FLOP counter is right."""
import json
import subprocess
import sys

import pytest
import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from conftest import ROOT

sys.path.insert(0, str(ROOT / "bench"))


def test_bench_quick_runs_and_writes_json(tmp_path):
    out = tmp_path / "bench.json"
    proc = subprocess.run([sys.executable, str(ROOT / "bench" / "bench_wgan.py"), "--quick", "--device", "cpu",
                           "--profile", "--out", str(out)], cwd=ROOT, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads(out.read_text())
    for key in ("provenance", "yardsticks", "ceiling_gflops", "conv_ceiling_gflops", "yardstick_gflops",
                "train_iteration", "training_step", "sampling", "inpainting", "data", "peak_rss_mb",
                "cpu_utilisation", "load_average_1min", "profile"):
        assert key in result, key
    assert result["provenance"]["commit"] and result["provenance"]["machine"]["cpu"]
    t = result["train_iteration"]
    # ours never executes more than the plain reference (with the projection critic there is no
    # condition map to avoid convolving, so the two may be equal)
    assert t["flops_plan"] >= t["flops_ours"] > 0 and t["seconds_ours"] > 0 and t["seconds_plain"] > 0
    # the accounting: executed FLOPs over the best yardstick of each precision; avoided work beside the speed-up
    y = result["yardsticks"]
    for p in ("fp32", "bf16"):
        assert y[p]["best"] == max(y[p]["matmul"], y[p]["conv"]) > 0 and y[p]["conv_fwd_bwd"] > 0
    assert result["yardstick_gflops"] == y["fp32"]["best"] == max(result["ceiling_gflops"], result["conv_ceiling_gflops"])
    assert t["utilisation_executed"] == pytest.approx(t["flops_ours"] / t["seconds_ours"] / 1e9
                                                      / result["yardstick_gflops"])
    assert t["avoided_work_factor"] == pytest.approx(t["flops_plan"] / t["flops_ours"])
    assert t["speedup_vs_plain"] == pytest.approx(t["seconds_plain"] / t["seconds_ours"])
    assert not any("effective" in k for k in t)                 # plain FLOPs over our time is not a rate
    # medians of alternated rounds, with their spread
    assert len(t["timing_ours"]["all"]) == len(t["timing_plain"]["all"]) == result["repeats"] == 2
    assert t["timing_ours"]["min"] <= t["seconds_ours"] <= t["timing_ours"]["max"]
    # the training step is timed as one step (not a sum of medians), in both precisions
    step = result["training_step"]
    assert step["batches_per_step"] == 2                        # quick config: n_critic = 2 fresh minibatches
    for p in ("fp32", "bf16"):
        q = step[p]
        assert q["timing"]["min"] <= q["seconds"] <= q["timing"]["max"]
        assert q["utilisation_bf16_yardstick"] == pytest.approx(step["flops"] / q["seconds"] / 1e9 / y["bf16"]["best"])
        assert q["utilisation_fp32_yardstick"] == pytest.approx(step["flops"] / q["seconds"] / 1e9 / y["fp32"]["best"])
    assert step["bf16_speedup"] == pytest.approx(step["fp32"]["seconds"] / step["bf16"]["seconds"])
    i = result["inpainting"]
    assert len(i["timing_ours"]["all"]) == len(i["timing_plain"]["all"]) == len(i["timing_bf16"]["all"]) == 2
    for p in ("fp32", "bf16"):
        assert result["sampling"][p]["images_per_s_unconditional"] > 0 and result["sampling"][p]["images_per_s_guided"] > 0
    for p in ("fp32", "bf16"):
        prof = result["profile"][p]
        assert sum(prof["category_shares"].values()) == pytest.approx(1.0) and prof["top_ops"]
        assert prof["category_shares"]["convolution"] > 0
        # the share is 1 - (seconds without the penalty) / (seconds with it): below 1, but with two
        # rounds on a loaded machine the two medians can swap, so its sign is not asserted
        assert prof["penalty_share"] < 1 and prof["seconds_without_penalty"] > 0
    assert result["data"]["png_decodes_first_epoch"] > 0
    assert result["data"]["png_decodes_later_epochs"] == 0          # later epochs read the uint8 cache
    assert "yardstick bf16" in proc.stdout and "plain reference" in proc.stdout and "avoided work" in proc.stdout


def test_console_table_renders_the_committed_full_run():
    """format_table reads every figure a full run writes (bench/results/bench_cpu.json, with
    --profile), one row per figure and the profile's ops after them."""
    sys.path.insert(0, str(ROOT / "bench"))
    from bench_wgan import format_table

    result = json.loads((ROOT / "bench" / "results" / "bench_cpu.json").read_text())
    table = format_table(result)
    for row in ("yardstick fp32", "train iteration, plain reference", "training step, bf16", "bf16 speed-up",
                "sampling", "inpainting", "data loading", "peak RSS", "CPU utilisation / load"):
        assert any(line.startswith(row + " ") for line in table.splitlines()), row
    assert table.count("one training step in") == len(result["profile"])


def test_bench_trainer_draws_n_critic_fresh_batches(tiny_cfg):
    """The benchmark's step is the training step: each critic update gets its own minibatch."""
    sys.path.insert(0, str(ROOT / "bench"))
    from bench_wgan import BenchTrainer
    from src_new.models.wgan_gp import build_wgan_gp

    torch.manual_seed(0)
    model = build_wgan_gp(tiny_cfg)
    trainer = BenchTrainer(tiny_cfg, model)
    n = model.n_critic
    assert trainer.batches_per_step == n
    seen = []
    original = model.critic_step
    model.critic_step = lambda real, cond=None, noise=None: (seen.append(real.clone()), original(real, cond, noise))[1]
    real = torch.rand(n * 4, model.channels, *model.image_size).round()
    trainer.train_step(real, torch.randn(n * 4, model.cond_dim))
    assert len(seen) == n and all(torch.equal(s, r) for s, r in zip(seen, real.chunk(n)))


def test_accounting_on_a_network_with_flops_known_by_hand():
    """A linear layer (batch 2, 3 -> 4, no bias): forward 2*2*3*4 = 48 FLOPs, the weight
    gradient 48 more, the input gradient 48 more. "Plain" also computes the input gradient
    (144 FLOPs), "ours" skips it (96): 1.5x avoided work; a 3x3 convolution and a matmul too."""
    sys.path.insert(0, str(ROOT / "bench"))
    from bench_wgan import accounting, alternating_order, conv_flops, count_flops, matmul_flops, spread

    lin = nn.Linear(3, 4, bias=False)
    x = torch.randn(2, 3)
    xg = x.clone().requires_grad_(True)
    ours = count_flops(lambda: lin(x).sum().backward())
    plain = count_flops(lambda: lin(xg).sum().backward())
    assert (ours, plain) == (96, 144)
    conv = nn.Conv2d(2, 3, 3, padding=1, bias=False)
    assert count_flops(lambda: conv(torch.randn(4, 2, 5, 6))) == conv_flops(4, 2, 3, 3, 5, 6) == 2 * 4 * 2 * 3 * 9 * 30
    assert count_flops(lambda: torch.randn(7, 7) @ torch.randn(7, 7)) == matmul_flops(7) == 686
    a = accounting(plain, ours, seconds_plain=4e-6, seconds_ours=2e-6, matmul_gflops=0.04, conv_gflops=0.06)
    assert a["gflops_executed"] == pytest.approx(0.048) and a["gflops_plain_executed"] == pytest.approx(0.036)
    assert a["yardstick_gflops"] == 0.06 and a["yardstick"] == "conv"          # the better yardstick
    assert a["utilisation_executed"] == pytest.approx(0.8) and a["utilisation_plain"] == pytest.approx(0.6)
    assert a["avoided_work_factor"] == 1.5 and a["speedup_vs_plain"] == 2.0
    assert a["speedup_vs_plain"] == pytest.approx(a["avoided_work_factor"] * a["gflops_executed"]
                                                  / a["gflops_plain_executed"])
    assert [alternating_order(["ours", "plain"], r) for r in range(3)] == [["ours", "plain"], ["plain", "ours"],
                                                                           ["ours", "plain"]]
    sp = spread([3.0, 1.0, 2.0])
    assert (sp["median"], sp["min"], sp["max"], sp["relative_spread"]) == (2.0, 1.0, 3.0, 1.0)


def test_plain_reference_equals_the_fast_path_with_fixed_noise(tmp_path):
    """The benchmark's plain loop is the same algorithm as WGANGP's fast path: with the same
    draws (z, per-sample condition dropout, penalty weights) losses and gradients agree."""
    import copy

    sys.path.insert(0, str(ROOT / "bench"))
    from bench_wgan import PlainReference, plain_copy
    from conftest import make_cfg
    from src_new.models.wgan_gp import build_wgan_gp

    cfg = make_cfg(tmp_path)
    torch.manual_seed(0)
    # float64: the projection head's weight gradient is a difference of real and fake feature
    # means (nearly equal in an untrained critic), which amplifies float32 rounding of the two
    # layouts' convolutions; in float64 any real difference still shows
    ours = build_wgan_gp(cfg).double()
    assert ours.critic.memory_format is torch.channels_last
    plain = plain_copy(ours)
    assert all(p.is_contiguous() for p in plain.critic.parameters())
    reference = PlainReference(plain, cfg)
    real = torch.rand(4, 5, 64, 32, dtype=torch.float64).round()
    cond = torch.randn(4, 2, dtype=torch.float64)
    noise = ours.draw_noise(4, real.device)
    noise["eps"] = noise["eps"].double()
    noise["drop_mask"] = torch.tensor([True, False, False, True])     # dropped per sample, both kinds

    def grads(net):
        out = {n: p.grad.clone() for n, p in net.named_parameters() if p.grad is not None}
        net.zero_grad(set_to_none=True)
        return out

    mine = ours(real, cond=cond, step="critic", noise=noise)
    mine["critic_loss"].backward()
    loss, wasserstein, gp = reference.critic_loss(real, cond, noise)
    loss.backward()
    assert loss.item() == pytest.approx(mine["critic_loss"].item(), rel=1e-5, abs=1e-6)
    assert wasserstein.item() == pytest.approx(mine["wasserstein_distance"].item(), rel=1e-5, abs=1e-6)
    assert gp.item() == pytest.approx(mine["gradient_penalty"].item(), rel=1e-5, abs=1e-6)
    g_ours, g_plain = grads(ours.critic), grads(plain.critic)
    assert set(g_ours) == set(g_plain) and len(g_ours) > 0
    for name in g_ours:
        assert torch.allclose(g_ours[name], g_plain[name], rtol=1e-4, atol=1e-6), name
    ours.zero_grad(set_to_none=True)
    plain.zero_grad(set_to_none=True)

    mine = ours(real, cond=cond, step="generator", noise=noise)
    mine["generator_loss"].backward()
    g_loss = reference.generator_loss(real, cond, noise)
    g_loss.backward()
    assert g_loss.item() == pytest.approx(mine["generator_loss"].item(), rel=1e-5, abs=1e-6)
    g_ours, g_plain = grads(ours.generator), grads(plain.generator)
    assert set(g_ours) == set(g_plain) and len(g_ours) > 0
    for name in g_ours:
        assert torch.allclose(g_ours[name], g_plain[name], rtol=1e-4, atol=1e-6), name
    # the dropped samples really lost their condition: another condition changes only the kept ones
    other = reference.generator_loss(real, cond + 1, noise)
    assert other.item() != g_loss.item()


def test_flop_counter_counts_through_the_gradient_penalty():
    """The benchmark's counter (FlopCounterMode without its module tracker, which breaks on
    autograd.grad) counts a penalty computed with autograd.grad exactly as the stock counter
    counts the same computation written with backward(create_graph=True)."""
    sys.path.insert(0, str(ROOT / "bench"))
    from bench_wgan import count_flops

    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(3, 8, 4, 2, 1), nn.GroupNorm(1, 8), nn.LeakyReLU(0.2), nn.Flatten(),
                        nn.Linear(8 * 4 * 4, 1))
    x = torch.randn(4, 3, 8, 8, requires_grad=True)
    params = list(net.parameters())

    def with_autograd_grad():
        out = net(x)
        (grad,) = torch.autograd.grad(out.sum(), x, create_graph=True)
        (out.mean() + grad.flatten(1).norm(dim=1).sub(1).pow(2).mean()).backward(inputs=params)

    def with_backward():
        x.grad = None
        out = net(x)
        out.sum().backward(inputs=[x], create_graph=True)
        grad, x.grad = x.grad, None
        (out.mean() + grad.flatten(1).norm(dim=1).sub(1).pow(2).mean()).backward(inputs=params)
        for p in params:
            p.grad = None

    with FlopCounterMode(display=False) as stock:
        with_backward()
    assert count_flops(with_autograd_grad) == stock.get_total_flops() > 0


def test_inversion_iou_scores_hidden_components_only(monkeypatch):
    """bench/inversion.py: a 'model' whose G(E(x)) returns its masked input scores IoU 1 on a
    full input and 0 on the hidden components of a partial one."""
    monkeypatch.syspath_prepend(str(ROOT / "bench"))
    from inversion import inversion_iou
    from types import SimpleNamespace
    model = SimpleNamespace(encoder=lambda x, mask, cond: x, sampling_generator=lambda z, cond: z)
    truth = torch.zeros(4, 3, 8, 8)
    truth[:, :, 2:6, 2:6] = 1
    assert inversion_iou(model, truth, torch.ones_like(truth), None) == 1.0
    mask = torch.zeros_like(truth)
    mask[:, 0] = 1                                        # component 0 kept, 1 and 2 hidden
    assert inversion_iou(model, truth, mask, None) == 0.0


def test_ablation_timing_rebuilds_each_rows_recorded_design(monkeypatch):
    """bench/ablation_timing.py times the design a row recorded: the toy config with the row's
    model values and batch size, nothing spelled a second time."""
    monkeypatch.chdir(ROOT)
    monkeypatch.syspath_prepend(str(ROOT / "bench"))
    from ablation_timing import row_config
    cfg = row_config({"model": {"critic_dim": 32, "n_critic": 2}, "training": {"batch_size": 16}})
    assert (cfg["model"]["critic_dim"], cfg["model"]["n_critic"], cfg["training"]["batch_size"]) == (32, 2, 16)
    assert cfg["model"]["dim"] == 16                      # the rest from configs/wgan_gp_toy.yaml
    old = row_config({"model": {"style_dim": 128}})       # rows written before batch sizes were recorded
    assert old["training"]["batch_size"] == 32 and old["model"]["style_dim"] == 128


def test_inpaint_posterior_draws_keep_the_kept_components_and_vary_the_hidden(monkeypatch):
    """bench/inpaint_references.py: the redraw rules give exact posterior samples of the
    synthetic set (kept pixels and condition reproduced at the first try for the two sets whose
    rules are exact) that differ from the truth on the hidden components."""
    import numpy as np
    monkeypatch.syspath_prepend(str(ROOT / "bench"))
    from inpaint_references import HIDDEN, posterior_draws
    from src_new.datasets.synthetic import COMPONENTS, _sample_params, render_sample
    from src_new.utils.masks import create_mask
    rng = np.random.default_rng(0)
    params = [_sample_params(rng) for _ in range(6)]
    truth = np.stack([render_sample(q) for q in params])
    for keep, redraw in list(HIDDEN.items())[:2]:
        mask = create_mask(list(keep), COMPONENTS, len(truth), (64, 32)).numpy()
        draws, fallbacks = posterior_draws(params, truth, mask, redraw, 3, rng, max_tries=1)
        assert fallbacks == 0
        assert np.array_equal(draws * mask, np.broadcast_to(truth * mask, draws.shape))
        assert (np.abs(draws - truth) * (1 - mask)).sum() > 0


def test_checkpoint_benchmarks_write_provenance_and_refuse_to_overwrite(tiny_cfg, tmp_path):
    """bench/inversion.py, inpaint_curve.py, recall_diagnosis.py and pieces.py on a tiny
    checkpoint: each writes its figures with a provenance block, and refuses an existing file
    without --overwrite."""
    import inpaint_curve
    import inversion
    import pieces
    import recall_diagnosis
    from src_new.models.wgan_gp.train import WGANGPTrainer

    ckpt = str(WGANGPTrainer(tiny_cfg, verbose=False).run() / "checkpoint_latest.pt")
    runs = {inversion: ["--checkpoints", ckpt], inpaint_curve: ["--checkpoint", ckpt, "--n", "4", "--settings",
                                                                 "bce:1:2,bce:0:0"],
            recall_diagnosis: ["--checkpoint", ckpt, "--temperatures", "1.0"], pieces: ["--checkpoints", ckpt]}
    for script, args in runs.items():
        out = tmp_path / f"{script.__name__}.json"
        script.main([*args, "--out", str(out)])
        result = json.loads(out.read_text())
        assert result["provenance"]["commit"] and result["provenance"]["machine"]["cpu"], script.__name__
        assert result["rows"], script.__name__
        with pytest.raises(SystemExit):                     # an existing file is kept, not replaced
            script.main([*args, "--out", str(out)])
        assert json.loads(out.read_text()) == result
        script.main([*args, "--out", str(out), "--overwrite"])
    rows = json.loads((tmp_path / "inversion.json").read_text())["rows"]
    assert 0 <= rows[0]["full"] <= 1 and rows[0]["phase"] == "gan"
    curve = json.loads((tmp_path / "inpaint_curve.json").read_text())["rows"]
    assert {(r["restarts"], r["steps"]) for r in curve} == {(1, 2), (0, 0)} and len(curve) == 2 * 3
    spread = json.loads((tmp_path / "recall_diagnosis.json").read_text())["rows"][0]["residual_spread_ratio"]
    assert spread and all(v >= 0 for v in spread.values())
    result = json.loads((tmp_path / "pieces.json").read_text())
    row, names = result["rows"][0], tiny_cfg["data"]["component_dirs"]
    assert all(0 <= row[f"{kind}_same_pieces_{n}"] <= 1 for kind in ("raw", "clean") for n in names)
    # a sample has every component right only if each of its components is
    assert row["raw_same_pieces_fraction"] <= min(row[f"raw_same_pieces_{n}"] for n in names)
    assert result["summary"][row["design"]]["raw_fd"]["n"] == 1


def test_ablation_times_a_step_of_a_design_with_the_size_term(monkeypatch, toy_root, tmp_path):
    """bench/ablation.py's step timing builds a fresh model on random data: the size term's
    conventions (fitted by training) are stood in for, so a shipped design can be timed."""
    monkeypatch.syspath_prepend(str(ROOT / "bench"))
    from ablation import time_generator_step
    from conftest import make_cfg
    cfg = make_cfg(toy_root, tmp_path, model={"lambda_size": 1.0})
    assert time_generator_step(cfg, steps=1, batch=4) > 0


def test_autoencoder_probe_trains_and_traces_the_test_iou(monkeypatch, tiny_cfg):
    """bench/autoencoder.py: the reach term alone, timed; one row per evaluation with the mean
    and per-component test IoU, steps growing."""
    monkeypatch.syspath_prepend(str(ROOT / "bench"))
    from autoencoder import train_autoencoder
    # a budget well above one step (the first, warming up, can take a second on a loaded machine),
    # so that at least one evaluation falls before the end whatever the machine's speed
    trace = train_autoencoder(tiny_cfg, budget=3.0, eval_every=1.0, seed=0, say=lambda line: None)
    names = tiny_cfg["data"]["component_dirs"]
    assert len(trace) >= 2 and trace[-1]["seconds"] >= 3.0
    assert all(a["step"] < b["step"] for a, b in zip(trace, trace[1:]))
    for row in trace:
        assert 0 <= row["iou"] <= 1 and set(row) == {"seconds", "step", "iou", *(f"iou_{n}" for n in names)}
        assert abs(row["iou"] - sum(row[f"iou_{n}"] for n in names) / len(names)) < 1e-9


def test_latent_figures_read_the_covariance_spectrum_and_the_batch_kls(monkeypatch):
    """bench/latents.py: an 'encoder' that returns its input's first pixels gives the spectrum
    of a covariance known by hand and the losses' batch KLs of the same batches."""
    monkeypatch.syspath_prepend(str(ROOT / "bench"))
    from latents import latent_figures
    from types import SimpleNamespace
    from src_new.models.wgan_gp.losses import batch_latent_kl
    g = torch.Generator().manual_seed(0)
    z = torch.randn(600, 3, generator=g) * torch.tensor([0.1, 1.0, 3.0])   # variances 0.01, 1, 9
    images = z[:, None, :, None].expand(600, 1, 3, 2).contiguous()
    model = SimpleNamespace(encoder=lambda x, mask, cond: x[:, 0, :, 0])
    figures = latent_figures(model, images, None, batch_size=100)
    assert figures["eigenvalues"] == sorted(figures["eigenvalues"])
    assert figures["eigenvalues"] == pytest.approx([0.01, 1.0, 9.0], rel=0.15)
    batches = z.split(100)
    for key, full in (("kl_diagonal", False), ("kl_full", True)):
        assert figures[key] == pytest.approx(sum(batch_latent_kl(b, full=full).item() for b in batches) / 6, rel=1e-5)


def test_step_time_runs_the_trainers_whole_step_on_training_batches(monkeypatch, toy_root, tmp_path):
    """bench/step_time.py times the trainer's own step: with the size term and the code critic on,
    one call updates the critic, the generator, the encoder and the code critic, on n_critic
    training minibatches."""
    monkeypatch.syspath_prepend(str(ROOT / "bench"))
    from conftest import make_cfg
    from src_new.datasets.factory import build_datasets
    from step_time import design_trainer, one_step, step_batches
    cfg = make_cfg(toy_root, tmp_path, model={"lambda_size": 1.0, "lambda_rec": 1.0, "lambda_code": 1.0})
    train = build_datasets(cfg, ("train",), verbose=False)["train"]
    batches = step_batches(cfg, train, n=2)
    per_step = cfg["training"]["batch_size"] * cfg["model"]["n_critic"]
    assert [len(real) for real, _ in batches] == [per_step] * 2
    assert torch.equal(batches[1][0], train.images_float[per_step:2 * per_step])
    trainer = design_trainer(cfg, train)
    assert trainer.model.size_conventions is not None
    nets = {name: getattr(trainer.model, name) for name in ("critic", "generator", "encoder", "code_critic")}
    before = {name: [p.detach().clone() for p in net.parameters()] for name, net in nets.items()}
    one_step(trainer, batches)()
    for name, net in nets.items():
        assert any(not torch.equal(a, p) for a, p in zip(before[name], net.parameters())), name
