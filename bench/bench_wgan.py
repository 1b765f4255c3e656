"""WGAN-GP benchmark: matmul ceiling, training iteration (ours vs a plain reference loop, side
by side), encoder step, sampling, inpainting (ours vs a plain loop), data loading, memory.

    python bench/bench_wgan.py [--device cpu|cuda] [--config wgan_gp_default] [--threads N]
                               [--compile] [--bf16] [--profile] [--quick] [--out PATH]

Prints a table and writes JSON (default bench/results/bench_<device>[_quick].json).

How it measures (numbers on shared machines are noisy, so it leans on medians and ratios):
- every timing is a median over ``--repeats`` (>= 5) rounds after a warm-up round, reported
  with its spread (min, max); within a round ours and the plain reference alternate their
  order (ours first, then plain first, ...) so neither always runs on a warm or cold cache;
- the yardstick is the best measured rate at the benchmark's thread count: the max of the
  matmul rate (large square fp32 ``torch.mm``, sampled at the start, between sections and at
  the end; median of the samples) and a large 3x3 convolution's rate. Utilisation is
  *executed* FLOPs per second over that yardstick (never above 100% unless the network beats
  both yardsticks);
- avoided work is its own factor, plain FLOPs / executed FLOPs, beside the wall-clock
  speed-up (plain seconds / our seconds); the speed-up is the avoided work times the ratio of
  the two rates;
- "our iteration" is the trainer's own code (``WGANGPTrainer.gan_step``: n_critic critic
  updates, one generator update, EMA, with the trainer's optimizers); the training throughput
  adds the encoder update (``WGANGPTrainer.encoder_step``, every ``encoder_every`` steps);
- the plain reference is the literal WGAN-GP loop of Gulrajani et al. (2017, Algorithm 1),
  unfused and NCHW, written out below (``PlainReference``) with the same networks and
  weights: separate critic calls on real and fake, the critic conditioned as configured
  (``model.critic_cond``), critic weights trainable in the generator step, default (NCHW)
  layout, default Adam, nothing compiled; it drops the generator's condition per sample like ours
  (tests/test_bench.py checks that with fixed noise its losses and gradients equal
  ``WGANGP``'s fast path);
- inpainting (ours vs a plain latent-optimisation loop, ``plain_inpaint``) is timed the same
  way: alternated, repeated, median;
- FLOPs come from ``torch.utils.flop_counter.FlopCounterMode`` (convolutions and matmuls,
  forward, backward and the penalty's double backward), see ``FlopCounter``;
- on CUDA times come from CUDA events, and peak device memory is reported.
"""
from __future__ import annotations

import argparse
import copy
import json
import os
import resource
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from torch.utils.flop_counter import FlopCounterMode

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from src_new.models.wgan_gp import build_wgan_gp  # noqa: E402
from src_new.models.wgan_gp.train import WGANGPTrainer, make_code_critic_optimizer, make_optimizers  # noqa: E402
from src_new.models.wgan_gp.wgan import set_layout  # noqa: E402
from src_new.pipeline.config import apply_overrides, auto_complete_config, load_config, validate_config  # noqa: E402
from src_new.utils.ema import EMA  # noqa: E402
from src_new.utils.masks import create_mask  # noqa: E402
from src_new.utils.precision import autocast  # noqa: E402
from src_new.utils.provenance import provenance  # noqa: E402

# The plan's training step has no reach or topology term and no condition planes (the shipped configs'
# model.lambda_rec, model.lambda_euler and model.cond_planes): both paths time the same computation,
# the plan's WGAN-GP step.
PLAN_OVERRIDES = ["model.lambda_rec=0", "model.lambda_latent_kl=0", "model.lambda_euler=0", "model.cond_planes=none",
                  "model.lambda_size=0"]
QUICK_OVERRIDES = ["model.dim=8", "model.critic_dim=8", "model.encoder_dim=8", "model.res_blocks=[1,1,1]",
                   "model.n_critic=2"]


# ---------------------------------------------------------------- measuring
class _GlobalOnly:
    """Stand-in for FlopCounterMode's module tracker."""
    parents = {"Global"}

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


class FlopCounter(FlopCounterMode):
    """FlopCounterMode counting totals only.

    A plain ``FlopCounterMode`` fails on the gradient penalty: to attribute FLOPs to modules
    it installs a ModuleTracker whose hooks on module outputs/gradients break inside
    ``torch.autograd.grad(..., create_graph=True)``. The counting itself is a dispatch mode
    that sees every aten op, forward, backward and double backward alike; only the per-module
    attribution breaks. So the tracker is replaced by a stub that files everything under
    "Global": the totals are exact, and no part of the computation has to be rewritten or
    counted piecewise. (Checked in tests/test_bench.py against the sum of separately counted
    pieces.)
    """

    def __init__(self):
        super().__init__(display=False)
        self.mod_tracker = _GlobalOnly()


def count_flops(fn):
    with FlopCounter() as counter:
        fn()
    return counter.get_total_flops()


class Timer:
    """Wall time on CPU; CUDA events on the GPU. Medians after warm-up."""

    def __init__(self, device):
        self.cuda = device.type == "cuda"

    def once(self, fn):
        if self.cuda:
            start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            torch.cuda.synchronize()
            start.record()
            fn()
            end.record()
            torch.cuda.synchronize()
            return start.elapsed_time(end) / 1000
        t0 = time.perf_counter()
        fn()
        return time.perf_counter() - t0

    def side_by_side(self, fns, repeats, warmup=1):
        """({name: median seconds}, {name: all seconds}): the functions interleaved round by
        round, their order reversed every other round (ours first, then last, ...)."""
        for _ in range(warmup):
            for fn in fns.values():
                fn()
        times = {name: [] for name in fns}
        for r in range(repeats):
            for name in alternating_order(list(fns), r):
                times[name].append(self.once(fns[name]))
        return {name: statistics.median(t) for name, t in times.items()}, times

    def __call__(self, fn, repeats, warmup=1):
        return self.side_by_side({"fn": fn}, repeats, warmup)[0]["fn"]


def alternating_order(names, round_index):
    """The order of round ``round_index``: as given on even rounds, reversed on odd ones."""
    return list(names) if round_index % 2 == 0 else list(reversed(names))


def spread(times):
    """Median, min, max and (max - min) / median of a list of seconds."""
    med = statistics.median(times)
    return {"median": med, "min": min(times), "max": max(times),
            "relative_spread": (max(times) - min(times)) / med if med > 0 else float("nan"), "all": list(times)}


def matmul_flops(n):
    """FLOPs of an n x n by n x n matmul (a multiply and an add per term)."""
    return 2 * n ** 3


def conv_flops(batch, c_in, c_out, kernel, h_out, w_out):
    """FLOPs of a dense 2-D convolution (no bias): 2 per multiply-add."""
    return 2 * batch * c_in * c_out * kernel * kernel * h_out * w_out


def accounting(flops_plain, flops_ours, seconds_plain, seconds_ours, matmul_gflops, conv_gflops):
    """The benchmark's figures from FLOP counts, medians and the two yardsticks (GFLOP/s):
    executed rates, utilisation of the best yardstick, avoided work and wall-clock speed-up.
    speedup_vs_plain == avoided_work_factor * gflops_executed / gflops_plain_executed."""
    yardstick = max(matmul_gflops, conv_gflops)
    ours = flops_ours / seconds_ours / 1e9
    plain = flops_plain / seconds_plain / 1e9
    return {"gflops_executed": ours, "gflops_plain_executed": plain, "yardstick_gflops": yardstick,
            "yardstick": "matmul" if matmul_gflops >= conv_gflops else "conv",
            "utilisation_executed": ours / yardstick, "utilisation_plain": plain / yardstick,
            "avoided_work_factor": flops_plain / flops_ours, "speedup_vs_plain": seconds_plain / seconds_ours}


def matmul_ceiling(device, timer, n, dtype=torch.float32):
    """GFLOP/s of a large square ``torch.mm`` in ``dtype`` (bf16: the matrix units)."""
    a, b = torch.randn(n, n, device=device, dtype=dtype), torch.randn(n, n, device=device, dtype=dtype)
    seconds = timer(lambda: torch.mm(a, b), repeats=5, warmup=2)
    return matmul_flops(n) / seconds / 1e9


def conv_ceiling(device, timer, quick, dtype=torch.float32, backward=False):
    """A second yardstick: the rate of one large, well-shaped 3x3 convolution (256 -> 256
    channels, batch 64 at 16x8, channels_last), the generator's bread and butter, in ``dtype``
    (bf16 tensors: what autocast hands oneDNN). On CPUs where the BLAS sgemm is not the fastest
    kernel, convolutions through oneDNN can run faster than torch.mm, so fractions of the matmul
    ceiling above 100% are possible; this one says how close a network gets to its best
    convolution. ``backward``: forward + backward (input and weight gradients, 3x the FLOPs)."""
    b, c, h, w = (8, 64, 16, 8) if quick else (64, 256, 16, 8)
    x = torch.randn(b, c, h, w, device=device, dtype=dtype).contiguous(memory_format=torch.channels_last)
    weight = torch.randn(c, c, 3, 3, device=device, dtype=dtype).contiguous(memory_format=torch.channels_last)
    if backward:
        x.requires_grad_(True), weight.requires_grad_(True)
        seconds = timer(lambda: F.conv2d(x, weight, padding=1).sum().backward(), repeats=5, warmup=2)
        return 3 * conv_flops(b, c, c, 3, h, w) / seconds / 1e9
    with torch.no_grad():
        seconds = timer(lambda: F.conv2d(x, weight, padding=1), repeats=5, warmup=2)
    return conv_flops(b, c, c, 3, h, w) / seconds / 1e9


def yardsticks(device, timer, quick, mm_n):
    """The best rates measurable here, per precision: {precision: {matmul, conv, conv_fwd_bwd,
    best}} in GFLOP/s; ``best`` = max(matmul, conv) is that precision's yardstick. bf16 is
    measured where the device runs it (emulated bf16 on a CPU without the units is slower than
    fp32, and then the fp32 yardstick is the best rate)."""
    out = {}
    for name, dtype in (("fp32", torch.float32), ("bf16", torch.bfloat16)):
        rates = {"matmul": matmul_ceiling(device, timer, mm_n, dtype), "conv": conv_ceiling(device, timer, quick, dtype),
                 "conv_fwd_bwd": conv_ceiling(device, timer, quick, dtype, backward=True)}
        rates["best"] = max(rates["matmul"], rates["conv"])
        out[name] = rates
    return out


# ---------------------------------------------------------------- our iteration = the trainer's code
class _NoDist:
    enabled, is_main = False, True

    def average_gradients(self, params):
        pass


class BenchTrainer(WGANGPTrainer):
    """The trainer's ``train_step`` (n_critic critic updates on fresh minibatches when the config
    asks for them, as training does, the generator update, EMA, the encoder update) on a given
    model, without data or run folder. Its step counter stays at 0, so every step includes the
    encoder update (training runs it every ``training.encoder_every`` steps)."""

    def __init__(self, cfg, model, precision="fp32"):    # noqa: the base needs data and a run dir
        self.cfg, self.tcfg = cfg, cfg["training"]
        self.model, self.device = model, next(model.parameters()).device
        self.dist = _NoDist()
        self.phase = "gan"
        self.batches_per_step = model.n_critic if self.tcfg["fresh_critic_batches"] else 1
        self.ema = EMA(model.generator, self.tcfg["ema_decay"], self.tcfg["ema_update_every"],
                       ema_model=model.ema_generator)
        self.opt_g, self.opt_c, self.opt_e = make_optimizers(model, self.tcfg)
        self.opt_k = make_code_critic_optimizer(model, self.tcfg)
        self.precision = precision
        self.autocast = autocast(precision, self.device)
        self.epoch, self.step = 0, 0


# ---------------------------------------------------------------- the plain reference iteration
def plain_copy(model):
    """A copy of ``model`` with NCHW activations and weights (the library runs channels_last)."""
    plain = copy.deepcopy(model)
    for net in (plain.generator, plain.ema_generator, plain.critic):
        set_layout(net, torch.contiguous_format)
    return plain


class PlainReference:
    """The literal WGAN-GP training loop (Gulrajani et al. 2017, Algorithm 1: n_critic critic
    updates of -W + GP, then a generator update of -mean D(G(z))), unfused, on its own NCHW copy
    of the networks (``plain_copy``)."""

    def __init__(self, model, cfg):
        t = cfg["training"]
        self.model = model
        betas = (float(t["beta1"]), float(t["beta2"]))
        self.opt_c = torch.optim.Adam(model.critic.parameters(), t["lr_critic"], betas=betas)
        self.opt_g = torch.optim.Adam(model.generator.parameters(), t["lr_generator"], betas=betas)
        self.ema = EMA(model.generator, t["ema_decay"], t["ema_update_every"], ema_model=model.ema_generator)
        self.batches_per_step = model.n_critic if t["fresh_critic_batches"] else 1   # as the trainer draws

    def gradient_penalty(self, real, fake, cond, eps=None, critic_drop=None):
        m = self.model
        if eps is None:
            eps = torch.rand(real.shape[0], 1, 1, 1, device=real.device)
        x_hat = (eps * real + (1 - eps) * fake).requires_grad_(True)
        out = m.critic(x_hat, cond, critic_drop)
        grad = torch.autograd.grad(out, x_hat, grad_outputs=torch.ones_like(out), create_graph=True)[0]
        return m.lambda_gp * ((grad.flatten(1).norm(2, dim=1) - 1) ** 2).mean()

    def draw_noise(self, batch_size, device):
        """z, the per-sample condition-dropout mask (True = the generator gets no condition, as
        in ours) and the penalty's interpolation weights."""
        m = self.model
        return {"z": torch.randn(batch_size, m.latent_dim, device=device),
                "drop_mask": torch.rand(batch_size, device=device) < m.cond_drop_prob,
                "eps": torch.rand(batch_size, 1, 1, 1, device=device)}

    def critic_loss(self, real, cond, noise=None):
        """The WGAN-GP critic loss -W + GP -> (loss, W, GP), real and fake through separate critic
        calls; noise: ``draw_noise`` (fixed in tests)."""
        m = self.model
        G, D = m.generator, m.critic
        noise = noise or self.draw_noise(real.shape[0], real.device)
        drop = noise["drop_mask"] if m.critic_null_condition else None   # joint null condition
        with torch.no_grad():
            fake = G(noise["z"], cond, noise["drop_mask"])
        critic_real = D(real, cond, drop)
        critic_fake = D(fake.detach(), cond, drop)
        wasserstein_distance = critic_real.mean() - critic_fake.mean()
        gp = self.gradient_penalty(real, fake, cond, noise["eps"], drop)
        return -wasserstein_distance + gp, wasserstein_distance, gp

    def generator_loss(self, real, cond, noise=None):
        """The WGAN-GP generator loss -mean D(G(z)); the critic's weights stay trainable (its
        gradients are computed too; only the generator's optimizer steps)."""
        m = self.model
        noise = noise or self.draw_noise(real.shape[0], real.device)
        fake = m.generator(noise["z"], cond, noise["drop_mask"])
        drop = noise["drop_mask"] if m.critic_null_condition else None
        return -m.critic(fake, cond, drop).mean()

    def iteration(self, real, cond):
        """n_critic critic updates (on the n_critic minibatches ``real`` holds, like training,
        or all on ``real`` when it holds one), then the generator update."""
        m = self.model
        reals = real.chunk(self.batches_per_step)
        conds = cond.chunk(len(reals)) if cond is not None else [None] * len(reals)
        for i in range(m.n_critic):
            real, cond = reals[i % len(reals)], conds[i % len(reals)]
            self.opt_c.zero_grad()
            critic_loss = self.critic_loss(real, cond)[0]
            critic_loss.backward()
            self.opt_c.step()
        self.opt_g.zero_grad()
        generator_loss = self.generator_loss(real, cond)
        generator_loss.backward()
        self.opt_g.step()
        self.ema.update()
        return critic_loss.item(), generator_loss.item()


def plain_inpaint(model, partial, mask, num_steps, lr, restarts=1):
    """The plain latent-optimisation inpainting loop (Adam on z, MSE on the kept pixels):
    generator weights left trainable, restarts run one after another (the first from the
    encoder, the others from N(0, I)), best kept per sample."""
    gen = model.sampling_generator.requires_grad_(True)
    best, best_loss = None, None
    for r in range(restarts):
        with torch.no_grad():
            z0 = model.encoder(partial) if r == 0 else torch.randn(len(partial), model.latent_dim,
                                                                     device=partial.device)
        z = z0.clone().requires_grad_(True)
        optimizer = torch.optim.Adam([z], lr=lr)
        for _ in range(num_steps):
            optimizer.zero_grad()
            generated = gen(z, None)
            loss = F.mse_loss(generated * mask, partial * mask)
            loss.backward()
            optimizer.step()
        with torch.no_grad():
            inpainted = gen(z, None)
            per_sample = ((inpainted - partial) * mask).pow(2).flatten(1).mean(1)
            result = partial * mask + inpainted * (1 - mask)
            if best is None:
                best, best_loss = result, per_sample
            else:
                better = per_sample < best_loss
                best[better], best_loss[better] = result[better], per_sample[better]
    gen.requires_grad_(False).zero_grad(set_to_none=True)
    return best


# ---------------------------------------------------------------- data
def data_throughput(cfg, n, batch_size, num_workers):
    """Images/s of the training loader: the first epoch includes building the dataset (every
    PNG decoded once into a uint8 cache), later epochs must only read the cache (PNG opens
    during them are counted and reported)."""
    from PIL import Image

    from src_new.datasets.multicomponent import MultiComponentDataset
    from src_new.datasets.synthetic import write_dataset
    from src_new.pipeline.training import make_loader

    opened = [0]
    real_open = Image.open

    def counting_open(*args, **kwargs):
        opened[0] += 1
        return real_open(*args, **kwargs)

    with tempfile.TemporaryDirectory() as tmp:
        write_dataset(tmp, n=n, seed=0, test_fraction=0.0, height=cfg["model"]["image_size"][0],
                      width=cfg["model"]["image_size"][1])
        data_cfg = dict(cfg["data"], root_dir=tmp, condition_csv=f"{tmp}/dimensions.csv")
        Image.open = counting_open
        try:
            t0 = time.perf_counter()
            ds = MultiComponentDataset(data_cfg, "train", cfg["model"]["image_size"], verbose=False)
            loader = make_loader(ds, batch_size, 0, num_workers=num_workers)[0]
            count = sum(len(batch[0]) for batch in loader)
            first = count / (time.perf_counter() - t0)
            decodes_first = opened[0]
            later = []
            for _ in range(3):
                t0 = time.perf_counter()
                count = sum(len(batch[0]) for batch in loader)
                later.append(count / (time.perf_counter() - t0))
            decodes_later = opened[0] - decodes_first
        finally:
            Image.open = real_open
    return {"images": n, "num_workers": num_workers, "images_per_s_first_epoch": first,
            "images_per_s_later_epochs": statistics.median(later), "png_decodes_first_epoch": decodes_first,
            "png_decodes_later_epochs": decodes_later}


# ---------------------------------------------------------------- profile
OP_CATEGORIES = {"convolution": lambda op: "convolution" in op,
                 "matmul": lambda op: op in ("mm", "addmm", "bmm", "linear", "matmul"),
                 "normalization": lambda op: any(k in op for k in ("group_norm", "layer_norm", "batch_norm")),
                 "layout and dtype copies": lambda op: op in ("copy_", "_to_copy", "clone", "contiguous")}


def op_category(name):
    """The category of an aten op name (its self time is filed there): convolution, matmul,
    normalization, copies, else "elementwise and other"."""
    op = name.split("::")[-1]
    return next((category for category, match in OP_CATEGORIES.items() if match(op)), "elementwise and other")


def profile_step(step, n=15):
    """torch.profiler over one call of ``step``: the top ops by self CPU time and the share of
    time per category (convolutions, matmuls, normalization, copies, elementwise)."""
    from torch.profiler import ProfilerActivity, profile

    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if torch.cuda.is_available() else [])
    with profile(activities=activities) as prof:
        step()
    events = [e for e in prof.key_averages() if e.key.startswith("aten::")]
    total = sum(e.self_cpu_time_total for e in events) or 1
    shares = {}
    for e in events:
        shares[op_category(e.key)] = shares.get(op_category(e.key), 0.0) + e.self_cpu_time_total / total
    top = sorted(events, key=lambda e: e.self_cpu_time_total, reverse=True)[:n]
    return {"top_ops": [{"op": e.key, "self_cpu_s": e.self_cpu_time_total / 1e6,
                         "share": e.self_cpu_time_total / total, "calls": e.count} for e in top],
            "category_shares": dict(sorted(shares.items(), key=lambda kv: -kv[1]))}


def penalty_share(model, real, cond, precision, timer, repeats):
    """Share of one critic update's time (forward, backward, penalty) spent on the gradient
    penalty: the update timed as is and with the penalty replaced by a zero (side by side)."""
    device = real.device
    critic_params = list(model.critic.parameters())

    def update():
        with autocast(precision, device):
            loss = model.critic_step(real, cond)["critic_loss"]
        loss.backward()
        for p in critic_params:
            p.grad = None

    original = model.compute_gradient_penalty
    no_penalty = lambda *a, **k: real.new_zeros(())

    def without():
        model.compute_gradient_penalty = no_penalty
        try:
            update()
        finally:
            model.compute_gradient_penalty = original

    t, _ = timer.side_by_side({"with": update, "without": without}, repeats)
    return {"seconds_critic_update": t["with"], "seconds_without_penalty": t["without"],
            "penalty_share": 1 - t["without"] / t["with"]}


# ---------------------------------------------------------------- measurements
def measure_training(cfg, ours, timer, repeats, batch, skip_plain):
    """The trainer's step in fp32 and bf16 side by side, the GAN iteration against the plain
    reference loop (``PlainReference``, fp32), and their FLOPs -> (results, trainers, step batch)."""
    device = next(ours.parameters()).device
    trainers = {p: BenchTrainer(cfg, ours, precision=p) for p in ("fp32", "bf16")}
    per_step = trainers["fp32"].batches_per_step
    real = torch.rand(per_step * batch, ours.channels, *ours.image_size, device=device).round()
    cond = torch.randn(per_step * batch, ours.cond_dim, device=device) if ours.cond_dim else None
    plain = plain_copy(ours)                 # PlainReference calls the networks itself, unfused
    reference = PlainReference(plain, cfg)
    steps = {p: (lambda t=t: t.train_step(real, cond)) for p, t in trainers.items()}
    run_ours = lambda: trainers["fp32"].gan_step(real, cond)
    run_plain = lambda: reference.iteration(real, cond)
    flops_plain, flops_ours = count_flops(run_plain), count_flops(run_ours)
    flops_step = count_flops(steps["fp32"])  # the same ops in bf16 (autocast changes dtypes, not FLOPs)
    fns = {"step_fp32": steps["fp32"], "step_bf16": steps["bf16"], "ours": run_ours}
    if not skip_plain:
        fns["plain"] = run_plain
    medians, all_times = timer.side_by_side(fns, repeats)
    results = {     # "flops_plan": the plain reference's FLOPs (the key committed results use)
        "train_iteration": {
            "what": "n_critic critic updates (fresh minibatches) + generator update + EMA, with Adam steps, fp32 "
                    "(ours vs the plain reference loop)",
            "flops_plan": flops_plain, "flops_ours": flops_ours, "seconds_ours": medians["ours"],
            "seconds_plain": medians.get("plain", float("nan")), "timing_ours": spread(all_times["ours"]),
            "timing_plain": spread(all_times["plain"]) if "plain" in all_times else None},
        "training_step": {
            "what": "the trainer's train_step: the GAN iteration + the encoder update (training runs the encoder "
                    "every training.encoder_every steps), timed as one step",
            "encoder_every": cfg["training"]["encoder_every"], "batches_per_step": per_step, "flops": flops_step,
            **{p: {"seconds": medians[f"step_{p}"], "timing": spread(all_times[f"step_{p}"]),
                   "images_per_s": batch / medians[f"step_{p}"]} for p in trainers},
            "bf16_speedup": medians["step_fp32"] / medians["step_bf16"]},
    }
    del plain, reference
    return results, trainers, real, cond


def measure_sampling(ours, timer, repeats, n_samples, skip_plain):
    """Images/s of ``sample`` unconditional and guided, fp32 and bf16, and the plain loop."""
    device = next(ours.parameters()).device
    s_cond = torch.randn(n_samples, ours.cond_dim, device=device) if ours.cond_dim else None

    def run(precision, **kw):
        def fn():
            with autocast(precision, device):
                ours.sample(batch_size=n_samples, **kw)
        return fn

    g_flops_uncond = count_flops(run("fp32"))
    g_flops_guided = count_flops(run("fp32", cond=s_cond, guidance_scale=2.0))
    plain_g = copy.deepcopy(ours.ema_generator)
    plain_g.memory_format = torch.contiguous_format
    for p in plain_g.parameters():
        p.data = p.data.contiguous()
    z = torch.randn(n_samples, ours.latent_dim, device=device)

    def sample_plain():                                  # no_grad, NCHW, eager, fp32
        with torch.no_grad():
            plain_g(z, None)

    fns = {f"{kind}_{p}": run(p, **kw) for p in ("fp32", "bf16")
           for kind, kw in (("uncond", {}), ("guided", {"cond": s_cond, "guidance_scale": 2.0}))}
    if not skip_plain:
        fns["plain_uncond"] = sample_plain
    s, _ = timer.side_by_side(fns, repeats)
    out = {"num_samples": n_samples, "generator_gflop_per_sample": g_flops_uncond / n_samples / 1e9,
           "images_per_s_plain_unconditional": n_samples / s["plain_uncond"] if "plain_uncond" in s else None}
    for p in ("fp32", "bf16"):
        out[p] = {"seconds_unconditional": s[f"uncond_{p}"], "seconds_guided": s[f"guided_{p}"],
                  "images_per_s_unconditional": n_samples / s[f"uncond_{p}"],
                  "images_per_s_guided": n_samples / s[f"guided_{p}"],
                  "gflops_unconditional": g_flops_uncond / s[f"uncond_{p}"] / 1e9,
                  "gflops_guided": g_flops_guided / s[f"guided_{p}"] / 1e9}
    out["bf16_speedup_unconditional"] = s["uncond_fp32"] / s["uncond_bf16"]
    return out


def measure_inpainting(cfg, ours, timer, repeats, quick, restarts, skip_plain):
    """Seconds of ``inpaint`` (ours fp32 / bf16) against ``plain_inpaint``, alternated."""
    device = next(ours.parameters()).device
    steps, inp_batch = (2, 2) if quick else (100, 8)
    names = cfg["data"]["component_dirs"]
    truth = torch.rand(inp_batch, ours.channels, *ours.image_size, device=device).round()
    mask = create_mask(names[:2], names, inp_batch, ours.image_size, device=device)
    plain_model = plain_copy(ours)

    def run(precision, num_steps=steps):
        def fn():
            with autocast(precision, device):
                ours.inpaint(truth * mask, mask, num_steps=num_steps, lr=0.01, restarts=restarts,
                             loss="mse")   # the plain loop's loss
        return fn

    fns = {"ours": run("fp32"), "bf16": run("bf16")}
    if not skip_plain:
        fns["plain"] = lambda: plain_inpaint(plain_model, truth * mask, mask, steps, 0.01, restarts)
    # timed like the iteration: a warm-up round (1 step each), then alternated rounds
    run("fp32", 1)(), run("bf16", 1)()
    plain_inpaint(plain_model, truth * mask, mask, 1, 0.01, restarts)
    inp, inp_all = timer.side_by_side(fns, repeats, warmup=0)
    return {"batch": inp_batch, "steps": steps, "restarts": restarts, "seconds_ours": inp["ours"],
            "seconds_bf16": inp["bf16"], "bf16_speedup": inp["ours"] / inp["bf16"],
            "seconds_plain": inp.get("plain", float("nan")), "timing_ours": spread(inp_all["ours"]),
            "timing_bf16": spread(inp_all["bf16"]),
            "timing_plain": spread(inp_all["plain"]) if "plain" in inp_all else None,
            "speedup_vs_plain": inp.get("plain", float("nan")) / inp["ours"]}


def measure_profile(ours, trainers, real, cond, batch, timer, repeats):
    """--profile, per precision: torch.profiler over one training step (``profile_step``) and
    the gradient penalty's share of a critic update (``penalty_share``, on one minibatch)."""
    one_real, one_cond = real[:batch], None if cond is None else cond[:batch]
    return {p: {**profile_step(lambda t=t: t.train_step(real, cond)),
                **penalty_share(ours, one_real, one_cond, p, timer, repeats)}
            for p, t in trainers.items()}


def measure_compile(ours, trainer, timer, repeats, real, cond, results):
    """--compile (training.compile=true): the no-grad generator passes (critic steps, sampling)
    compiled. Compile time = first call minus the eager median already in ``results``; then
    timed like the eager iteration and unconditional sampling."""
    t_eager = results["train_iteration"]["seconds_ours"]
    n_samples = results["sampling"]["num_samples"]
    t_sample = results["sampling"]["fp32"]["seconds_unconditional"]
    sample_uncond = lambda: ours.sample(batch_size=n_samples)
    ours.compile_generator_passes()
    t0 = time.perf_counter()
    trainer.gan_step(real, cond)
    first_train = time.perf_counter() - t0
    t0 = time.perf_counter()
    sample_uncond()
    first_sample = time.perf_counter() - t0
    t_train = timer(lambda: trainer.gan_step(real, cond), repeats)
    t_samp = timer(sample_uncond, max(repeats, 3))
    ours._compiled = {}
    saved = t_eager - t_train
    return {"compile_seconds_training": first_train - t_eager, "compile_seconds_sampling": first_sample - t_sample,
            "seconds_iteration": t_train, "speedup_iteration_vs_eager": t_eager / t_train,
            "iterations_to_pay_back": (first_train - t_eager) / saved if saved > 0 else None,
            "images_per_s_unconditional": n_samples / t_samp, "speedup_sampling_vs_eager": t_sample / t_samp}


def add_accounting(results, ceilings, sticks):
    """Rates and utilisation of every measurement against the yardsticks of both precisions."""
    ceiling = statistics.median(ceilings)
    sticks["fp32"]["matmul_samples"] = ceilings
    sticks["fp32"]["matmul"] = ceiling
    sticks["fp32"]["best"] = max(ceiling, sticks["fp32"]["conv"])
    results["yardsticks"] = sticks
    results["ceiling_gflops"], results["ceiling_samples_gflops"] = ceiling, ceilings   # fp32 matmul
    results["conv_ceiling_gflops"] = sticks["fp32"]["conv"]
    results["yardstick_gflops"] = sticks["fp32"]["best"]
    t = results["train_iteration"]
    t.update(accounting(t["flops_plan"], t["flops_ours"], t["seconds_plain"], t["seconds_ours"], ceiling,
                        sticks["fp32"]["conv"]))
    t["images_per_s"] = results["batch_size"] / t["seconds_ours"]
    step = results["training_step"]
    for p in ("fp32", "bf16"):
        rate = step["flops"] / step[p]["seconds"] / 1e9
        step[p].update(gflops_executed=rate, utilisation_fp32_yardstick=rate / sticks["fp32"]["best"],
                       utilisation_bf16_yardstick=rate / sticks["bf16"]["best"],
                       utilisation_bf16_conv_fwd_bwd=rate / sticks["bf16"]["conv_fwd_bwd"])
    for p in ("fp32", "bf16"):
        s = results["sampling"][p]
        for key in ("unconditional", "guided"):
            s[f"utilisation_{key}"] = s[f"gflops_{key}"] / sticks[p]["best"]


class Machine:
    """What the machine did over the run (numbers on shared machines are noisy): an fp32 matmul
    rate and the 1-min load average sampled between sections (``sample``), and at the end the
    wall time, CPU utilisation and peak memory since construction (``usage``)."""

    def __init__(self, device, timer, mm_n):
        self.device, self.timer, self.mm_n = device, timer, mm_n
        self.ceilings, self.loads = [], {}
        self.cpu_start, self.wall_start = os.times(), time.time()

    def sample(self, section):
        self.ceilings.append(matmul_ceiling(self.device, self.timer, self.mm_n))
        self.loads[section] = os.getloadavg()[0]

    def usage(self):
        cpu_end = os.times()
        busy = (cpu_end.user - self.cpu_start.user) + (cpu_end.system - self.cpu_start.system)
        wall = time.time() - self.wall_start
        out = {"wall_seconds": wall, "cpu_utilisation": busy / max(wall, 1e-9) / max(torch.get_num_threads(), 1),
               "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}
        if self.device.type == "cuda":
            out["peak_cuda_memory_mb"] = torch.cuda.max_memory_allocated(self.device) / 2 ** 20
        out["load_average_1min"] = self.loads
        return out


# ---------------------------------------------------------------- main
def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cpu", help="cpu | cuda")
    parser.add_argument("--config", default="wgan_gp_default", help="config name or path (default: wgan_gp_default)")
    parser.add_argument("--quick", action="store_true",
                        help="tiny config and batch, 2 alternated repetitions each (smoke test; figures meaningless)")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: as set)")
    parser.add_argument("--repeats", type=int, default=5,
                        help="timed rounds per measurement, order alternated (median and spread; default 5, min 5)")
    parser.add_argument("--inpaint-restarts", type=int, default=1, help="restarts for the inpainting comparison")
    parser.add_argument("--compile", action="store_true",
                        help="also time training.compile=true (compiled no-grad generator passes) and "
                             "compiled sampling, with compile times")
    parser.add_argument("--profile", action="store_true",
                        help="profile one training step per precision (top ops, time per op category) and "
                             "time the gradient penalty's share of a critic update")
    parser.add_argument("--skip-plain", action="store_true", help="skip the plain references (faster)")
    parser.add_argument("--out", help="JSON path (default: bench/results/bench_<device>[_quick].json)")
    args = parser.parse_args(argv)
    if not args.quick and args.repeats < 5:
        parser.error(f"--repeats {args.repeats}: use at least 5 (a median of fewer is noise on a shared machine)")
    return args


def setup(args):
    """Threads, device (deterministic kernels on CPU, as the trainer sets them) and the resolved
    config (``PLAN_OVERRIDES``, and ``QUICK_OVERRIDES`` in quick mode) -> (device, cfg)."""
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    if device.type == "cpu":
        torch.use_deterministic_algorithms(True, warn_only=True)
    cfg = load_config(args.config)
    apply_overrides(cfg, PLAN_OVERRIDES)
    if args.quick:
        apply_overrides(cfg, QUICK_OVERRIDES)
    return device, validate_config(auto_complete_config(cfg, verbose=False))


def sizes(args, cfg, device):
    """The run's sizes, tiny in quick mode: timed rounds, training batch, matmul side, number of
    samples, images for the data-loading measurement."""
    quick = args.quick
    return {"repeats": 2 if quick else args.repeats, "batch": 8 if quick else cfg["training"]["batch_size"],
            "mm_n": 512 if quick else (8192 if device.type == "cuda" else 2048),
            "samples": 8 if quick else 64, "data_images": 64 if quick else 1024}


def run_header(args, argv, device, cfg, size):
    """The results' first keys: provenance (the command, commit, machine, resolved config) and
    the run's settings."""
    command = sys.argv if argv is None else ["bench/bench_wgan.py", *argv]
    return {"provenance": provenance(command, device, resolved_config=cfg), "device": str(device),
            "device_name": torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu",
            "threads": torch.get_num_threads(), "config": args.config, "batch_size": size["batch"],
            "quick": args.quick, "repeats": size["repeats"], "torch": torch.__version__}


def output_path(args, device):
    """--out, else bench/results/bench_<device>[_quick].json."""
    if args.out:
        return Path(args.out)
    return ROOT / "bench" / "results" / f"bench_{device.type}{'_quick' if args.quick else ''}.json"


def main(argv=None):
    args = parse_args(argv)
    device, cfg = setup(args)
    timer, size = Timer(device), sizes(args, cfg, device)
    repeats, batch = size["repeats"], size["batch"]
    machine = Machine(device, timer, size["mm_n"])
    results = run_header(args, argv, device, cfg, size)
    machine.sample("start")
    sticks = yardsticks(device, timer, args.quick, size["mm_n"])
    torch.manual_seed(0)
    ours = build_wgan_gp(cfg).to(device)
    train, trainers, real, cond = measure_training(cfg, ours, timer, repeats, batch, args.skip_plain)
    results.update(train)
    machine.sample("after training step")
    if args.profile:
        results["profile"] = measure_profile(ours, trainers, real, cond, batch, timer, repeats)
    results["sampling"] = measure_sampling(ours, timer, repeats, size["samples"], args.skip_plain)
    machine.sample("after sampling")
    results["inpainting"] = measure_inpainting(cfg, ours, timer, repeats, args.quick, args.inpaint_restarts,
                                               args.skip_plain)
    if args.compile:
        results["compile"] = measure_compile(ours, trainers["fp32"], timer, repeats, real, cond, results)
    results["data"] = data_throughput(cfg, size["data_images"], batch, 0)
    machine.sample("end")
    add_accounting(results, machine.ceilings, sticks)
    results.update(machine.usage())
    out = output_path(args, device)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2, default=str))
    print(format_table(results))
    print(f"\nwrote {out}")
    return results


# ---------------------------------------------------------------- the console table
# bench/render_docs.py's ``bench_cpu`` renders the committed bench_cpu.json for the documents: a
# Markdown summary with its own rounding and emphasis. This is the full report of one run.
def _pct(x):
    return f"{100 * x:.0f}%"


def _range(sp):
    return f"[{sp['min']:.3g}-{sp['max']:.3g}]" if sp else ""


def _iteration_rows(r):
    """Device, the two yardsticks, and the GAN iteration: ours vs the plain reference."""
    t, y = r["train_iteration"], r["yardsticks"]
    stick = lambda p: (f"{y[p]['best']:.0f} GFLOP/s = max(matmul {y[p]['matmul']:.0f}, 3x3 conv {y[p]['conv']:.0f}); "
                       f"conv forward + backward {y[p]['conv_fwd_bwd']:.0f}")
    return [
        ("device / threads", f"{r['device']} ({r['device_name']}) / {r['threads']} threads, torch {r['torch']}"),
        ("yardstick fp32", stick("fp32") + f" (matmul median of "
                                           f"{', '.join(f'{c:.0f}' for c in r['ceiling_samples_gflops'])})"),
        ("yardstick bf16", stick("bf16")),
        ("train iteration FLOPs", f"plain {t['flops_plan'] / 1e12:.3f} TFLOP, ours executes {t['flops_ours'] / 1e12:.3f}"
                                  f" (batch {r['batch_size']}): avoided work {t['avoided_work_factor']:.2f}x"),
        ("train iteration, ours (fp32)", f"{t['seconds_ours']:.3f} s {_range(t['timing_ours'])} (median of {r['repeats']}); "
                                         f"{t['gflops_executed']:.1f} GFLOP/s executed = "
                                         f"{_pct(t['utilisation_executed'])} of the fp32 yardstick"),
        ("train iteration, plain reference", f"{t['seconds_plain']:.3f} s {_range(t['timing_plain'])}; "
                                             f"{t['gflops_plain_executed']:.1f} GFLOP/s = "
                                             f"{_pct(t['utilisation_plain'])} of the fp32 yardstick"),
        ("speed-up over plain", f"{t['speedup_vs_plain']:.2f}x wall clock = {t['avoided_work_factor']:.2f}x less work"
                                f" x {t['gflops_executed'] / t['gflops_plain_executed']:.2f}x the rate"),
    ]


def _step_rows(r):
    """The training step per precision and the bf16 speed-ups."""
    step, s, i = r["training_step"], r["sampling"], r["inpainting"]
    rows = []
    for p in ("fp32", "bf16"):
        q = step[p]
        rows.append((f"training step, {p}", f"{q['seconds']:.3f} s {_range(q['timing'])} = {q['images_per_s']:.1f} img/s, "
                     f"{q['gflops_executed']:.1f} GFLOP/s = {_pct(q['utilisation_fp32_yardstick'])} of fp32 / "
                     f"{_pct(q['utilisation_bf16_yardstick'])} of bf16 yardstick "
                     f"({_pct(q['utilisation_bf16_conv_fwd_bwd'])} of bf16 conv fwd+bwd)"))
    rows.append(("bf16 speed-up", f"training step {step['bf16_speedup']:.2f}x, sampling "
                                  f"{s['bf16_speedup_unconditional']:.2f}x, inpainting {i['bf16_speedup']:.2f}x "
                                  f"(side by side)"))
    return rows


def _sampling_rows(r):
    """Sampling, inpainting and data loading."""
    s, i, d = r["sampling"], r["inpainting"], r["data"]
    per_precision = "; ".join(
        f"{p} {s[p]['images_per_s_unconditional']:.0f} img/s unconditional ({_pct(s[p]['utilisation_unconditional'])}"
        f" of its yardstick), {s[p]['images_per_s_guided']:.0f} guided" for p in ("fp32", "bf16"))
    plain = s.get("images_per_s_plain_unconditional")
    return [
        ("sampling", f"{s['num_samples']} samples, {s['generator_gflop_per_sample']:.2f} GFLOP/sample: {per_precision}"
                     + (f"; plain {plain:.1f} img/s" if plain else "")),
        ("inpainting", f"batch {i['batch']} x {i['steps']} steps x {i['restarts']} restart(s): "
                       f"{i['seconds_ours']:.2f} s {_range(i['timing_ours'])} ours fp32, {i['seconds_bf16']:.2f} s bf16, "
                       f"{i['seconds_plain']:.2f} s {_range(i['timing_plain'])} plain reference "
                       f"({i['speedup_vs_plain']:.2f}x)"),
        ("data loading", f"{d['images_per_s_first_epoch']:.0f} img/s first epoch (decodes "
                         f"{d['png_decodes_first_epoch']} PNGs), {d['images_per_s_later_epochs']:.0f} img/s later "
                         f"epochs ({d['png_decodes_later_epochs']} PNG decodes)"),
    ]


def _usage_rows(r):
    """--compile's row when measured, then memory, CPU utilisation and load."""
    rows = []
    if "compile" in r:
        c = r["compile"]
        pay = c["iterations_to_pay_back"]
        rows.append(("training.compile=true", f"{c['seconds_iteration']:.3f} s/iteration "
                     f"({c['speedup_iteration_vs_eager']:.3f}x eager), compile {c['compile_seconds_training']:.0f} s"
                     f" (pays back after {'never' if pay is None else f'{pay:.0f} iterations'}); sampling "
                     f"{c['images_per_s_unconditional']:.1f} img/s ({c['speedup_sampling_vs_eager']:.3f}x), "
                     f"compile {c['compile_seconds_sampling']:.0f} s"))
    return rows + [
        ("peak RSS", f"{r['peak_rss_mb']:.0f} MB" + (f", peak CUDA {r['peak_cuda_memory_mb']:.0f} MB"
                                                      if "peak_cuda_memory_mb" in r else "")),
        ("CPU utilisation / load", f"{_pct(r['cpu_utilisation'])} of {r['threads']} threads over "
                                   f"{r['wall_seconds']:.0f} s; 1-min load average "
                                   + ", ".join(f"{v:.2f} {k}" for k, v in r["load_average_1min"].items())),
    ]


def _profile_lines(r):
    """--profile: per precision, the time per op category, the penalty's share and the top ops."""
    lines = []
    for p, prof in r.get("profile", {}).items():
        lines.append(f"\none training step in {p} (torch.profiler, self CPU time): "
                     + ", ".join(f"{k} {_pct(v)}" for k, v in prof["category_shares"].items())
                     + f"; the gradient penalty is {_pct(prof['penalty_share'])} of a critic update")
        lines += [f"  {o['op'][:40]:40s} {o['self_cpu_s']:8.3f} s  {_pct(o['share']):>4s}  {o['calls']} calls"
                  for o in prof["top_ops"]]
    return lines


def format_table(r):
    """The console report of one run's results: one row per figure, then the profile."""
    rows = _iteration_rows(r) + _step_rows(r) + _sampling_rows(r) + _usage_rows(r)
    width = max(len(k) for k, _ in rows)
    return "\n".join([f"{k.ljust(width)}  {v}" for k, v in rows] + _profile_lines(r))


if __name__ == "__main__":
    main()
