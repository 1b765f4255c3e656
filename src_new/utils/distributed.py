"""torch.distributed glue for torchrun: process group, rank-aware helpers, gradient averaging.

Launch: ``torchrun --nproc_per_node N src_new/scripts/train.py ...`` (see docs/distributed.md).
Without torchrun (WORLD_SIZE unset or 1) every helper here is a no-op.

Why gradients are averaged by hand instead of with DistributedDataParallel
--------------------------------------------------------------------------
The WGAN-GP critic loss contains the gradient penalty, computed with
``autograd.grad(D(x_hat).sum(), x_hat, create_graph=True)``. DDP's reducer does not see that
inner ``autograd.grad``, so DDP only works with the documented pattern where one DDP-wrapped
module's ``forward`` computes the whole loss (critic scores *and* penalty) and a single
``backward`` then triggers the bucketed all-reduce (one wrapper module per trained network:
critic loss, generator loss, encoder loss). Both were measured: 2 CPU processes, gloo, one
thread each, a full WGAN-GP train step (n_critic critic + 1 generator + 1 encoder update),
median seconds per step over 30 steps after 3 warm-ups, runs alternated:

    this 2-core machine (torch 2.14, load 5-9 from other jobs), tiny test config, 7 runs each:
        manual 0.263 s/step (runs 0.17-0.35)     DDP 0.259 s/step (runs 0.18-0.37)
    idle 16-core host (torch 2.11) pinned to 2 cores (taskset -c 0,1), tiny config, 3 runs each:
        manual 0.164 s/step (0.154-0.175)        DDP 0.164 s/step (0.161-0.167)
    same host, configs/wgan_gp_toy.yaml (batch 32, n_critic 5):
        manual 0.815 s/step (2 runs)             DDP 0.828 s/step (1 run)

i.e. no difference beyond the run-to-run noise (and bit-identical weights after the runs,
so the DDP pattern was right): our networks are small (about 1M parameters in the tiny
config, 12M in the default generator), one flat all-reduce per update costs little next to
the convolutions, and DDP's overlap of communication with backward has little to hide.
The hand-rolled path (as in stylegan3) was kept because, at equal speed, it needs no wrapper
modules in the models (each loss keeps calling the plain networks, and the WGAN-GP/DDPM
model code stays untouched), handles parameters that get no gradient exactly like a single
process (see ``average_gradients``), is the same one call for the critic, generator, encoder
and the DDPM UNet, and keeps the EMA/checkpoint code free of ``.module`` indirections.
Replicas stay in sync because every rank starts from rank 0's weights (``broadcast_module``)
and applies the same averaged gradients; ``check_identical`` verifies it (networks, EMA,
optimizer states) at every checkpoint. Were much larger models trained on many GPUs, DDP's
overlap could start to pay: re-measure then (docs/distributed.md shows the DDP pattern that
was timed).
"""
from __future__ import annotations

import datetime
import hashlib
import os

import torch
import torch.distributed as dist


class ReplicaMismatch(RuntimeError):
    """Ranks hold different weights/states where they must be identical."""


def _tensor_bytes(t):
    t = t.detach()
    if t.device.type != "cpu":
        t = t.cpu()
    return t.contiguous().reshape(-1).view(torch.uint8).numpy().tobytes()


def _feed(h, obj):
    """Feed a nested structure (dicts, lists, tensors, numbers, strings) into a hash."""
    if isinstance(obj, torch.Tensor):
        h.update(f"T{obj.dtype}{tuple(obj.shape)}".encode())
        h.update(_tensor_bytes(obj))
    elif isinstance(obj, dict):
        h.update(b"{")
        for key in obj:                      # insertion order: identical code -> identical order
            h.update(repr(key).encode())
            _feed(h, obj[key])
        h.update(b"}")
    elif isinstance(obj, (list, tuple)):
        h.update(b"[")
        for item in obj:
            _feed(h, item)
        h.update(b"]")
    else:
        h.update(repr(obj).encode())


def digest(obj):
    """sha256 of a nested state (e.g. a state_dict) as 4 int64 values."""
    h = hashlib.sha256()
    _feed(h, obj)
    return torch.frombuffer(bytearray(h.digest()), dtype=torch.int64).clone()


class DistContext:
    """Rank information; a single-process context when not launched by torchrun.

    Under torchrun (WORLD_SIZE > 1) the default process group is created from the torchrun
    environment (env:// rendezvous): ``nccl`` when the run is on CUDA, ``gloo`` on CPU. If a
    process group already exists (e.g. a test that called ``init_process_group`` itself), it
    is used as is.
    """

    def __init__(self, device_name="auto", timeout_minutes=30):
        self.world_size = int(os.environ.get("WORLD_SIZE", "1"))
        self.rank = int(os.environ.get("RANK", "0"))
        self.local_rank = int(os.environ.get("LOCAL_RANK", "0"))
        self.enabled = self.world_size > 1
        name = str(device_name or "auto")
        self.use_cuda = torch.cuda.is_available() and (name == "auto" or name.startswith("cuda"))
        if not self.enabled:
            return
        if self.use_cuda:
            if self.local_rank >= torch.cuda.device_count():
                raise ValueError(f"LOCAL_RANK {self.local_rank} but only {torch.cuda.device_count()} visible "
                                 f"GPU(s): launch at most one process per GPU (--nproc_per_node)")
            torch.cuda.set_device(self.local_rank)      # before the group: NCCL binds to it
        if not dist.is_initialized():
            kwargs = {"timeout": datetime.timedelta(minutes=timeout_minutes)}
            if self.use_cuda:
                kwargs["device_id"] = torch.device("cuda", self.local_rank)
            dist.init_process_group(backend="nccl" if self.use_cuda else "gloo", **kwargs)
        if dist.get_world_size() != self.world_size or dist.get_rank() != self.rank:
            raise RuntimeError(f"process group (rank {dist.get_rank()}/{dist.get_world_size()}) disagrees "
                               f"with RANK={self.rank}, WORLD_SIZE={self.world_size}")
        # Collectives run on the backend's device: CUDA tensors for nccl, CPU for gloo.
        self.comm_device = torch.device("cuda", self.local_rank) if self.use_cuda else torch.device("cpu")

    @property
    def is_main(self):
        return self.rank == 0

    def device(self, resolved):
        """The per-process device: cuda:<local_rank> under torchrun on GPUs."""
        if self.enabled and resolved.type == "cuda":
            return torch.device("cuda", self.local_rank)
        return resolved

    # ------------------------------------------------------------------ gradients
    def average_gradients(self, params):
        """Replace every parameter's gradient by its mean across ranks (one flat all_reduce).

        A rank where a parameter got no gradient contributes zeros; a parameter that got no
        gradient on *any* rank keeps ``grad = None`` (as in a single process, so Adam skips it
        instead of applying a zero-gradient update from its stale moments). Each rank's loss
        must be a mean over its local batch: the mean of the ranks' means is then the mean
        over the global batch, i.e. exactly the single-process gradient."""
        if not self.enabled:
            return
        params = [p for p in params if p.requires_grad]
        if not params:
            return
        dtype = next((p.grad.dtype for p in params if p.grad is not None), params[0].dtype)
        parts = [(p.grad if p.grad is not None else torch.zeros_like(p, dtype=dtype)).reshape(-1)
                 for p in params]
        has_grad = torch.tensor([p.grad is not None for p in params], dtype=dtype, device=parts[0].device)
        flat = torch.cat(parts + [has_grad])
        dist.all_reduce(flat)
        flat[:-len(params)] /= self.world_size
        counts = flat[-len(params):].tolist()        # one device->host copy
        offset = 0
        for p, count in zip(params, counts):
            n = p.numel()
            if count == 0:
                p.grad = None
            elif p.grad is not None:
                p.grad.copy_(flat[offset:offset + n].view_as(p))
            else:   # a new gradient with the parameter's own strides (e.g. channels_last)
                p.grad = torch.empty_like(p, dtype=flat.dtype).copy_(flat[offset:offset + n].view_as(p))
            offset += n

    # ------------------------------------------------------------------ logging values
    def all_mean(self, value):
        """Mean of a float (or of each value of a dict of floats) across ranks; one all_reduce."""
        if not self.enabled:
            return value
        if isinstance(value, dict):
            keys = list(value)
            t = torch.tensor([float(value[k]) for k in keys], dtype=torch.float64, device=self.comm_device)
            dist.all_reduce(t)
            return dict(zip(keys, (t / self.world_size).tolist()))
        t = torch.tensor([float(value)], dtype=torch.float64, device=self.comm_device)
        dist.all_reduce(t)
        return float(t.item()) / self.world_size

    def reduce_step(self, values, flag=False):
        """Per-step sync: (means across ranks of a dict of floats, whether ``flag`` is set on any
        rank), in one all_reduce. Every rank then takes the same decisions (divergence stop,
        signal stop) from the same numbers. Keys are sorted so their order cannot differ."""
        if not self.enabled:
            return dict(values), bool(flag)
        keys = sorted(values)
        t = torch.tensor([float(values[k]) for k in keys] + [1.0 if flag else 0.0], dtype=torch.float64,
                         device=self.comm_device)
        dist.all_reduce(t)
        means = (t[:-1] / self.world_size).tolist()
        return dict(zip(keys, means)), bool(t[-1].item() > 0)

    # ------------------------------------------------------------------ objects and states
    def broadcast_object(self, obj):
        """Rank 0's ``obj`` on every rank (picklable objects)."""
        if not self.enabled:
            return obj
        holder = [obj]
        dist.broadcast_object_list(holder, src=0, device=self.comm_device)
        return holder[0]

    def all_gather_object(self, obj):
        """[obj of rank 0, obj of rank 1, ...] on every rank."""
        if not self.enabled:
            return [obj]
        out = [None] * self.world_size
        dist.all_gather_object(out, obj)
        return out

    @torch.no_grad()
    def broadcast_module(self, module):
        """Copy rank 0's parameters and buffers into ``module`` on every rank."""
        if not self.enabled:
            return
        for t in list(module.parameters()) + list(module.buffers()):
            dist.broadcast(t.data, src=0)

    def check_identical(self, states, what="state"):
        """Raise ReplicaMismatch (on every rank) unless each entry of ``states`` (name -> nested
        state, e.g. a state_dict) hashes the same on all ranks. One all_reduce of the sha256
        digests (max of d and of -d: equal everywhere iff max(d) == min(d))."""
        if not self.enabled:
            return
        names = list(states)
        d = torch.stack([digest(states[n]) for n in names]).to(self.comm_device)
        both = torch.cat([d, -d])
        dist.all_reduce(both, op=dist.ReduceOp.MAX)
        hi, neg_lo = both[:len(names)], both[len(names):]
        differ = [n for n, row in zip(names, (hi != -neg_lo).any(1).tolist()) if row]
        if differ:
            raise ReplicaMismatch(f"{what} differs across the {self.world_size} processes for: {differ} "
                                  f"(rank {self.rank}); the replicas are out of sync")

    # ------------------------------------------------------------------ lifecycle
    def barrier(self):
        if self.enabled:
            if self.use_cuda:
                dist.barrier(device_ids=[self.local_rank])
            else:
                dist.barrier()

    def close(self):
        if self.enabled and dist.is_initialized():
            dist.destroy_process_group()
