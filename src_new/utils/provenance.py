"""Provenance of a results file: which code, command, machine and date produced it.

Every JSON under bench/results/ carries ``provenance(...)`` as its ``"provenance"`` entry, so a
figure can be traced to the commit and command that measured it.
"""
from __future__ import annotations

import argparse
import datetime
import os
import platform
import subprocess
import sys
from pathlib import Path

import torch

REPO_ROOT = Path(__file__).resolve().parents[2]


def _git(*args):
    try:
        out = subprocess.run(["git", *args], cwd=REPO_ROOT, capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() if out.returncode == 0 else None


def cpu_model():
    """The CPU's model name (Linux /proc/cpuinfo; else platform.processor())."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def machine(device="cpu"):
    """{cpu, cpus, torch_threads, torch, bf16_units, amx, device}: what the figures were measured on."""
    from .precision import bf16_supported, cpu_has_amx
    info = {"cpu": cpu_model(), "cpus": os.cpu_count(), "torch_threads": torch.get_num_threads(),
            "torch": torch.__version__, "python": platform.python_version(),
            "bf16_units": bf16_supported("cpu"), "amx": cpu_has_amx(), "device": str(device)}
    if torch.device(device).type == "cuda" and torch.cuda.is_available():
        info["device_name"] = torch.cuda.get_device_name(torch.device(device))
    return info


def provenance(argv=None, device="cpu", **extra):
    """{commit, dirty, command, date, machine, **extra} for a results file. ``extra`` holds what
    the measurement depends on: seeds, the resolved config (or its hash), training wall time and
    steps. ``dirty`` lists the changed tracked files when the tree differs from the commit."""
    changed = _git("diff", "--name-only", "HEAD")      # tracked files that differ from the commit
    return {"commit": _git("rev-parse", "HEAD"), "dirty": sorted(changed.splitlines()) if changed else [],
            "command": " ".join([Path(sys.executable).name, *(argv if argv is not None
                                                                                  else sys.argv)]),
            "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
            "machine": machine(device), **extra}


def results_path(parser, out, overwrite):
    """The results file ``out`` (Path) of a script, after refusing (``parser.error``) to replace
    an existing one unless ``overwrite``: a measurement never overwrites another silently."""
    if out.exists() and not overwrite:
        parser.error(f"{out} exists: pass --overwrite to replace it, or --out another path")
    return out


def checkpoint_benchmark_args(doc, default_out, argv=None):
    """The command line of a benchmark that scores checkpoints: ``--checkpoints`` (one or more),
    ``--out`` (refused if it exists, ``results_path``) and ``--overwrite`` -> (args, out Path).
    Sets two torch threads: every benchmark figure is measured on the 2-core protocol."""
    p = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--checkpoints", nargs="+", required=True, help="checkpoint files to score")
    p.add_argument("--out", default=default_out, help="results JSON (default: %(default)s)")
    p.add_argument("--overwrite", action="store_true", help="replace an existing --out")
    args = p.parse_args(argv)
    out = results_path(p, Path(args.out), args.overwrite)
    torch.set_num_threads(2)
    return args, out
