"""Memory estimates made before anything is allocated, and the refusals that use them.

A model is built with fake tensors (shapes and dtypes, no storage) and run for one training
loss on a fake batch; the outputs of its leaf modules are what autograd keeps for the backward
pass. The estimate is a planning figure, not a measurement: it names the order of magnitude a
configuration needs, so that ``model.dim: 1000000`` is refused in one line instead of ending in
an allocator traceback minutes later.
"""
from __future__ import annotations

import os
import warnings

import torch

GB = 1024 ** 3
# fp32 weights, their gradients, Adam's two moments and an EMA copy of the weights
BYTES_PER_PARAMETER = 5 * 4
# the saved forward activations, plus as much again for the gradients of the backward pass
ACTIVATION_FACTOR = 2
# a sampling request keeps every sample as float32 and concatenates them once (2 copies)
SAMPLE_COPIES = 2


def available_bytes(device="cpu"):
    """Memory a new allocation can use now: free GPU memory for a CUDA device, else the host's
    MemAvailable (Linux), else its physical memory; None when unknown."""
    device = torch.device(device)
    if device.type == "cuda" and torch.cuda.is_available():
        return torch.cuda.mem_get_info(device)[0]
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        return os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return None


def _leaf_output_bytes(model, run):
    """Bytes of the tensors the leaf modules of ``model`` return while ``run()`` executes."""
    total = 0

    def count(module, inputs, output):
        nonlocal total
        for out in output if isinstance(output, (tuple, list)) else (output,):
            if isinstance(out, torch.Tensor):
                total += out.numel() * out.element_size()

    hooks = [m.register_forward_hook(count) for m in model.modules() if not any(True for _ in m.children())]
    try:
        run()
    finally:
        for hook in hooks:
            hook.remove()
    return total


def training_memory(build, cfg, batch_size):
    """{parameters, parameter_bytes, activation_bytes, total_bytes} of training the model that
    ``build(cfg)`` makes (an nn.Module whose ``model(img, cond=cond)`` returns its training loss)
    on batches of ``batch_size``, estimated with fake tensors (nothing is allocated)."""
    m = cfg["model"]
    (h, w), channels, cond_dim = m["image_size"], m["channels"], m["cond_dim"]
    from torch._subclasses.fake_tensor import FakeTensorMode
    with FakeTensorMode(allow_non_fake_inputs=True), warnings.catch_warnings():
        warnings.simplefilter("ignore")      # fake tensors warn about data pointers nobody reads
        model = build(cfg)
        parameters = sum(p.numel() for p in model.parameters())
        img = torch.zeros(batch_size, channels, h, w)
        cond = torch.zeros(batch_size, cond_dim) if cond_dim else None
        activations = _leaf_output_bytes(model, lambda: model(img, cond=cond))
    out = {"parameters": parameters, "parameter_bytes": parameters * BYTES_PER_PARAMETER,
           "activation_bytes": activations * ACTIVATION_FACTOR}
    out["total_bytes"] = out["parameter_bytes"] + out["activation_bytes"]
    return out


def rough_training_bytes(cfg):
    """A quick, generous bound on training memory from the config alone (no model built): every
    base width (generator, critic, encoder) as a stack of 3x3 conv stages, one per
    ``dim_mults`` entry at half the previous resolution, each with 4 layers per ResBlock plus 4,
    times 8: the sum alone is 0.26x the estimate for the DDPM toy model (attention, time
    embeddings) and 1.5x for the WGAN-GP's. It only decides whether the real estimate runs."""
    m, batch = cfg["model"], cfg["training"]["batch_size"]
    h, w = m["image_size"]
    mults = m.get("dim_mults") or [1]
    blocks = m.get("res_blocks", 1)
    blocks = blocks if isinstance(blocks, list) else [blocks] * len(mults)
    total = 0
    for width in (m[k] for k in ("dim", "critic_dim", "encoder_dim") if isinstance(m.get(k), int)):
        for stage, (mult, n) in enumerate(zip(mults, blocks)):
            c, layers = width * mult, 4 * n + 4
            pixels = max(1, h >> stage) * max(1, w >> stage)
            total += layers * (batch * pixels * c * 4 * ACTIVATION_FACTOR + 9 * c * c * BYTES_PER_PARAMETER)
    return 8 * total


def check_training_memory(build, cfg, device="cpu"):
    """Raise ValueError, with the estimate, when training ``cfg`` cannot fit the device's memory.
    The estimate (a second or two of tracing) runs only when the quick bound comes within half
    of the available memory; returns it, or None when the bound was enough."""
    have = available_bytes(device)
    if build is None or have is None or rough_training_bytes(cfg) < have / 2:
        return None
    batch = cfg["training"]["batch_size"]
    need = training_memory(build, cfg, batch)
    if need["total_bytes"] > have:
        m = cfg["model"]
        raise ValueError(
            f"training this model needs about {need['total_bytes'] / GB:.1f} GB ({need['parameters']:,} parameters: "
            f"{need['parameter_bytes'] / GB:.1f} GB with gradients, optimizer state and EMA; activations of one batch "
            f"of {batch}: {need['activation_bytes'] / GB:.1f} GB) but {device} has {have / GB:.1f} GB available "
            f"(model.dim {m.get('dim')}, model.image_size {m['image_size']}): lower model.dim, the image size or "
            f"training.batch_size")
    return need


def check_sampling_memory(num_samples, channels, height, width):
    """Raise ValueError, with the estimate, when ``num_samples`` samples cannot be held in memory."""
    need = num_samples * channels * height * width * 4 * SAMPLE_COPIES
    have = available_bytes("cpu")      # samples are gathered on the host whatever the device
    if have is not None and need > have:
        fits = max(1, int(num_samples * have / need))
        raise ValueError(f"--num_samples {num_samples} needs about {need / GB:.1f} GB to hold the samples "
                         f"({channels} x {height} x {width} float32 each, {SAMPLE_COPIES} copies) but this machine "
                         f"has {have / GB:.1f} GB available: use --num_samples <= {fits} and run again for more")
    return need
