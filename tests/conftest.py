"""Shared fixtures: a tiny synthetic dataset and tiny configs, so the suite stays fast."""
import copy
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from src_new.datasets.synthetic import write_dataset  # noqa: E402
from src_new.pipeline.config import auto_complete_config, validate_config  # noqa: E402

torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS") or 2))   # 2 unless the caller limits it

TINY_WGAN = {
    "model": {"type": "wgan_gp", "image_size": [64, 32], "latent_dim_per_component": 2, "dim": 8,
              "dim_mults": [1, 2, 4], "res_blocks": [1, 1, 1], "bottleneck_res_blocks": 1,
              "critic_dim": 8, "encoder_dim": 8, "lambda_gp": 10, "n_critic": 2, "cond_drop_prob": 0.1},
    "data": {"component_dirs": ["group_nc", "group_km", "bt", "fpu", "tpc"],
             "condition_columns": ["width_px", "height_px"], "prefix_column": "matching",
             "filename_pattern": "mdbk_{prefix}_{component}.png", "split_column": "train",
             "normalized": False},
    "training": {"epochs": 1, "batch_size": 8, "num_workers": 0, "lr_generator": 2e-4, "lr_critic": 2e-4,
                 "ema_decay": 0.99, "ema_update_every": 1, "eval_every": 1, "check_every": 1, "seed": 0,
                 "device": "cpu", "encoder_every": 1,
                 # fp32: the suite compares execution paths (distributed vs one process, resume) to
                 # fp32 tolerances; tests/test_precision.py trains and samples in bf16
                 "precision": "fp32"},
    "sampling": {"num_samples": 8, "batch_sz": 8, "inpaint_steps": 3, "restarts": 2},
}


@pytest.fixture(scope="session")
def toy_root(tmp_path_factory):
    """40 synthetic samples (32 train, 8 test) in the EPURE layout."""
    root = tmp_path_factory.mktemp("toy")
    write_dataset(root, n=40, seed=0, test_fraction=0.2)
    return root


def make_cfg(root, out_dir=None, **sections):
    """A resolved tiny config on the dataset at ``root``; ``sections`` update TINY_WGAN."""
    cfg = copy.deepcopy(TINY_WGAN)
    cfg["data"].update(root_dir=str(root), condition_csv=str(Path(root) / "dimensions.csv"))
    if out_dir is not None:
        cfg["paths"] = {"output_dir": str(out_dir), "samples_dir": str(Path(out_dir) / "samples")}
    for section, values in sections.items():
        cfg.setdefault(section, {}).update(values)
    return validate_config(auto_complete_config(cfg, verbose=False))


@pytest.fixture
def tiny_cfg(toy_root, tmp_path):
    return make_cfg(toy_root, tmp_path / "outputs")


def write_yaml(cfg, path):
    path.write_text(yaml.safe_dump({k: v for k, v in cfg.items() if not k.startswith("_")}))
    return path


def run_script(script, *args, check=True, timeout=240, env=None):
    """Run a repo script as a user would (a subprocess from the repo root)."""
    full_env = dict(os.environ, PYTHONUNBUFFERED="1", **(env or {}))
    proc = subprocess.run([sys.executable, str(ROOT / "src_new" / "scripts" / script), *map(str, args)],
                          cwd=ROOT, capture_output=True, text=True, timeout=timeout, env=full_env)
    if check and proc.returncode != 0:
        raise AssertionError(f"{script} failed ({proc.returncode}):\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
    return proc
