"""Training-loop plumbing shared by every model: run folders, CSV logs, checkpoints on
disk, signals, divergence checks, data loaders."""
from __future__ import annotations

import csv
import math
import signal
from pathlib import Path

import torch
from torch.utils.data import DataLoader, DistributedSampler

from .checkpoint import save_checkpoint
from .config import dump_config
from .io import prepare_output_dir


class TrainingDiverged(RuntimeError):
    """A loss became NaN/inf or a gradient norm exploded."""


class TrainingInterrupted(RuntimeError):
    """SIGINT/SIGTERM arrived; a checkpoint was saved."""


def run_dir_for(cfg):
    """<paths.output_dir>/<training.run_name or config file stem>."""
    name = cfg["training"].get("run_name") or Path(cfg.get("_meta", {}).get("config_path", "run")).stem
    return Path(cfg["paths"]["output_dir"]) / name


def create_run_dir(cfg):
    """Make the run folder (refusing to reuse a non-empty one unless training.overwrite) and
    save the resolved config in it."""
    path = prepare_output_dir(run_dir_for(cfg), cfg["training"].get("overwrite", False), "run folder")
    dump_config(cfg, path / "config.yaml")
    return path


class CSVLogger:
    """Appends rows to a CSV (header written once), flushing so a crash loses nothing."""

    def __init__(self, path, fields):
        self.path, self.fields = Path(path), list(fields)
        new = not self.path.exists() or self.path.stat().st_size == 0
        self.file = open(self.path, "a", newline="")
        self.writer = csv.DictWriter(self.file, fieldnames=self.fields, extrasaction="ignore")
        if new:
            self.writer.writeheader()

    def log(self, row):
        self.writer.writerow({k: (f"{v:.6g}" if isinstance(v, float) else v) for k, v in row.items()})
        self.file.flush()

    def close(self):
        self.file.close()


def write_checkpoint(run_dir, state, epoch, keep_numbered=True):
    """Atomically write ``checkpoint_<epoch>.pt`` (optional) and ``checkpoint_latest.pt``."""
    run_dir = Path(run_dir)
    if keep_numbered:
        save_checkpoint(state, run_dir / f"checkpoint_{epoch}.pt")
    return save_checkpoint(state, run_dir / "checkpoint_latest.pt")


class SignalGuard:
    """Turns SIGINT/SIGTERM into a flag the loop checks between steps (so it can save and stop
    cleanly); a second signal interrupts immediately."""

    def __init__(self):
        self.received = None
        self._old = {}

    def _handler(self, signum, frame):
        if self.received is not None:
            raise KeyboardInterrupt
        self.received = signal.Signals(signum).name

    def __enter__(self):
        for sig in (signal.SIGINT, signal.SIGTERM):
            try:
                self._old[sig] = signal.signal(sig, self._handler)
            except ValueError:  # not the main thread
                pass
        return self

    def __exit__(self, *exc):
        for sig, old in self._old.items():
            signal.signal(sig, old)
        return False


def check_finite(values, grad_norms, max_grad_norm, step):
    """Raise TrainingDiverged when a loss is NaN/inf or a gradient norm exceeds the bound."""
    for name, value in values.items():
        if not math.isfinite(value):
            raise TrainingDiverged(f"step {step}: {name} is {value}")
    for name, value in grad_norms.items():
        if not math.isfinite(value) or value > max_grad_norm:
            raise TrainingDiverged(f"step {step}: {name} = {value:.4g} exceeds training.max_grad_norm "
                                   f"= {max_grad_norm:g}")


def grad_norm(params):
    grads = [p.grad for p in params if p.grad is not None]
    if not grads:
        return 0.0
    return float(torch.nn.utils.get_total_norm(grads))


def make_loader(dataset, batch_size, seed, dist_ctx=None, num_workers=0, device=None):
    """Shuffled loader of full batches; under torchrun each rank gets batch_size / world_size
    from a DistributedSampler. Returns (loader, generator, sampler or None)."""
    world = dist_ctx.world_size if dist_ctx is not None else 1
    if batch_size % world:
        raise ValueError(f"training.batch_size = {batch_size} is the global batch and must divide "
                         f"evenly across {world} processes")
    per_rank = batch_size // world
    if len(dataset) < batch_size:
        raise ValueError(f"training.batch_size = {batch_size} is larger than the training split "
                         f"({len(dataset)} samples); lower it to at most {len(dataset)}")
    gen = torch.Generator().manual_seed(seed)
    sampler = None
    if world > 1:
        sampler = DistributedSampler(dataset, num_replicas=world, rank=dist_ctx.rank, shuffle=True,
                                     seed=seed, drop_last=True)
    loader = DataLoader(dataset, batch_size=per_rank, shuffle=sampler is None, sampler=sampler,
                        generator=gen if sampler is None else None, drop_last=True,
                        num_workers=num_workers, pin_memory=device is not None and device.type == "cuda",
                        persistent_workers=num_workers > 0)
    return loader, gen, sampler


def mean_pairwise_l1(x, max_items=64):
    """Mean L1 distance between distinct samples of (N, C, H, W); a cheap diversity probe."""
    x = x[:max_items].flatten(1).float()
    if len(x) < 2:
        return 0.0
    d = torch.cdist(x, x, p=1) / x.shape[1]
    return float(d.sum() / (len(x) * (len(x) - 1)))


class TensorBoard:
    """Optional TensorBoard scalars: a no-op when tensorboard is not installed."""

    def __init__(self, log_dir, enabled=True):
        self.writer = None
        if enabled:
            try:
                from torch.utils.tensorboard import SummaryWriter
                self.writer = SummaryWriter(str(log_dir))
            except Exception:  # tensorboard missing or broken: optional by design
                self.writer = None

    def log(self, values, step):
        if self.writer is not None:
            for k, v in values.items():
                if isinstance(v, (int, float)):
                    self.writer.add_scalar(k, v, step)

    def close(self):
        if self.writer is not None:
            self.writer.close()
