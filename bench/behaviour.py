"""Behaviour fingerprint: fixed-seed tiny runs of both models through the CLI, hashed.

Trains each model for a few dozen steps (CPU, one thread, fixed seed), samples every mode from
the final checkpoint and evaluates the samples; writes the SHA-256 of every checkpoint tensor, of
every array in each ``samples.npz`` and of each ``metrics.json`` (timings dropped). Run it
before and after a refactor that must not change behaviour, and compare:

    python bench/behaviour.py --out /tmp/before.json
    ... refactor ...
    python bench/behaviour.py --out /tmp/after.json --compare /tmp/before.json

Bit-identical hashes need the same machine and library build; across machines the test
(tests/test_behaviour.py) compares statistics (sum, sum of |x|, sum of x^2 of every weight and
sample array, every metric) to the committed ``tests/data/behaviour.json`` with a tolerance.
After an intended change of behaviour, rewrite that file with ``--golden`` and say why.
"""
import argparse
import hashlib
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import torch
import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from src_new.datasets.synthetic import write_dataset  # noqa: E402

DATA = {"component_dirs": ["group_nc", "group_km", "bt", "fpu", "tpc"],
        "condition_columns": ["width_px", "height_px"]}
CONFIGS = {
    "wgan_gp": {
        "model": {"type": "wgan_gp", "latent_dim_per_component": 2, "dim": 8, "res_blocks": [1, 1, 1],
                  "critic_dim": 8, "encoder_dim": 8, "lambda_gp": 10, "n_critic": 2,
                  "minibatch_std_group": 4, "lambda_rec": 20, "lambda_latent_kl": 0.1},   # as shipped
        "training": {"epochs": 15, "batch_size": 8, "lr_generator": 2e-4, "lr_critic": 2e-4,
                     "ema_decay": 0.9, "ema_update_every": 1, "eval_every": 15, "check_every": 15,
                     "device": "cpu", "precision": "fp32"},
        "sampling": {"num_samples": 8, "batch_sz": 8, "inpaint_steps": 3, "restarts": 2},
    },
    "ddpm": {
        "model": {"type": "ddpm", "dim": 8, "dim_mults": [1, 2], "res_blocks": 1, "timesteps": 50},
        "training": {"epochs": 8, "batch_size": 8, "ema_decay": 0.9, "ema_update_every": 1,
                     "eval_every": 8, "check_every": 8, "device": "cpu"},
        "sampling": {"ddim_steps": 3, "inpaint_steps": 3, "num_samples": 8, "batch_sz": 8},
    },
}
MODES = {"unconditional": [], "conditional": ["--guidance_scale", "2"],
         "inpainting": ["--components", "fpu", "group_nc"]}
VOLATILE = ("time", "seconds", "per_image", "samples", "config", "date", "elapsed")
GOLDEN = "tests/data/behaviour.json"     # python bench/behaviour.py --golden --out tests/data/behaviour.json


def sha(array):
    array = np.ascontiguousarray(array)
    return hashlib.sha256(array.tobytes() + str(array.dtype).encode() + str(array.shape).encode()).hexdigest()[:16]


def stats(array):
    """Statistics that survive a change of machine (tolerance comparison in the test)."""
    a = np.asarray(array, dtype=np.float64)
    return [float(a.sum()), float(np.abs(a).sum()), float((a * a).sum())] if a.size else [0.0, 0.0, 0.0]


def tensors(obj, prefix=""):
    """Every tensor / array inside nested dicts and lists, by dotted path."""
    if isinstance(obj, torch.Tensor):
        yield prefix, obj.detach().cpu().numpy()
    elif isinstance(obj, np.ndarray):
        yield prefix, obj
    elif isinstance(obj, dict):
        for k in sorted(obj, key=str):
            yield from tensors(obj[k], f"{prefix}.{k}" if prefix else str(k))
    elif isinstance(obj, (list, tuple)):
        for i, v in enumerate(obj):
            yield from tensors(v, f"{prefix}[{i}]")


def numbers(obj, prefix=""):
    """The numeric leaves of metrics.json, without timings and paths."""
    if isinstance(obj, dict):
        for k in sorted(obj):
            if not any(v in k for v in VOLATILE):
                yield from numbers(obj[k], f"{prefix}.{k}" if prefix else k)
    elif isinstance(obj, (int, float)) and not isinstance(obj, bool):
        yield prefix, float(obj)


def run(script, *args):
    env = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1", PYTHONUNBUFFERED="1")
    proc = subprocess.run([sys.executable, str(ROOT / "src_new" / "scripts" / script), *map(str, args)],
                          cwd=ROOT, capture_output=True, text=True, env=env)
    if proc.returncode:
        raise SystemExit(f"{script} {' '.join(map(str, args))} failed:\n{proc.stdout[-2000:]}\n{proc.stderr[-2000:]}")


def fingerprint(model_type, work, evaluate=True):
    """{"checkpoint": {name: [sha, stats]}, "<mode>": {array: [sha, stats]}, "<mode>/metrics": {...}}."""
    root = work / "data"
    if not (root / "dimensions.csv").exists():
        write_dataset(root, n=40, seed=0, test_fraction=0.2)
    cfg = json.loads(json.dumps(CONFIGS[model_type]))
    cfg["data"] = dict(DATA, root_dir=str(root), condition_csv=str(root / "dimensions.csv"))
    cfg["paths"] = {"output_dir": str(work / model_type), "samples_dir": str(work / "samples")}
    path = work / f"{model_type}.yaml"
    path.write_text(yaml.safe_dump(cfg))
    run("train.py", "--model", model_type, "--config", path, "--run_name", "run")
    ckpt_path = work / model_type / "run" / "checkpoint_latest.pt"
    ckpt = torch.load(ckpt_path, weights_only=True)
    result = {"checkpoint": {name: [sha(a), stats(a)] for name, a in tensors(ckpt)
                             if "optimizer" not in name or a.ndim}}
    for mode, extra in MODES.items():
        out = work / "samples" / model_type / mode
        run("sample.py", "--checkpoint", ckpt_path, "--mode", mode, "--out", out, "--seed", 0, *extra)
        with np.load(out / "samples.npz") as npz:
            result[mode] = {k: [sha(npz[k]), stats(npz[k])] for k in sorted(npz.files)}
        if evaluate:
            run("evaluate.py", "--samples", out, "--max_real", 8)
            metrics = json.loads((out / "metrics.json").read_text())
            result[f"{mode}/metrics"] = dict(numbers(metrics))
    return result


def compare(new, old):
    """Lines naming every entry whose hash (or metric value) differs."""
    diffs = []
    for model_type in sorted(set(new) | set(old)):
        a, b = new.get(model_type, {}), old.get(model_type, {})
        for group in sorted(set(a) | set(b)):
            ga, gb = a.get(group, {}), b.get(group, {})
            for key in sorted(set(ga) | set(gb)):
                va, vb = ga.get(key), gb.get(key)
                same = (va[0] == vb[0]) if isinstance(va, list) and isinstance(vb, list) else va == vb
                if not same:
                    diffs.append(f"{model_type} {group} {key}: {vb} -> {va}")
    return diffs


def golden(result):
    """The machine-portable part of a fingerprint: statistics of the model weights and samples
    and the metric values (no hashes, no optimizer state)."""
    return {model_type: {group: {k: (v[1] if isinstance(v, list) else v) for k, v in entries.items()
                                 if "optimizer" not in k}
                         for group, entries in groups.items()}
            for model_type, groups in result.items()}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", required=True, help="JSON file to write the fingerprint to")
    parser.add_argument("--compare", help="an earlier fingerprint: list every difference (exit 1 if any)")
    parser.add_argument("--models", nargs="+", default=sorted(CONFIGS), choices=sorted(CONFIGS))
    parser.add_argument("--golden", action="store_true",
                        help=f"write only the statistics tests/test_behaviour.py compares (to --out, e.g. {GOLDEN})")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        result = {m: fingerprint(m, Path(tmp)) for m in args.models}
    Path(args.out).write_text(json.dumps(golden(result) if args.golden else result, indent=1, sort_keys=True))
    print(f"wrote {args.out}: {sum(len(g) for r in result.values() for g in r.values())} entries")
    if args.compare:
        diffs = compare(result, json.loads(Path(args.compare).read_text()))
        print("\n".join(diffs) if diffs else "identical")
        sys.exit(1 if diffs else 0)


if __name__ == "__main__":
    main()
