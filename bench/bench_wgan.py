"""WGAN-GP benchmark: matmul ceiling, training iteration (ours vs the plan's plain loop, side
by side), encoder step, sampling, inpainting (ours vs a plain loop), data loading, memory.

    python bench/bench_wgan.py [--device cpu|cuda] [--config wgan_gp_default] [--threads N]
                               [--compile] [--bf16] [--profile] [--quick] [--out PATH]

Prints a table and writes JSON (default bench/results/bench_<device>[_quick].json).

How it measures (numbers on shared machines are noisy, so it leans on medians and ratios):
- every timing is a median over ``--repeats`` runs after a warm-up run; ours and the plain
  reference are interleaved (ours, plain, ours, plain, ...) so a load change hits both;
- the matmul ceiling (large square fp32 ``torch.mm``, same thread count) is sampled at the
  start, in the middle and at the end; fractions use the median of those samples;
- "our iteration" is the trainer's own code (``WGANGPTrainer.gan_step``: n_critic critic
  updates, one generator update, EMA, with the trainer's optimizers), the encoder update
  (``WGANGPTrainer.encoder_step``) is timed on its own;
- the plain reference is the plan's pseudo-code ("Training Loop Structure"), written out
  below with the same networks and weights: separate critic calls on real and fake, the
  literal concatenated condition map, critic weights trainable in the generator step,
  default (NCHW) layout, default Adam, nothing compiled;
- FLOPs come from ``torch.utils.flop_counter.FlopCounterMode`` (convolutions and matmuls,
  forward, backward and the penalty's double backward), see ``FlopCounter``;
- on CUDA times come from CUDA events, and peak device memory is reported.
"""
from __future__ import annotations

import argparse
import contextlib
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
from src_new.models.wgan_gp.train import WGANGPTrainer, make_optimizers  # noqa: E402
from src_new.utils.config import apply_overrides, auto_complete_config, load_config, validate_config  # noqa: E402
from src_new.utils.ema import EMA  # noqa: E402
from src_new.utils.masks import create_mask  # noqa: E402

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
        """{name: median seconds}, the functions interleaved round by round."""
        for _ in range(warmup):
            for fn in fns.values():
                fn()
        times = {name: [] for name in fns}
        for _ in range(repeats):
            for name, fn in fns.items():
                times[name].append(self.once(fn))
        return {name: statistics.median(t) for name, t in times.items()}, times

    def __call__(self, fn, repeats, warmup=1):
        return self.side_by_side({"fn": fn}, repeats, warmup)[0]["fn"]


def matmul_ceiling(device, timer, n):
    a, b = torch.randn(n, n, device=device), torch.randn(n, n, device=device)
    seconds = timer(lambda: torch.mm(a, b), repeats=5, warmup=2)
    return 2 * n ** 3 / seconds / 1e9


def conv_ceiling(device, timer, quick):
    """A second yardstick: the rate of one large, well-shaped 3x3 convolution (256 -> 256
    channels, batch 64 at 16x8, channels_last, no autograd), the generator's bread and butter.
    On CPUs where the BLAS sgemm is not the fastest kernel (e.g. MKL on AMD), convolutions
    through oneDNN can run faster than torch.mm, so fractions of the matmul ceiling above
    100% are possible; this one says how close a network gets to its best convolution."""
    b, c, h, w = (8, 64, 16, 8) if quick else (64, 256, 16, 8)
    x = torch.randn(b, c, h, w, device=device).contiguous(memory_format=torch.channels_last)
    weight = torch.randn(c, c, 3, 3, device=device).contiguous(memory_format=torch.channels_last)
    with torch.no_grad():
        seconds = timer(lambda: F.conv2d(x, weight, padding=1), repeats=5, warmup=2)
    return 2 * b * c * c * 9 * h * w / seconds / 1e9


# ---------------------------------------------------------------- our iteration = the trainer's code
class _NoDist:
    enabled, is_main = False, True

    def average_gradients(self, params):
        pass


class BenchTrainer(WGANGPTrainer):
    """The trainer's ``gan_step``/``encoder_step`` on a given model, without data or run folder."""

    def __init__(self, cfg, model, autocast=None):    # noqa: the base needs data and a run dir
        self.cfg, self.tcfg = cfg, cfg["training"]
        self.model, self.device = model, next(model.parameters()).device
        self.dist = _NoDist()
        self.ema = EMA(model.generator, self.tcfg["ema_decay"], self.tcfg["ema_update_every"],
                       ema_model=model.ema_generator)
        self.opt_g, self.opt_c, self.opt_e = make_optimizers(model, self.tcfg)
        self.autocast = autocast or contextlib.nullcontext()
        self.epoch, self.step = 0, 0


# ---------------------------------------------------------------- the plan's plain iteration
class PlainReference:
    """The plan's training loop, literally, on its own copy of the networks."""

    def __init__(self, model, cfg):
        t = cfg["training"]
        self.model = model
        betas = (float(t["beta1"]), float(t["beta2"]))
        self.opt_c = torch.optim.Adam(model.critic.parameters(), t["lr_critic"], betas=betas)
        self.opt_g = torch.optim.Adam(model.generator.parameters(), t["lr_generator"], betas=betas)
        self.ema = EMA(model.generator, t["ema_decay"], t["ema_update_every"], ema_model=model.ema_generator)

    def gradient_penalty(self, real, fake, cond):
        m = self.model
        eps = torch.rand(real.shape[0], 1, 1, 1, device=real.device)
        x_hat = (eps * real + (1 - eps) * fake).requires_grad_(True)
        out = m.critic(x_hat, cond, concat=True)
        grad = torch.autograd.grad(out, x_hat, grad_outputs=torch.ones_like(out), create_graph=True)[0]
        return m.lambda_gp * ((grad.flatten(1).norm(2, dim=1) - 1) ** 2).mean()

    def iteration(self, real, cond):
        m = self.model
        G, D = m.generator, m.critic
        for _ in range(m.n_critic):
            self.opt_c.zero_grad()
            z = torch.randn(real.shape[0], m.latent_dim, device=real.device)
            cond_for_gen = None if (cond is None or torch.rand(()) < m.cond_drop_prob) else cond
            with torch.no_grad():
                fake = G(z, cond_for_gen)
            critic_real = D(real, cond, concat=True)
            critic_fake = D(fake.detach(), cond, concat=True)
            wasserstein_distance = critic_real.mean() - critic_fake.mean()
            gp = self.gradient_penalty(real, fake, cond)
            critic_loss = -wasserstein_distance + gp
            critic_loss.backward()
            self.opt_c.step()
        self.opt_g.zero_grad()
        z = torch.randn(real.shape[0], m.latent_dim, device=real.device)
        cond_for_gen = None if (cond is None or torch.rand(()) < m.cond_drop_prob) else cond
        fake = G(z, cond_for_gen)
        critic_fake = D(fake, cond, concat=True)
        generator_loss = -critic_fake.mean()
        generator_loss.backward()
        self.opt_g.step()
        self.ema.update()
        return critic_loss.item(), generator_loss.item()


def plain_inpaint(model, partial, mask, num_steps, lr, restarts=1):
    """The plan's latent-optimization loop: generator weights left trainable, restarts run one
    after another (the first from the encoder, the others from N(0, I)), best kept per sample."""
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
    from src_new.utils.training import make_loader

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
def top_ops(fn, n=15):
    from torch.profiler import ProfilerActivity, profile

    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if torch.cuda.is_available() else [])
    with profile(activities=activities) as prof:
        fn()
    events = sorted(prof.key_averages(), key=lambda e: e.self_cpu_time_total, reverse=True)
    total = sum(e.self_cpu_time_total for e in events) or 1
    return [{"op": e.key, "self_cpu_s": e.self_cpu_time_total / 1e6, "share": e.self_cpu_time_total / total,
             "calls": e.count} for e in events[:n]]


# ---------------------------------------------------------------- main
def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cpu", help="cpu | cuda")
    parser.add_argument("--config", default="wgan_gp_default", help="config name or path (default: wgan_gp_default)")
    parser.add_argument("--quick", action="store_true", help="tiny config, one repetition each (smoke test)")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: as set)")
    parser.add_argument("--repeats", type=int, default=3, help="timed repetitions per measurement (median)")
    parser.add_argument("--inpaint-restarts", type=int, default=1, help="restarts for the inpainting comparison")
    parser.add_argument("--compile", action="store_true",
                        help="also time training.compile=true (compiled no-grad generator passes) and "
                             "compiled sampling, with compile times")
    parser.add_argument("--bf16", action="store_true", help="CUDA: also time the iteration under bf16 autocast")
    parser.add_argument("--profile", action="store_true", help="record torch.profiler top ops of one iteration")
    parser.add_argument("--skip-plain", action="store_true", help="skip the plain references (faster)")
    parser.add_argument("--out", help="JSON path (default: bench/results/bench_<device>[_quick].json)")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    if device.type == "cpu":
        torch.use_deterministic_algorithms(True, warn_only=True)    # as the trainer does on CPU
    timer = Timer(device)
    repeats = 1 if args.quick else args.repeats
    cfg = load_config(args.config)
    if args.quick:
        apply_overrides(cfg, QUICK_OVERRIDES)
    cfg = validate_config(auto_complete_config(cfg, verbose=False))
    batch = 8 if args.quick else cfg["training"]["batch_size"]
    cpu_start, wall_start = os.times(), time.time()
    results = {"device": str(device), "device_name": torch.cuda.get_device_name(device) if device.type == "cuda"
               else "cpu", "threads": torch.get_num_threads(), "config": args.config, "batch_size": batch,
               "quick": args.quick, "repeats": repeats, "torch": torch.__version__}
    mm_n = 512 if args.quick else (8192 if device.type == "cuda" else 2048)
    ceilings, loads = [], {}

    def checkpoint(section):
        """Between sections: one more ceiling sample and the load average (noisy machines)."""
        ceilings.append(matmul_ceiling(device, timer, mm_n))
        loads[section] = os.getloadavg()[0]

    checkpoint("start")
    conv_rate = conv_ceiling(device, timer, args.quick)

    # ------------------------------------------------------------ training iteration
    torch.manual_seed(0)
    ours = build_wgan_gp(cfg).to(device)
    plain = copy.deepcopy(ours)
    plain.fast = False                       # NCHW, unfused; PlainReference calls the networks itself
    trainer = BenchTrainer(cfg, ours)
    reference = PlainReference(plain, cfg)
    real = torch.rand(batch, ours.channels, *ours.image_size, device=device).round()
    cond = torch.randn(batch, ours.cond_dim, device=device) if ours.cond_dim else None
    run_ours = lambda: trainer.gan_step(real, cond)
    run_plain = lambda: reference.iteration(real, cond)
    run_encoder = lambda: trainer.encoder_step(real, cond)
    flops_plan = count_flops(run_plain)                 # the algorithm's FLOPs
    flops_ours = count_flops(run_ours)                  # what ours executes (less: see the table)
    flops_encoder = count_flops(run_encoder)
    fns = {"ours": run_ours} if args.skip_plain else {"ours": run_ours, "plain": run_plain}
    medians, all_times = timer.side_by_side(fns, repeats)
    t_ours, t_plain = medians["ours"], medians.get("plain", float("nan"))
    t_encoder = timer(run_encoder, repeats)
    checkpoint("after training iteration")
    results["train_iteration"] = {
        "what": "n_critic critic updates + generator update + EMA, with Adam steps",
        "flops_plan": flops_plan, "flops_ours": flops_ours, "seconds_ours": t_ours, "seconds_plain": t_plain,
        "seconds_ours_all": all_times["ours"], "seconds_plain_all": all_times.get("plain", []),
        "gflops_effective": flops_plan / t_ours / 1e9, "gflops_executed": flops_ours / t_ours / 1e9,
        "gflops_plain": flops_plan / t_plain / 1e9,
        "speedup_vs_plain": t_plain / t_ours, "images_per_s": batch / t_ours}
    results["encoder_step"] = {"seconds": t_encoder, "flops": flops_encoder,
                               "gflops": flops_encoder / t_encoder / 1e9}
    if args.bf16 and device.type == "cuda":
        bf16_trainer = BenchTrainer(cfg, ours, autocast=torch.autocast("cuda", dtype=torch.bfloat16))
        results["train_iteration_bf16"] = {"seconds": timer(lambda: bf16_trainer.gan_step(real, cond), repeats)}
    if args.profile:
        results["profile_top_ops"] = top_ops(run_ours)
    del plain, reference

    # ------------------------------------------------------------ sampling
    n_samples = 8 if args.quick else 64
    s_cond = torch.randn(n_samples, ours.cond_dim, device=device) if ours.cond_dim else None
    sample_uncond = lambda: ours.sample(batch_size=n_samples)
    sample_guided = lambda: ours.sample(cond=s_cond, guidance_scale=2.0)
    g_flops_uncond, g_flops_guided = count_flops(sample_uncond), count_flops(sample_guided)
    plain_g = copy.deepcopy(ours.ema_generator)
    plain_g.memory_format = torch.contiguous_format
    for p in plain_g.parameters():
        p.data = p.data.contiguous()
    z = torch.randn(n_samples, ours.latent_dim, device=device)

    def sample_plain():                                  # no_grad, NCHW, eager
        with torch.no_grad():
            plain_g(z, None)

    fns = {"uncond": sample_uncond, "guided": sample_guided}
    if not args.skip_plain:
        fns["plain_uncond"] = sample_plain
    s, _ = timer.side_by_side(fns, max(repeats, 3) if not args.quick else 1)
    results["sampling"] = {
        "num_samples": n_samples, "generator_gflop_per_sample": g_flops_uncond / n_samples / 1e9,
        "seconds_unconditional": s["uncond"], "seconds_guided": s["guided"],
        "images_per_s_unconditional": n_samples / s["uncond"], "images_per_s_guided": n_samples / s["guided"],
        "gflops_unconditional": g_flops_uncond / s["uncond"] / 1e9,
        "gflops_guided": g_flops_guided / s["guided"] / 1e9,
        "images_per_s_plain_unconditional": n_samples / s["plain_uncond"] if "plain_uncond" in s else None}

    checkpoint("after sampling")
    # ------------------------------------------------------------ inpainting
    steps, inp_batch = (2, 2) if args.quick else (100, 8)
    names = cfg["data"]["component_dirs"]
    truth = torch.rand(inp_batch, ours.channels, *ours.image_size, device=device).round()
    mask = create_mask(names[:2], names, inp_batch, ours.image_size, device=device)
    restarts = args.inpaint_restarts
    plain_model = copy.deepcopy(ours)
    plain_model.fast = False
    ours.inpaint(truth * mask, mask, num_steps=1, restarts=restarts)                 # warm-up
    plain_inpaint(plain_model, truth * mask, mask, 1, 0.01, restarts)
    fns = {"ours": lambda: ours.inpaint(truth * mask, mask, num_steps=steps, lr=0.01, restarts=restarts)}
    if not args.skip_plain:
        fns["plain"] = lambda: plain_inpaint(plain_model, truth * mask, mask, steps, 0.01, restarts)
    # 100 steps are a long measurement already: one timed run each after the 1-step warm-up
    inp, _ = timer.side_by_side(fns, 1, warmup=0)
    results["inpainting"] = {"batch": inp_batch, "steps": steps, "restarts": restarts, "seconds_ours": inp["ours"],
                             "seconds_plain": inp.get("plain", float("nan")),
                             "speedup_vs_plain": inp.get("plain", float("nan")) / inp["ours"]}
    del plain_model

    # ------------------------------------------------------------ torch.compile (optional)
    if args.compile:
        results["compile"] = compile_measurements(cfg, ours, trainer, timer, repeats, real, cond, t_ours,
                                                  sample_uncond, s["uncond"], n_samples)

    # ------------------------------------------------------------ data
    results["data"] = data_throughput(cfg, 64 if args.quick else 1024, batch, 0)

    checkpoint("end")
    ceiling = statistics.median(ceilings)
    results["ceiling_gflops"], results["ceiling_samples_gflops"] = ceiling, ceilings
    results["conv_ceiling_gflops"] = conv_rate
    t = results["train_iteration"]
    t["fraction_of_ceiling_effective"] = t["gflops_effective"] / ceiling
    t["fraction_of_ceiling_executed"] = t["gflops_executed"] / ceiling
    t["fraction_of_ceiling_plain"] = t["gflops_plain"] / ceiling
    t["fraction_of_conv_ceiling_executed"] = t["gflops_executed"] / conv_rate
    results["encoder_step"]["fraction_of_ceiling"] = results["encoder_step"]["gflops"] / ceiling
    for key in ("unconditional", "guided"):
        results["sampling"][f"fraction_of_ceiling_{key}"] = results["sampling"][f"gflops_{key}"] / ceiling

    cpu_end = os.times()
    busy = (cpu_end.user - cpu_start.user) + (cpu_end.system - cpu_start.system)
    wall = time.time() - wall_start
    results["wall_seconds"] = wall
    results["cpu_utilisation"] = busy / max(wall, 1e-9) / max(torch.get_num_threads(), 1)
    results["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    if device.type == "cuda":
        results["peak_cuda_memory_mb"] = torch.cuda.max_memory_allocated(device) / 2 ** 20
    results["load_average_1min"] = loads

    out = Path(args.out) if args.out else ROOT / "bench" / "results" / f"bench_{device.type}{'_quick' if args.quick else ''}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2))
    print(format_table(results))
    print(f"\nwrote {out}")
    return results


def compile_measurements(cfg, ours, trainer, timer, repeats, real, cond, t_eager, sample_uncond, t_sample, n_samples):
    """training.compile=true: the no-grad generator passes (critic steps, sampling) compiled.
    Compile time = first call minus an eager call; then timed like the eager iteration."""
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


def format_table(r):
    t, e, s, i, d = r["train_iteration"], r["encoder_step"], r["sampling"], r["inpainting"], r["data"]
    pct = lambda x: f"{100 * x:.0f}%"
    rows = [
        ("device / threads", f"{r['device']} ({r['device_name']}) / {r['threads']} threads, torch {r['torch']}"),
        ("matmul ceiling", f"{r['ceiling_gflops']:.1f} GFLOP/s fp32 (median of samples "
                           f"{', '.join(f'{c:.0f}' for c in r['ceiling_samples_gflops'])} taken between sections)"),
        ("conv yardstick", f"{r['conv_ceiling_gflops']:.1f} GFLOP/s (one large 3x3 conv, channels_last, no grad)"),
        ("train iteration FLOPs", f"{t['flops_plan'] / 1e12:.3f} TFLOP as planned; ours executes "
                                  f"{t['flops_ours'] / 1e12:.3f} (batch {r['batch_size']})"),
        ("train iteration, ours", f"{t['seconds_ours']:.3f} s  {t['images_per_s']:.1f} img/s; "
                                  f"{t['gflops_effective']:.1f} GFLOP/s effective = {pct(t['fraction_of_ceiling_effective'])}"
                                  f" of ceiling ({t['gflops_executed']:.1f} executed = "
                                  f"{pct(t['fraction_of_ceiling_executed'])}, "
                                  f"{pct(t['fraction_of_conv_ceiling_executed'])} of the conv yardstick)"),
        ("train iteration, plain reference", f"{t['seconds_plain']:.3f} s  {t['gflops_plain']:.1f} GFLOP/s = "
                                             f"{pct(t['fraction_of_ceiling_plain'])} of ceiling; "
                                             f"ours is {t['speedup_vs_plain']:.2f}x faster"),
        ("encoder step (separate)", f"{e['seconds']:.3f} s  {e['flops'] / 1e9:.0f} GFLOP, "
                                    f"{e['gflops']:.1f} GFLOP/s = {pct(e['fraction_of_ceiling'])} of ceiling"),
        ("sampling", f"{s['num_samples']} samples: {s['images_per_s_unconditional']:.1f} img/s unconditional "
                     f"({pct(s['fraction_of_ceiling_unconditional'])} of ceiling), {s['images_per_s_guided']:.1f} "
                     f"img/s guided ({pct(s['fraction_of_ceiling_guided'])}); {s['generator_gflop_per_sample']:.2f}"
                     f" GFLOP/sample" + (f"; plain {s['images_per_s_plain_unconditional']:.1f} img/s"
                                        if s.get("images_per_s_plain_unconditional") else "")),
        ("inpainting", f"batch {i['batch']} x {i['steps']} steps x {i['restarts']} restart(s): "
                       f"{i['seconds_ours']:.2f} s ours, {i['seconds_plain']:.2f} s plain reference "
                       f"({i['speedup_vs_plain']:.2f}x)"),
        ("data loading", f"{d['images_per_s_first_epoch']:.0f} img/s first epoch (decodes "
                         f"{d['png_decodes_first_epoch']} PNGs), {d['images_per_s_later_epochs']:.0f} img/s later "
                         f"epochs ({d['png_decodes_later_epochs']} PNG decodes)"),
    ]
    if "train_iteration_bf16" in r:
        b = r["train_iteration_bf16"]["seconds"]
        rows.append(("train iteration, bf16 autocast", f"{b:.4f} s ({t['seconds_ours'] / b:.2f}x fp32 ours)"))
    if "compile" in r:
        c = r["compile"]
        pay = c["iterations_to_pay_back"]
        rows.append(("training.compile=true", f"{c['seconds_iteration']:.3f} s/iteration "
                     f"({c['speedup_iteration_vs_eager']:.3f}x eager), compile {c['compile_seconds_training']:.0f} s"
                     f" (pays back after {'never' if pay is None else f'{pay:.0f} iterations'}); sampling "
                     f"{c['images_per_s_unconditional']:.1f} img/s ({c['speedup_sampling_vs_eager']:.3f}x), "
                     f"compile {c['compile_seconds_sampling']:.0f} s"))
    rows += [
        ("peak RSS", f"{r['peak_rss_mb']:.0f} MB" + (f", peak CUDA {r['peak_cuda_memory_mb']:.0f} MB"
                                                      if "peak_cuda_memory_mb" in r else "")),
        ("CPU utilisation / load", f"{pct(r['cpu_utilisation'])} of {r['threads']} threads over "
                                   f"{r['wall_seconds']:.0f} s; 1-min load average "
                                   + ", ".join(f"{v:.2f} {k}" for k, v in r["load_average_1min"].items())),
    ]
    width = max(len(k) for k, _ in rows)
    lines = [f"{k.ljust(width)}  {v}" for k, v in rows]
    if "profile_top_ops" in r:
        lines.append("\ntop operators of one iteration (ours, torch.profiler, self CPU time):")
        lines += [f"  {o['op'][:40]:40s} {o['self_cpu_s']:8.3f} s  {pct(o['share']):>4s}  {o['calls']} calls"
                  for o in r["profile_top_ops"]]
    return "\n".join(lines)


if __name__ == "__main__":
    main()
