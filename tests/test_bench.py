"""The benchmark's smoke run never rots (no timing assertions), and its FLOP counter is right."""
import json
import subprocess
import sys

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from conftest import ROOT


def test_bench_quick_runs_and_writes_json(tmp_path):
    out = tmp_path / "bench.json"
    proc = subprocess.run([sys.executable, str(ROOT / "bench" / "bench_wgan.py"), "--quick", "--device", "cpu",
                           "--out", str(out)], cwd=ROOT, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads(out.read_text())
    for key in ("ceiling_gflops", "train_iteration", "encoder_step", "sampling", "inpainting", "data",
                "peak_rss_mb", "cpu_utilisation", "load_average_1min"):
        assert key in result, key
    t = result["train_iteration"]
    assert t["flops_plan"] > t["flops_ours"] > 0 and t["seconds_ours"] > 0 and t["seconds_plain"] > 0
    for key in ("speedup_vs_plain", "fraction_of_ceiling_effective", "fraction_of_ceiling_executed", "images_per_s"):
        assert t[key] > 0, key
    assert result["sampling"]["images_per_s_unconditional"] > 0 and result["sampling"]["images_per_s_guided"] > 0
    assert result["inpainting"]["seconds_ours"] > 0 and result["inpainting"]["seconds_plain"] > 0
    assert result["data"]["png_decodes_first_epoch"] > 0
    assert result["data"]["png_decodes_later_epochs"] == 0          # later epochs read the uint8 cache
    assert "matmul ceiling" in proc.stdout and "plain reference" in proc.stdout


def test_flop_counter_counts_through_the_gradient_penalty():
    """The benchmark's counter (FlopCounterMode without its module tracker, which breaks on
    autograd.grad) counts a penalty computed with autograd.grad exactly as the stock counter
    counts the same computation written with backward(create_graph=True)."""
    sys.path.insert(0, str(ROOT / "bench"))
    from bench_wgan import count_flops

    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(3, 8, 4, 2, 1), nn.GroupNorm(1, 8), nn.LeakyReLU(0.2), nn.Flatten(),
                        nn.Linear(8 * 4 * 4, 1))
    x = torch.randn(4, 3, 8, 8, requires_grad=True)
    params = list(net.parameters())

    def with_autograd_grad():
        out = net(x)
        (grad,) = torch.autograd.grad(out.sum(), x, create_graph=True)
        (out.mean() + grad.flatten(1).norm(dim=1).sub(1).pow(2).mean()).backward(inputs=params)

    def with_backward():
        x.grad = None
        out = net(x)
        out.sum().backward(inputs=[x], create_graph=True)
        grad, x.grad = x.grad, None
        (out.mean() + grad.flatten(1).norm(dim=1).sub(1).pow(2).mean()).backward(inputs=params)
        for p in params:
            p.grad = None

    with FlopCounterMode(display=False) as stock:
        with_backward()
    assert count_flops(with_autograd_grad) == stock.get_total_flops() > 0
