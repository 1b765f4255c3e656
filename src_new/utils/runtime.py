"""Seeding, RNG state capture for exact resume, and device selection."""
from __future__ import annotations

import random

import numpy as np
import torch


def seed_everything(seed):
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def randn(shape, device, generator=None):
    """N(0, I) of ``shape`` on ``device``, drawn on the torch.Generator's own device when one is
    given and then moved: the same seed gives the same draw for CPU and CUDA models."""
    draw_on = generator.device if generator is not None else device
    return torch.randn(shape, device=draw_on, generator=generator).to(device)


def resolve_device(name="auto"):
    """auto -> cuda when available, else cpu; a clear error for cuda without a GPU."""
    if name in (None, "auto"):
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device '{name}' requested but CUDA is not available; use --device cpu")
    return device


def get_rng_state(generators=None):
    """Plain-data RNG state (tensors and ints) of torch (CPU + CUDA) and named generators."""
    state = {"torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    for name, gen in (generators or {}).items():
        state[name] = gen.get_state()
    return state


def set_rng_state(state, generators=None):
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
    for name, gen in (generators or {}).items():
        if name in state:
            gen.set_state(state[name])
