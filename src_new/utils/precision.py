"""Numeric precision of the networks' passes: fp32, or bf16 autocast (fp32 master weights).

bf16 runs the convolutions and matmuls under ``torch.autocast(dtype=torch.bfloat16)``: on CPUs
with AMX units (and on CUDA) they run several times faster; elsewhere bf16 falls back to fp32.
Weights, gradients and optimizer state stay fp32 (autocast casts a copy of each weight per
call); losses, norms and reductions are taken in fp32 by the code that computes them
(``.float()`` before the reduction). Read once by the trainer (``training.precision``) and by
the samplers (``sampling.precision``): networks never branch on it.
"""
from __future__ import annotations

import contextlib
import functools

import torch

PRECISIONS = ("fp32", "bf16")          # training.precision, sampling.precision


@functools.lru_cache(maxsize=None)
def cpu_has_amx():
    """True when this CPU has AMX tile units and the OS lets this process use them (torch's
    own check, which oneDNN's AMX kernels need); False where torch cannot tell."""
    init_amx = getattr(torch._C._cpu, "_init_amx", None)
    return bool(init_amx()) if init_amx is not None else False


@functools.lru_cache(maxsize=None)
def bf16_supported(device_type):
    """True when ``device_type`` ("cpu" | "cuda") has fast bf16 matrix kernels: oneDNN with AMX
    on CPU, bf16 on the GPU. AVX-512 BF16 alone is not enough: on such a host the WGAN-GP's
    training step took 1.35x as long in bf16 as in fp32 (bench/results/step_time_no_amx.json),
    and emulated bf16 is slower still."""
    if device_type == "cuda":
        return torch.cuda.is_available() and torch.cuda.is_bf16_supported()
    if device_type == "cpu":
        return (torch.backends.mkldnn.is_available() and bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
                and cpu_has_amx())
    return False


def resolve_precision(precision, device, what="training.precision", say=print):
    """The precision to run: ``precision`` itself, or fp32 with a one-line note when bf16 is
    asked for on a device without fast bf16 units. Raises ValueError for an unknown name."""
    if precision not in PRECISIONS:
        raise ValueError(f"{what} = {precision!r}: use one of {list(PRECISIONS)}")
    device_type = torch.device(device).type
    if precision == "bf16" and not bf16_supported(device_type):
        say(f"note: {what} = bf16 but this {device_type} has no fast bf16 units (AMX on a CPU); "
            f"running in fp32")
        return "fp32"
    return precision


def autocast(precision, device):
    """The context that runs a pass in ``precision`` ("fp32": a no-op) on ``device``."""
    if precision == "bf16":
        return torch.autocast(torch.device(device).type, dtype=torch.bfloat16)
    return contextlib.nullcontext()


LOW_PRECISION = (torch.bfloat16, torch.float16)


def full_precision(x):
    """``x`` in fp32 when it is bf16 / fp16 (an autocast output), else ``x`` unchanged."""
    return x.float() if x.dtype in LOW_PRECISION else x


class GroupNorm32(torch.nn.GroupNorm):
    """``nn.GroupNorm`` (same parameters and state dict) that normalizes a bf16 / fp16 input in
    fp32 and returns fp32; other dtypes pass through unchanged (it is then ``nn.GroupNorm``).
    Under bf16 autocast this keeps the statistics exact, and it is faster: oneDNN's
    channels-last GroupNorm on bf16 inputs with few channels per group is several times slower
    than on fp32 ones (torch 2.14; ``bench/bench_wgan.py --profile`` shows the normalization's
    share of a step)."""

    def forward(self, x):
        return torch.nn.functional.group_norm(full_precision(x), self.num_groups, self.weight, self.bias, self.eps)
