"""Training-loop plumbing shared by every model: run folders, CSV logs, checkpoints on
disk, signals, divergence checks, data loaders."""
from __future__ import annotations

import csv
import math
import os
import signal
import time
import warnings
from pathlib import Path

import torch
from torch.utils.data import DataLoader, DistributedSampler
from tqdm import tqdm

from ..utils.checkpoint import save_checkpoint, write_atomically
from .config import dump_config
from ..utils.io import mirror_side, prepare_output_dir


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


def trim_csv_log(path, last_step):
    """Drop the rows of a CSV log whose ``step`` is above ``last_step`` (and a torn last line
    left by a kill mid-write), so that a resume from the checkpoint at ``last_step`` logs
    every later step once. Kept lines stay byte-identical; the file is replaced atomically
    (temp file + rename), and left untouched when nothing is dropped. Returns the number of
    lines dropped (0 for a missing file or one without a ``step`` column)."""
    path = Path(path)
    if not path.is_file():
        return 0
    with open(path, newline="") as f:
        lines = f.readlines()
    if not lines:
        return 0
    header = next(csv.reader([lines[0]]))
    if "step" not in header:
        return 0
    column = header.index("step")
    keep = [lines[0]]
    for line in lines[1:]:
        row = next(csv.reader([line]), [])
        try:
            step = int(float(row[column]))
        except (IndexError, ValueError):
            step = None
        # a line without its newline was cut by a kill during the write: never complete
        if step is not None and step <= last_step and line.endswith("\n"):
            keep.append(line)
    dropped = len(lines) - len(keep)
    if dropped:
        write_atomically(path, lambda f: f.writelines(keep), mode="w")
    return dropped


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
    """The total L2 norm of the parameters' gradients (0.0 when none has one)."""
    grads = [p.grad for p in params if p.grad is not None]
    if not grads:
        return 0.0
    return float(torch.nn.utils.get_total_norm(grads))


def clip_gradients(params, max_norm):
    """Clip the parameters' total gradient norm to ``max_norm`` (None = off; every model's
    clipping key goes through here) -> (norm before clipping, 1 if it was clipped else 0).
    The divergence check reads the norm before clipping."""
    params = [p for p in params if p.grad is not None]
    if max_norm is None or not params:
        return grad_norm(params), 0
    norm = float(torch.nn.utils.clip_grad_norm_(params, max_norm))
    return norm, int(norm > max_norm)


def make_loader(dataset, batch_size, seed, dist_ctx=None, num_workers=0, device=None, batches_per_step=1):
    """Shuffled loader of full batches of batches_per_step * batch_size; under torchrun each
    rank gets 1 / world_size of it from a DistributedSampler. Returns (loader, generator,
    sampler or None)."""
    world = dist_ctx.world_size if dist_ctx is not None else 1
    if batch_size % world:
        raise ValueError(f"training.batch_size = {batch_size} is the global batch and must divide "
                         f"evenly across {world} processes")
    if len(dataset) < batch_size * batches_per_step:
        what = (f"{batches_per_step} minibatches of training.batch_size = {batch_size} are"
                if batches_per_step > 1 else f"training.batch_size = {batch_size} is")
        raise ValueError(f"{what} larger than the training split ({len(dataset)} samples); a step draws "
                         f"{batch_size * batches_per_step}: lower the batch size (or model.n_critic)")
    batch_size *= batches_per_step
    per_rank = batch_size // world
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


class TensorBoard:
    """TensorBoard event files in ``log_dir`` (``logging.tensorboard: true``); a no-op when
    disabled. Enabled without the ``tensorboard`` package installed: a clear ImportError."""

    def __init__(self, log_dir, enabled=True, purge_step=None):
        """purge_step: on resume, the first step after the checkpoint; the events a killed run
        wrote at this step and later are hidden from TensorBoard (they are logged again)."""
        self.writer = None
        if enabled:
            try:
                from torch.utils.tensorboard import SummaryWriter
            except ImportError as err:
                raise ImportError(f"logging.tensorboard is true but tensorboard cannot be imported ({err}); "
                                  f"pip install tensorboard (it is in requirements.txt), or set "
                                  f"--set logging.tensorboard=false") from None
            self.writer = SummaryWriter(str(log_dir), purge_step=purge_step)

    def log(self, values, step):
        """Scalars {tag: number} at ``step``."""
        if self.writer is not None:
            for k, v in values.items():
                if isinstance(v, (int, float)) and not isinstance(v, bool):
                    self.writer.add_scalar(k, v, step)

    def image(self, tag, image, step):
        """image: (H, W, 3) uint8 RGB (e.g. ``utils.io.make_grid``)."""
        if self.writer is not None:
            self.writer.add_image(tag, image, step, dataformats="HWC")

    def close(self):
        if self.writer is not None:
            self.writer.close()


MAX_ROLLBACKS = 3


class Trainer:
    """The model-independent training loop: data, run folder, epochs with a progress bar,
    CSV/TensorBoard logging, checkpoints (atomic, every ``check_every`` epochs and at the
    end), exact resume, SIGINT/SIGTERM handling and divergence stop/rollback.

    A model's trainer subclasses it and provides:
      model_type, build_network (cfg -> model), log_fields, build(cfg) (``self.model``, EMA,
      ``self.optimizers``),
      train_step(real, cond) -> dict of floats (incl. the keys in ``finite_keys``); it gets
      ``batches_per_step`` minibatches concatenated (set it in build()),
      model_state() / load_model_state(ckpt, path), snapshot() (progress grid).
    ``self.optimizers`` maps each optimizer's checkpoint key to (optimizer, config
    learning-rate key); a divergence rollback halves the rates in ``self.halve_on_rollback``.
    """

    model_type = None
    # cfg -> the model (an nn.Module whose ``model(img, cond=cond)`` is a training loss); the
    # memory estimate traces it with fake tensors before anything is allocated
    build_network = None
    batches_per_step = 1          # minibatches of training.batch_size that one train_step consumes
    log_fields = ["step", "epoch"]
    log_file = "losses.csv"
    finite_keys = ()
    grad_norm_keys = ()
    # A run trains in one phase (the WGAN-GP: gan | encoder | flow); training.epochs counts
    # the epochs of the current phase, from the epoch where it started.
    default_phase = phase = "train"
    healthy_ranges = {}     # {logged column: (low, high)}, shaded in curves.png
    # The run's CSV logs (one per phase, e.g. losses.csv, losses_encoder.csv): on a resume or
    # a rollback each loses its rows beyond the checkpoint's step, which are trained again.
    log_glob = "losses*.csv"
    # Entries a checkpoint of this model holds beyond utils.checkpoint.MODEL_ENTRIES.
    checkpoint_entries = ()

    def __init__(self, cfg, resume_state=None, resume_path=None, verbose=True):
        from ..utils.distributed import DistContext

        self.cfg, self.tcfg = cfg, cfg["training"]
        self.dist = DistContext(self.tcfg["device"])
        try:
            self._setup(cfg, resume_state, resume_path, verbose)
        except BaseException:
            self.dist.close()   # no process group left behind when construction fails
            raise

    def _setup(self, cfg, resume_state, resume_path, verbose):
        from ..datasets.factory import build_datasets
        from ..utils.checkpoint import remove_stale_temp_files
        from ..utils.precision import autocast, resolve_precision
        from ..utils.resources import check_training_memory
        from ..utils.runtime import resolve_device, seed_everything

        self.device = self.dist.device(resolve_device(self.tcfg["device"]))
        self.verbose = verbose and self.dist.is_main
        seed = self.tcfg["seed"]
        seed_everything(seed)                       # identical initial weights on every rank
        if self.device.type == "cpu":
            torch.use_deterministic_algorithms(True, warn_only=True)
        check_training_memory(self.build_network, cfg, self.device)   # refuse before allocating
        self.data = build_datasets(cfg, ("train", "test"), verbose=self.verbose)
        self.train_set = self.data["train"]
        self.optimizers, self.halve_on_rollback = {}, set()
        self.build(cfg)                              # sets self.model (+ optimizers, EMA)
        self.model.cond_normalizer = self.train_set.normalizer   # stored with the model
        # A step may consume several minibatches (the WGAN-GP's n_critic fresh real batches):
        # the loader yields them as one batch of batches_per_step * batch_size.
        self.loader, self.loader_gen, self.sampler = make_loader(
            self.train_set, self.tcfg["batch_size"], seed, self.dist, self.tcfg["num_workers"], self.device,
            self.batches_per_step)
        self.epoch, self.step, self.history, self.rollbacks = 0, 0, [], 0
        self.phase_start = 0
        self.warned = {}
        self.board = TensorBoard(None, enabled=False)
        if resume_state is not None:  # restores the RNG streams too
            # Every rank read the checkpoint file itself: make sure it is the same one.
            self.dist.check_identical({"checkpoint": resume_state}, f"the resume checkpoint {resume_path}")
            self.load_state(resume_state, resume_path)
            self.run_dir = Path(resume_path).resolve().parent
            if self.dist.is_main:
                remove_stale_temp_files(self.run_dir)   # from a process killed mid-save
                dump_config(cfg, self.run_dir / "config.yaml")
        else:
            self.run_dir = Path(self._on_main(lambda: str(create_run_dir(cfg))))
            self.dist.broadcast_module(self.model)          # rank 0's initial weights everywhere
            seed_everything(seed + 1000 * self.dist.rank)   # per-rank noise streams
        # progress grids mirror about the side the data's symmetry axis is on (data.mirror)
        self.grid_mirror = mirror_side(self.train_set.images_float[:512], cfg["data"].get("mirror", "auto"))
        # training.precision: the networks' passes under bf16 autocast or in fp32; weights,
        # gradients and optimizer state are fp32 either way (the models take losses in fp32).
        self.precision = resolve_precision(self.tcfg["precision"], self.device, say=self.say)
        self.autocast = autocast(self.precision, self.device)

    def _on_main(self, fn):
        """Run ``fn`` on rank 0 only and return its result on every rank; an error it raises
        (e.g. a non-empty run folder) is raised on every rank, so all exit the same way."""
        result, error = None, None
        if self.dist.is_main:
            try:
                result = fn()
            except (ValueError, FileNotFoundError, FileExistsError, PermissionError, OSError) as err:
                error = err
        result, error = self.dist.broadcast_object((result, error))
        if error is not None:
            raise error
        return result

    # ---------------------------------------------------------------- hooks
    def build(self, cfg):
        raise NotImplementedError

    def train_step(self, real, cond):
        raise NotImplementedError

    def model_state(self):
        raise NotImplementedError

    def load_model_state(self, ckpt, path):
        raise NotImplementedError

    def snapshot(self):
        """Progress grid at ``eval_every`` epochs (optional)."""

    def health_check(self, means):
        """Warnings from the epoch means (optional)."""

    def check_checkpoint(self, ckpt, path):
        """Raise ValueError unless ``ckpt`` is a checkpoint of this model (before any of it is read)."""
        from ..utils.checkpoint import validate_checkpoint
        return validate_checkpoint(ckpt, path, self.model_type, self.checkpoint_entries)

    # ---------------------------------------------------------------- state
    def state_dict(self, rng_states=None):
        """rng_states: every rank's RNG state (distributed runs), stored as ``rng_state_per_rank``
        so a resume with the same number of processes continues each rank's streams exactly."""
        from ..utils.runtime import get_rng_state
        state = {"model_type": self.model_type, **self.model_state(),
                 **{name: opt.state_dict() for name, (opt, _) in self.optimizers.items()},
                 "epoch": self.epoch, "global_step": self.step, "config": dict(self.cfg),
                 "cond_normalizer": self.model.cond_normalizer.state_dict(),
                 "rng_state": get_rng_state({"loader": self.loader_gen}),
                 "history": self.history, "rollbacks": self.rollbacks,
                 "phase": {"name": self.phase, "start_epoch": self.phase_start}}
        if rng_states is not None:
            state["rng_state_per_rank"] = rng_states
        return state

    def load_state(self, ckpt, path):
        from ..datasets.multicomponent import ConditionNormalizer
        from ..utils.checkpoint import check_finite_weights
        from ..utils.runtime import seed_everything, set_rng_state

        self.check_checkpoint(ckpt, path)
        check_finite_weights(ckpt, [k for k in self.model_state() if k.endswith("_state_dict")], path)
        self.load_model_state(ckpt, path)
        for name, (opt, _) in self.optimizers.items():
            if name in ckpt:   # an optimizer added after the checkpoint was written starts fresh
                opt.load_state_dict(ckpt[name])
        self.rollbacks = ckpt.get("rollbacks", 0)
        # The config's learning rates win over the stored ones (the tuning guide's resume
        # workflow: --set training.lr_generator=1e-5), halved once per divergence rollback.
        for opt, key in self.optimizers.values():
            lr = self.tcfg[key] * (0.5 ** self.rollbacks if key in self.halve_on_rollback else 1)
            for group in opt.param_groups:
                group["lr"] = lr
        self.model.cond_normalizer = ConditionNormalizer.from_state_dict(ckpt["cond_normalizer"])
        self.epoch, self.step = ckpt["epoch"], ckpt["global_step"]
        stored = ckpt.get("phase") or {"name": self.default_phase, "start_epoch": 0}
        # Same phase: continue it; another phase: it starts at the checkpoint's epoch.
        self.phase_start = stored["start_epoch"] if stored["name"] == self.phase else self.epoch
        self.history = list(ckpt.get("history", []))
        per_rank = ckpt.get("rng_state_per_rank")
        if not self.dist.enabled:
            set_rng_state(ckpt["rng_state"], {"loader": self.loader_gen})
        elif per_rank is not None and len(per_rank) == self.dist.world_size:
            set_rng_state(per_rank[self.dist.rank])   # exact continuation of this rank's streams
        else:  # another process count: fresh per-rank streams, from the seed, the rank and the epoch
            seed_everything(self.tcfg["seed"] + 1000 * self.dist.rank + 7919 * self.epoch)

    # ---------------------------------------------------------------- loop
    @property
    def end_epoch(self):
        """The epoch where this run stops: the phase's start + training.epochs."""
        return self.phase_start + self.tcfg["epochs"]

    def run(self):
        epochs = self.end_epoch
        if self.epoch >= epochs:
            start = f"phase {self.phase} started at epoch {self.phase_start}, " if self.phase_start else ""
            self.say(f"checkpoint is at epoch {self.epoch} >= {start}training.epochs = {self.tcfg['epochs']}; "
                     f"nothing to do (raise --epochs to train further)")
            return self.run_dir
        logger, board = self.open_logs()
        phase = "" if self.phase == self.default_phase else f" (phase {self.phase})"
        self.say(f"training {self.model_type}{phase} on {self.device} ({self.dist.world_size} process(es)): "
                 f"{len(self.train_set)} train samples, {len(self.loader)} steps/epoch, "
                 f"epochs {self.epoch + 1}..{epochs}; run folder {self.run_dir}")
        try:
            with SignalGuard() as guard:
                while self.epoch < epochs:
                    try:
                        self.run_epoch(logger, board, guard)
                    except TrainingDiverged as err:
                        self.handle_divergence(err)
                        # the steps after the checkpoint are trained again: log them once
                        self.close_logs(logger, board)
                        logger, board = self.open_logs()
        finally:
            self.close_logs(logger, board)
        self.say(f"done: {self.run_dir / 'checkpoint_latest.pt'}")
        return self.run_dir

    def open_logs(self):
        """-> (CSVLogger of the phase's log or None, TensorBoard), rank 0 only. What an earlier
        attempt logged beyond ``self.step`` (a run killed after its last checkpoint, or rolled
        back) is dropped first: the CSV rows of every log, and the TensorBoard events (purged
        from ``self.step + 1``), so each step is logged once."""
        if not self.dist.is_main:
            self.board = TensorBoard(None, enabled=False)
            return None, self.board
        for path in sorted({self.run_dir / self.log_file, *self.run_dir.glob(self.log_glob)}):
            dropped = trim_csv_log(path, self.step)
            if dropped:
                self.say(f"{path.name}: dropped {dropped} row(s) after step {self.step} (logged again)")
        enabled = bool(self.cfg.get("logging", {}).get("tensorboard", False))
        self.board = TensorBoard(self.run_dir / "tensorboard", enabled=enabled,
                                 purge_step=self.step + 1 if self.step else None)
        return CSVLogger(self.run_dir / self.log_file, self.log_fields), self.board

    def close_logs(self, logger, board):
        if logger is not None:
            logger.close()
        board.close()
        self.board = TensorBoard(None, enabled=False)

    @property
    def launcher(self):
        """How this run was started, for resume hints."""
        if not self.dist.enabled:
            return "python"
        local = int(os.environ.get("LOCAL_WORLD_SIZE", self.dist.world_size))
        if local == self.dist.world_size:
            return f"torchrun --standalone --nproc_per_node {local}"
        return f"torchrun --nnodes {self.dist.world_size // local} --nproc_per_node {local} <rendezvous arguments>"

    def current_lrs(self):
        return {key: opt.param_groups[0]["lr"] for opt, key in self.optimizers.values()}

    def run_epoch(self, logger, board, guard):
        t = self.tcfg
        if self.sampler is not None:
            self.sampler.set_epoch(self.epoch)
        self.model.train()
        sums, count = {}, 0
        bar = tqdm(self.loader, desc=f"epoch {self.epoch + 1}/{self.end_epoch}", disable=not self.verbose,
                   leave=False, dynamic_ncols=True)
        for real, cond in bar:  # the collated batch is a list [images, conds]: unpack both
            start = time.perf_counter()
            real = real.to(self.device, non_blocking=True)
            cond = cond.to(self.device, non_blocking=True) if cond.shape[1] > 0 else None
            row = self.train_step(real, cond)
            # Means across ranks (what is logged), and one stop decision for all ranks: a NaN
            # or a signal on any rank stops every rank at the same step (no rank left waiting
            # in a collective).
            means, stop = self.dist.reduce_step({k: v for k, v in row.items() if isinstance(v, float)},
                                                guard.received is not None)
            row.update(means)
            if stop and guard.received is None:
                guard.received = "a signal on another process"
            self.step += 1
            check_finite({k: row[k] for k in self.finite_keys}, {k: row[k] for k in self.grad_norm_keys},
                         t["max_grad_norm"], self.step)
            row.update(step=self.step, epoch=self.epoch + 1, **self.current_lrs(),
                       images_per_s=len(real) * self.dist.world_size / (time.perf_counter() - start))
            if logger is not None:
                logger.log(row)
            board.log({k: row[k] for k in self.log_fields if k != "step" and k in row}, self.step)
            for k in self.finite_keys:
                sums[k] = sums.get(k, 0.0) + row[k]
            count += 1
            bar.set_postfix({k: f"{row[k]:.3f}" for k in self.finite_keys})
            if guard.received:
                self.save(numbered=False)
                raise TrainingInterrupted(
                    f"{guard.received} received at epoch {self.epoch + 1}, step {self.step}: saved "
                    f"{self.run_dir / 'checkpoint_latest.pt'} (the interrupted epoch restarts on resume). "
                    f"Resume with: {self.launcher} src_new/scripts/train.py --resume "
                    f"{self.run_dir / 'checkpoint_latest.pt'}")
        bar.close()
        self.epoch += 1
        means = {k: v / max(count, 1) for k, v in sums.items()}   # rows are already means over ranks
        self.history.append({"epoch": self.epoch, **means})
        self.health_check(means)
        last = self.epoch == self.end_epoch
        if self.epoch % t["eval_every"] == 0 or last:
            self.snapshot()
            self.write_curves()
        if self.epoch % t["check_every"] == 0 or last:
            self.save(numbered=True)
        self.say(f"epoch {self.epoch}: " + ", ".join(f"{k}={v:.4f}" for k, v in means.items()))

    def write_curves(self):
        """``curves.png`` in the run folder (rank 0): losses.csv and the evaluations in
        ``self.history``. A plotting failure warns and training goes on."""
        if not self.dist.is_main:
            return
        try:
            from ..utils.plots import plot_runs
            plot_runs([self.run_dir], self.run_dir / "curves.png", histories=[self.history],
                      ranges=self.healthy_ranges)
        except Exception as err:  # a figure is never worth a lost run
            self.warn("curves", f"could not draw {self.run_dir / 'curves.png'}: {type(err).__name__}: {err}")

    def save(self, numbered):
        """Called on every rank: checks the replicas agree, then rank 0 writes."""
        rng_states = None
        if self.dist.enabled:
            from ..utils.runtime import get_rng_state
            self.check_replicas()
            rng_states = self.dist.all_gather_object(get_rng_state())
        if self.dist.is_main:
            write_checkpoint(self.run_dir, self.state_dict(rng_states), self.epoch, keep_numbered=numbered)
        self.dist.barrier()   # nobody reads or rolls back to a checkpoint before it is complete

    def check_replicas(self):
        """Raise ReplicaMismatch unless the networks (EMA included) and optimizer states are
        bit-identical on every rank (a sha256 per entry of ``model_state`` and per optimizer)."""
        states = dict(self.model_state())
        states.update({name: opt.state_dict() for name, (opt, _) in self.optimizers.items()})
        self.dist.check_identical(states, f"at epoch {self.epoch}, the model state")

    def handle_divergence(self, err):
        from ..utils.checkpoint import load_checkpoint

        latest = self.run_dir / "checkpoint_latest.pt"
        exists = self.dist.broadcast_object(latest.exists())   # rank 0 wrote it: its view decides
        if self.tcfg["on_divergence"] != "rollback" or self.rollbacks >= MAX_ROLLBACKS or not exists:
            where = f"the last good checkpoint is {latest}" if exists else "no checkpoint was written yet"
            raise TrainingDiverged(f"training diverged: {err}; {where}. {self.divergence_advice}") from None
        self.rollbacks += 1
        if self.dist.enabled:   # rank 0 reads it and sends it: no shared filesystem needed
            ckpt = self._on_main(lambda: load_checkpoint(latest, "cpu"))
        else:
            ckpt = load_checkpoint(latest, self.device)
        ckpt["rollbacks"] = self.rollbacks
        self.load_state(ckpt, latest)
        lrs = ", ".join(f"{k}={v:.3g}" for k, v in self.current_lrs().items())
        self.say(f"diverged ({err}); rolled back to epoch {self.epoch} with learning rates halved ({lrs}), "
                 f"rollback {self.rollbacks}/{MAX_ROLLBACKS}")
        if self.dist.is_main:
            with open(self.run_dir / "events.log", "a") as f:
                f.write(f"step {self.step}: rollback {self.rollbacks} after: {err}\n")

    divergence_advice = "Lower the learning rates, or set training.on_divergence=rollback."

    def say(self, message):
        if self.verbose:
            tqdm.write(message)

    def warn(self, key, message):
        if self.dist.is_main and self.warned.get(key) != self.epoch:
            self.warned[key] = self.epoch
            warnings.warn(f"[{self.model_type} health, epoch {self.epoch}] {message}", stacklevel=2)


def run_training(trainer_cls, cfg, resume=None, resume_state=None, verbose=True):
    """Build ``trainer_cls`` and run it; divergence/interrupt become a message and exit code."""
    import sys

    from ..utils.checkpoint import load_checkpoint

    if resume is not None and resume_state is None:
        resume_state = load_checkpoint(resume)
    trainer = trainer_cls(cfg, resume_state, resume, verbose)
    try:
        return trainer.run()
    except (TrainingDiverged, TrainingInterrupted) as err:
        if trainer.dist.is_main:   # every rank stops the same way; one message is enough
            print(f"{type(err).__name__}: {err}", file=sys.stderr)
        raise SystemExit(3 if isinstance(err, TrainingDiverged) else 130) from None
    finally:
        trainer.dist.close()
