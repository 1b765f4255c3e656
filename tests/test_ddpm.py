"""DDPM through the dispatchers: train, resume and sample every mode from the CLI (the model
itself is tested in test_ddpm_model.py)."""
import json

import numpy as np

from conftest import make_cfg, run_script

C, H, W = 5, 64, 32


def test_train_and_sample_through_dispatchers(toy_root, tmp_path):
    cfg = make_cfg(toy_root, tmp_path / "out")
    ddpm = {"model": {"type": "ddpm", "image_size": [64, 32], "dim": 8, "dim_mults": [1, 2], "res_blocks": 1,
                      "timesteps": 50},
            "data": cfg["data"], "paths": cfg["paths"],
            "training": {"epochs": 1, "batch_size": 8, "device": "cpu", "eval_every": 1, "check_every": 1,
                         "ema_update_every": 1, "ema_decay": 0.9},
            "sampling": {"ddim_steps": 3, "inpaint_steps": 3, "num_samples": 4, "batch_sz": 4}}
    path = tmp_path / "ddpm.yaml"
    path.write_text(__import__("yaml").safe_dump(ddpm))
    run_script("train.py", "--model", "ddpm", "--config", path, "--run_name", "d")
    run_dir = tmp_path / "out" / "d"
    assert (run_dir / "checkpoint_1.pt").exists() and (run_dir / "samples_epoch_0001.png").exists()
    run_script("train.py", "--resume", run_dir / "checkpoint_latest.pt", "--epochs", 2)
    ckpt = run_dir / "checkpoint_latest.pt"
    for mode, extra in (("unconditional", []), ("conditional", ["--guidance_scale", 2]),
                        ("inpainting", ["--components", "fpu"])):
        out = tmp_path / "s" / mode
        run_script("sample.py", "--checkpoint", ckpt, "--mode", mode, "--out", out, *extra)
        manifest = json.loads((out / "manifest.json").read_text())
        assert manifest["model"] == "ddpm" and manifest["model_options"]
        assert np.load(out / "samples.npz")["images"].shape == (4, C, H, W)
        if mode == "inpainting":      # the manifest records what was applied, not WGAN-GP-only options
            assert manifest["model_options"] == {"resample": 1} and manifest["options"]["inpaint_steps"] == 3
            assert not {"restarts", "inpaint_lr", "inpaint_loss"} & set(manifest["options"])
            assert manifest["not_applied"] == {}      # the DDPM's config has no latent-optimisation options
            assert (out / "triplets.png").is_file()   # given | completed | truth, as for the WGAN-GP
        if mode == "conditional":
            assert manifest["model_options"] == {"sampler": "ddim", "steps": 3, "eta": 1.0}
    proc = run_script("sample.py", "--checkpoint", ckpt, "--mode", "inpainting", "--components", "fpu",
                      "--restarts", 3, "--out", tmp_path / "r", check=False)
    assert proc.returncode != 0 and "--restarts does not apply to GaussianDiffusion inpainting" in proc.stderr
    # K draws per condition -> the within-condition diversity; the first draw of each feeds the rest
    out = tmp_path / "s" / "per_condition"
    run_script("sample.py", "--checkpoint", ckpt, "--mode", "conditional", "--per_condition", 2,
               "--num_samples", 8, "--guidance_scale", 0, "--out", out)
    data = np.load(out / "samples.npz")
    assert data["condition_index"].tolist() == [0, 0, 1, 1, 2, 2, 3, 3]
    assert np.array_equal(data["conditions"][0], data["conditions"][1])
    assert json.loads((out / "manifest.json").read_text())["per_condition"] == 2
    from src_new.pipeline.evaluate import evaluate_samples
    result = evaluate_samples(out, references=False, write=False)
    m = result["metrics"]
    assert m["n"] == 4 and m["within_condition_diversity"] > 0 and m["within_condition_diversity_real"] > 0
    assert m["within_condition_diversity_ratio"] == m["within_condition_diversity"] / m["within_condition_diversity_real"]
    assert result["details"]["within_condition"]["draws_per_condition"] == 2
    assert any("first of the 2 draws" in n for n in result["notes"])
    proc = run_script("sample.py", "--checkpoint", ckpt, "--mode", "interpolate", "--out", tmp_path / "x", check=False)
    assert proc.returncode != 0 and "not available for model 'ddpm'" in proc.stderr
    proc = run_script("train.py", "--model", "wgan_gp", "--config", path, check=False)
    assert proc.returncode != 0 and "is a 'ddpm' config" in proc.stderr
