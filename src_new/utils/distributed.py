"""torch.distributed glue for torchrun: process group, rank-aware helpers, gradient averaging.

Gradients are averaged by hand after backward (flatten, all_reduce, divide), as stylegan3
does, because the gradient penalty's ``autograd.grad(..., create_graph=True)`` is not
reliably synchronised by DistributedDataParallel's hooks.
"""
from __future__ import annotations

import os

import torch
import torch.distributed as dist


class DistContext:
    """Rank information; a single-process context when not launched by torchrun."""

    def __init__(self, device_name="auto"):
        self.world_size = int(os.environ.get("WORLD_SIZE", "1"))
        self.rank = int(os.environ.get("RANK", "0"))
        self.local_rank = int(os.environ.get("LOCAL_RANK", "0"))
        self.enabled = self.world_size > 1
        use_cuda = torch.cuda.is_available() and device_name in ("auto", "cuda")
        if self.enabled and not dist.is_initialized():
            dist.init_process_group(backend="nccl" if use_cuda else "gloo")
        if self.enabled and use_cuda:
            torch.cuda.set_device(self.local_rank)

    @property
    def is_main(self):
        return self.rank == 0

    def device(self, resolved):
        """The per-process device: cuda:<local_rank> under torchrun on GPUs."""
        if self.enabled and resolved.type == "cuda":
            return torch.device("cuda", self.local_rank)
        return resolved

    def average_gradients(self, params):
        """All-reduce the mean of every parameter's gradient across ranks (missing grads = 0)."""
        if not self.enabled:
            return
        params = [p for p in params if p.requires_grad]
        grads = [p.grad if p.grad is not None else torch.zeros_like(p) for p in params]
        flat = torch.cat([g.flatten() for g in grads])
        dist.all_reduce(flat)
        flat /= self.world_size
        offset = 0
        for p in params:
            n = p.numel()
            p.grad = flat[offset:offset + n].view_as(p).clone()
            offset += n

    def all_mean(self, value):
        """Mean of a float across ranks (for logging)."""
        if not self.enabled:
            return value
        t = torch.tensor([float(value)], dtype=torch.float64)
        dist.all_reduce(t)
        return float(t.item()) / self.world_size

    def broadcast_object(self, obj):
        if not self.enabled:
            return obj
        holder = [obj]
        dist.broadcast_object_list(holder, src=0)
        return holder[0]

    def barrier(self):
        if self.enabled:
            dist.barrier()

    def close(self):
        if self.enabled and dist.is_initialized():
            dist.destroy_process_group()
