"""Numbers checked at the edge: sampling flags meet the schema's types and ranges, and a
requested condition far outside the training data is refused, in one line, before any work."""
import pytest

from conftest import make_cfg, run_script


@pytest.fixture(scope="module")
def checkpoint(toy_root, tmp_path_factory):
    from src_new.models.wgan_gp.train import WGANGPTrainer

    cfg = make_cfg(toy_root, tmp_path_factory.mktemp("numbers"), training={"epochs": 1, "run_name": "n"})
    return WGANGPTrainer(cfg, verbose=False).run() / "checkpoint_latest.pt"


@pytest.mark.parametrize("args, message", [
    (["--mode", "conditional", "--guidance_scale", "nan"], "--guidance_scale nan: expected a finite number"),
    (["--mode", "conditional", "--per_condition", "0"], "--per_condition 0: expected a whole number >= 1"),
    (["--num_samples", "100000000000"], "--num_samples 100000000000: expected a whole number in [1, 10000000]"),
    (["--truncation_psi", "2"], "--truncation_psi 2.0: expected a finite number in [0, 1]"),
    (["--mode", "inpainting", "--components", "fpu", "--restarts", "0"], "--restarts 0: expected a whole number >= 1"),
    (["--mode", "conditional", "--cond", "1e30,1e30"], "more than 20 standard deviations from the training conditions"),
])
def test_sampling_numbers_are_checked(checkpoint, tmp_path, args, message):
    out = tmp_path / "s"
    proc = run_script("sample.py", "--checkpoint", checkpoint, "--out", out, *args, check=False)
    assert proc.returncode != 0 and message in proc.stderr, proc.stderr
    assert "Traceback" not in proc.stderr and not (out / "samples.npz").exists()
