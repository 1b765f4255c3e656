"""Data-parallel training with torch.distributed on 2 CPU processes (gloo).

(a) one distributed step (global batch split over 2 spawned ranks) = one single-process step
    on the whole batch, for the same weights and random draws; replica checks and the per-step
    reductions work; (b) a real ``torchrun`` training run writes one run folder, each
    checkpoint once (rank 0), and resumes.
"""
import os
import re
import subprocess
import sys
from types import SimpleNamespace

import pandas as pd
import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from src_new.models.wgan_gp.train import WGANGPTrainer
from src_new.utils.checkpoint import load_checkpoint
from src_new.utils.distributed import ReplicaMismatch
from src_new.pipeline.training import make_loader

from conftest import ROOT, make_cfg, write_yaml

WORLD = 2
BATCH = 8                    # global batch: 4 per rank
NETS = ("generator", "critic", "ema_generator")
TOL = dict(rtol=1e-3, atol=1e-7)


def close_to_scale(a, b, rel=1e-5):
    """a and b agree elementwise to rtol 1e-3 plus an absolute slack of ``rel`` times the larger
    tensor's largest entry. Why scaled: an all-reduce sums the ranks' halves in another order than
    one process sums the whole batch, so an entry that is a difference of large terms differs by
    float rounding of those terms (seen: 1.9e-5 on a gradient whose largest entry is 41, a
    relative error of 5e-7 of the tensor's scale), which a fixed atol cannot express on every CPU."""
    scale = max(a.abs().max().item(), b.abs().max().item()) if a.numel() else 0.0
    return torch.allclose(a, b, rtol=TOL["rtol"], atol=max(TOL["atol"], rel * scale))


def _fixed_inputs(trainer):
    """A global batch and the random draws of one critic step and one generator step."""
    ds = trainer.train_set
    real = torch.stack([ds[i][0] for i in range(BATCH)])
    cond = torch.stack([ds[i][1] for i in range(BATCH)])
    g = torch.Generator().manual_seed(7)
    noises = [{"z": torch.randn(BATCH, trainer.model.latent_dim, generator=g),
               "drop_mask": torch.tensor([True, False, False, False, False, True, False, False]),
               "eps": torch.rand(BATCH, 1, 1, 1, generator=g)} for _ in ("critic", "generator")]
    return real, cond, noises


def _one_step(trainer, real, cond, noises):
    """trainer.train_step with the given draws (critic step, then generator step). Plain SGD
    replaces Adam here: Adam's first step is about lr * sign(grad), which turns float rounding
    in near-zero gradients into lr-sized differences, while an SGD update is the (averaged)
    gradient itself, so "same update" can be checked tightly."""
    m = trainer.model
    trainer.opt_c = torch.optim.SGD(m.critic.parameters(), lr=0.05)
    trainer.opt_g = torch.optim.SGD(m.generator.parameters(), lr=0.05)
    it = iter(noises)
    trainer.model.draw_noise = lambda batch_size, device: next(it)
    row = trainer.train_step(real, cond)
    assert next(it, None) is None, "train_step did not draw exactly one critic and one generator noise"
    return row


def _step_worker(rank, init_file, cfg, ref_path):
    os.environ.update(WORLD_SIZE=str(WORLD), RANK=str(rank), LOCAL_RANK=str(rank))
    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=WORLD)
    try:
        ref = torch.load(ref_path, weights_only=True)
        trainer = WGANGPTrainer(cfg, verbose=False)
        assert trainer.dist.enabled and trainer.dist.rank == rank
        assert trainer.loader.batch_size == BATCH // WORLD
        for name in NETS:   # same starting point as the single-process reference
            start = getattr(trainer.model, name).state_dict()
            assert all(torch.equal(start[k], ref["start"][name][k]) for k in start), name
        # per-rank random streams: different z on each rank
        draws = trainer.dist.all_gather_object(torch.randn(4))
        assert not torch.equal(draws[0], draws[1])

        half = slice(rank * BATCH // WORLD, (rank + 1) * BATCH // WORLD)
        noises = [{k: v[half] for k, v in n.items()} for n in ref["noises"]]
        row = _one_step(trainer, ref["real"][half], ref["cond"][half], noises)
        means, stop = trainer.dist.reduce_step(row, flag=False)
        assert not stop
        for key in ("critic_loss", "generator_loss", "wasserstein_distance", "gradient_penalty",
                    "critic_grad_norm", "generator_grad_norm"):
            assert means[key] == pytest.approx(ref["row"][key], rel=1e-4, abs=1e-6), \
                (key, means[key], ref["row"][key])
        for name in NETS:   # the same update: after - before, tensor by tensor
            state = getattr(trainer.model, name).state_dict()
            for k, v in state.items():
                mine, theirs = v - ref["start"][name][k], ref["after"][name][k] - ref["start"][name][k]
                assert close_to_scale(mine, theirs), (name, k, (mine - theirs).abs().max())
        for name in ("generator", "critic"):
            for (k, p), g in zip(getattr(trainer.model, name).named_parameters(), ref["grads"][name]):
                assert close_to_scale(p.grad, g), (name, k, (p.grad - g).abs().max(), g.abs().max())

        # The replicas are bit-identical, and a divergence of the EMA is caught on every rank.
        trainer.check_replicas()
        if rank == 1:
            with torch.no_grad():
                next(trainer.model.ema_generator.parameters()).add_(1e-6)
        with pytest.raises(ReplicaMismatch, match="ema_generator"):
            trainer.check_replicas()

        # Per-step reduction: means, and a stop flag raised on one rank reaches all ranks.
        means, stop = trainer.dist.reduce_step({"x": float(rank)}, flag=rank == 1)
        assert means == {"x": 0.5} and stop
        # A parameter with no gradient on any rank keeps grad None; one with a gradient on
        # one rank only gets the mean (the other rank counts as zero).
        a, b = torch.nn.Parameter(torch.zeros(3)), torch.nn.Parameter(torch.zeros(2))
        b.grad = torch.full((2,), 4.0) if rank == 0 else None
        trainer.dist.average_gradients([a, b])
        assert a.grad is None and torch.equal(b.grad, torch.full((2,), 2.0))
    finally:
        dist.destroy_process_group()


def test_distributed_step_equals_single_process_step(toy_root, tmp_path):
    """Critic + generator step (+ EMA) on 2 ranks x 4 samples == 1 process x 8 samples."""
    overrides = dict(model={"n_critic": 1}, training={"batch_size": BATCH, "encoder_every": 0})
    ref_trainer = WGANGPTrainer(make_cfg(toy_root, tmp_path / "single", **overrides), verbose=False)
    real, cond, noises = _fixed_inputs(ref_trainer)
    m = ref_trainer.model
    start = {name: {k: v.clone() for k, v in getattr(m, name).state_dict().items()} for name in NETS}
    row = _one_step(ref_trainer, real, cond, noises)
    ref = {"real": real, "cond": cond, "noises": noises, "row": row, "start": start,
           "after": {name: getattr(m, name).state_dict() for name in NETS},
           "grads": {name: [p.grad for p in getattr(m, name).parameters()]
                     for name in ("generator", "critic")}}
    # the step really changed the weights (a no-op on both sides would pass trivially)
    assert not torch.equal(start["critic"]["head.2.weight"], ref["after"]["critic"]["head.2.weight"])
    torch.save(ref, tmp_path / "ref.pt")
    mp.spawn(_step_worker, nprocs=WORLD, join=True,
             args=(str(tmp_path / "rendezvous"), make_cfg(toy_root, tmp_path / "dist", **overrides),
                   str(tmp_path / "ref.pt")))


def test_global_batch_must_divide_across_processes(toy_root, tmp_path):
    trainer = WGANGPTrainer(make_cfg(toy_root, tmp_path / "out"), verbose=False)
    with pytest.raises(ValueError, match="global batch and must divide evenly across 3 processes"):
        make_loader(trainer.train_set, 8, 0, SimpleNamespace(world_size=3, rank=0))


# ------------------------------------------------------------------ torchrun end to end
# torchrun runs this wrapper instead of train.py: it logs every torch.save (rank, file) and then
# runs train.py's main unchanged, so the test sees who wrote which checkpoint, and how often.
WRAPPER = """
import os, runpy, sys
import torch
LOG, SCRIPT = sys.argv.pop(1), sys.argv[1]
_save = torch.save
def save(obj, f, *args, **kwargs):
    name = f if isinstance(f, (str, os.PathLike)) else getattr(f, "name", None)
    if name is not None:   # files only (torch.distributed also torch.saves into BytesIO buffers)
        with open(LOG, "a") as log:
            log.write(f"{os.environ['RANK']} {os.path.basename(name)}\\n")
    return _save(obj, f, *args, **kwargs)
torch.save = save
sys.argv = sys.argv[1:]
sys.path.insert(0, os.path.dirname(SCRIPT))
runpy.run_path(SCRIPT, run_name="__main__")
"""


def _torchrun(tmp_path, log, *args):
    wrapper = tmp_path / "wrapped_train.py"
    wrapper.write_text(WRAPPER)
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={WORLD}",
           str(wrapper), str(log), str(ROOT / "src_new" / "scripts" / "train.py"), *map(str, args)]
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONUNBUFFERED="1")
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=240, env=env)
    assert proc.returncode == 0, \
        f"torchrun failed ({proc.returncode}):\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    return proc


def _saves(log):
    """[(rank, checkpoint file name)] from the wrapper's log (temp names mapped to targets)."""
    out = []
    for line in log.read_text().splitlines():
        rank, name = line.split(" ", 1)
        out.append((int(rank), re.sub(r"^\.(.*)\.tmp\d+$", r"\1", name)))
    return out


def test_torchrun_trains_writes_once_and_resumes(toy_root, tmp_path):
    out = tmp_path / "outputs"
    cfg = make_cfg(toy_root, out, training={"epochs": 1, "batch_size": BATCH, "run_name": "ddp"})
    log = tmp_path / "saves.log"
    proc = _torchrun(tmp_path, log, "--model", "wgan_gp", "--config", write_yaml(cfg, tmp_path / "cfg.yaml"))
    assert proc.stdout.count("training wgan_gp on cpu (2 process(es))") == 1   # rank 0 alone talks
    assert [p.name for p in out.iterdir()] == ["ddp"]                          # one run folder
    run_dir = out / "ddp"
    assert _saves(log) == [(0, "checkpoint_1.pt"), (0, "checkpoint_latest.pt")]
    n_critic = cfg["model"]["n_critic"]                     # each step draws n_critic fresh minibatches
    steps = (32 // WORLD) // (BATCH // WORLD * n_critic)                       # 32 train samples
    losses = pd.read_csv(run_dir / "losses.csv")
    assert list(losses["step"]) == list(range(1, steps + 1))                   # rank 0's rows only

    log.unlink()
    _torchrun(tmp_path, log, "--resume", run_dir / "checkpoint_latest.pt", "--epochs", 2)
    assert _saves(log) == [(0, "checkpoint_2.pt"), (0, "checkpoint_latest.pt")]
    assert [p.name for p in out.iterdir()] == ["ddp"]
    names = {p.name for p in run_dir.iterdir()}
    assert {"checkpoint_1.pt", "checkpoint_2.pt", "checkpoint_latest.pt", "losses.csv",
            "samples_epoch_0001.png", "samples_epoch_0002.png"} <= names
    assert not [n for n in names if ".tmp" in n]
    losses = pd.read_csv(run_dir / "losses.csv")
    assert list(losses["step"]) == list(range(1, 2 * steps + 1))
    assert list(losses["epoch"]) == [1] * steps + [2] * steps
    ckpt = load_checkpoint(run_dir / "checkpoint_latest.pt")
    assert ckpt["epoch"] == 2 and ckpt["global_step"] == 2 * steps
    assert len(ckpt["rng_state_per_rank"]) == WORLD
    assert [h["epoch"] for h in ckpt["history"]] == [1, 2]
