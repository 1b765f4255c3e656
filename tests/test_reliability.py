"""Crash safety, interrupts, untrusted files and bad inputs: each protection has a test
that fails when the protection is removed."""
import errno
import os
import pickle
import signal
import subprocess
import sys
import time

import pytest
import torch

from src_new.utils.checkpoint import load_checkpoint, save_checkpoint

from conftest import ROOT, make_cfg, run_script, write_yaml


def start_training(cfg_path, *extra):
    return subprocess.Popen([sys.executable, str(ROOT / "src_new/scripts/train.py"), "--config", str(cfg_path),
                             *map(str, extra)], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env=dict(os.environ, PYTHONUNBUFFERED="1"))


def wait_for(predicate, timeout=120):
    end = time.time() + timeout
    while time.time() < end:
        if predicate():
            return True
        time.sleep(0.05)
    return False


def test_sigkill_at_random_moments_then_resume(toy_root, tmp_path):
    """Kill -9 at several moments (checkpoints are written every epoch, so some kills land
    during a write); the latest checkpoint must always load and training must resume."""
    cfg = make_cfg(toy_root, tmp_path / "out", training={"epochs": 200, "check_every": 1, "eval_every": 50})
    cfg_path = write_yaml(cfg, tmp_path / "c.yaml")
    run_dir = tmp_path / "out" / "kill"
    latest = run_dir / "checkpoint_latest.pt"
    proc = start_training(cfg_path, "--run_name", "kill")
    assert wait_for(latest.exists), proc.communicate()
    epochs_seen = []
    for delay in (0.0, 0.13, 0.37, 0.71):
        time.sleep(delay)
        proc.kill()
        proc.wait()
        ckpt = load_checkpoint(latest)                      # never truncated
        epochs_seen.append(ckpt["epoch"])
        assert not list(run_dir.glob("checkpoint_*.pt.*"))  # nothing half-renamed
        killed = proc.pid
        proc = start_training(cfg_path, "--resume", latest)
        assert wait_for(lambda: load_checkpoint(latest)["epoch"] > epochs_seen[-1]), proc.communicate()
        assert not list(run_dir.glob(f".*.tmp{killed}"))    # the killed writer's temp file was cleaned
    proc.kill()
    proc.wait()
    assert epochs_seen == sorted(epochs_seen)


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_interrupt_saves_and_explains_resume(toy_root, tmp_path, sig):
    cfg = make_cfg(toy_root, tmp_path / "out", training={"epochs": 200, "check_every": 100, "eval_every": 100})
    cfg_path = write_yaml(cfg, tmp_path / "c.yaml")
    log = tmp_path / "out" / "int" / "losses.csv"
    proc = start_training(cfg_path, "--run_name", "int")
    assert wait_for(lambda: log.exists() and len(log.read_text().splitlines()) > 3)
    proc.send_signal(sig)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert "Resume with: python src_new/scripts/train.py --resume" in err
    ckpt = load_checkpoint(tmp_path / "out" / "int" / "checkpoint_latest.pt")
    assert ckpt["global_step"] >= 3


def test_crash_during_checkpoint_save_keeps_previous(tmp_path, monkeypatch):
    path = tmp_path / "checkpoint_latest.pt"
    save_checkpoint({"epoch": 1, "w": torch.ones(3)}, path)

    def crash(obj, f, *a, **k):
        f.write(b"partial bytes")
        raise OSError(errno.ENOSPC, "No space left on device")   # disk full mid-write
    monkeypatch.setattr(torch, "save", crash)
    with pytest.raises(OSError, match="No space left"):
        save_checkpoint({"epoch": 2, "w": torch.zeros(3)}, path)
    monkeypatch.undo()
    assert load_checkpoint(path)["epoch"] == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["checkpoint_latest.pt"]   # no temp left


def test_disk_full_during_training_keeps_last_checkpoint(toy_root, tmp_path, monkeypatch):
    from src_new.models.wgan_gp.train import WGANGPTrainer
    trainer = WGANGPTrainer(make_cfg(toy_root, tmp_path, training={"epochs": 2}), verbose=False)
    real_save = torch.save
    calls = []

    def flaky(obj, f, *a, **k):
        calls.append(1)
        if len(calls) > 2:        # epoch 1 writes two files; epoch 2's first write fails
            f.write(b"xx")
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_save(obj, f, *a, **k)
    monkeypatch.setattr(torch, "save", flaky)
    with pytest.raises(OSError, match="No space left on device"):
        trainer.run()
    monkeypatch.undo()
    assert load_checkpoint(trainer.run_dir / "checkpoint_latest.pt")["epoch"] == 1


class Payload:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_pickle_payload_checkpoint_is_refused(tmp_path):
    marker = tmp_path / "pwned"
    evil = tmp_path / "evil.pt"
    with open(evil, "wb") as f:
        pickle.dump({"config": {"model": {"type": "wgan_gp"}}, "x": Payload(marker)}, f)
    with pytest.raises(ValueError, match="refused to load"):
        load_checkpoint(evil)
    proc = run_script("sample.py", "--checkpoint", evil, "--out", tmp_path / "s", check=False)
    assert proc.returncode != 0 and "refused to load" in proc.stderr
    assert not marker.exists()


def test_checkpoint_of_other_model_type_or_shape(toy_root, tmp_path):
    from src_new.models.wgan_gp.sample import load_model_from_checkpoint
    from src_new.models.wgan_gp.train import WGANGPTrainer
    run_dir = WGANGPTrainer(make_cfg(toy_root, tmp_path), verbose=False).run()
    ckpt = load_checkpoint(run_dir / "checkpoint_latest.pt")
    other = dict(ckpt, config={**ckpt["config"], "model": {**ckpt["config"]["model"], "type": "ddpm"}})
    with pytest.raises(ValueError, match="checkpoint is for model type 'ddpm', not 'wgan_gp'"):
        load_model_from_checkpoint("x.pt", ckpt=other)
    wider = dict(ckpt, config={**ckpt["config"], "model": {**ckpt["config"]["model"], "dim": 16}})
    with pytest.raises(ValueError, match=r"generator tensor '.*' has shape .* in the checkpoint but .* in the model"):
        load_model_from_checkpoint("x.pt", ckpt=wider)
    save_checkpoint(other, tmp_path / "other.pt")
    proc = run_script("sample.py", "--model", "wgan_gp", "--checkpoint", tmp_path / "other.pt", check=False)
    assert proc.returncode != 0 and "'ddpm' checkpoint" in proc.stderr


def test_truncated_checkpoint_is_reported(tmp_path):
    path = tmp_path / "c.pt"
    save_checkpoint({"a": torch.ones(1000)}, path)
    path.write_bytes(path.read_bytes()[:100])
    with pytest.raises(ValueError, match="not a readable checkpoint"):
        load_checkpoint(path)


@pytest.fixture(scope="module")
def trained_ckpt(tmp_path_factory, toy_root):
    from src_new.models.wgan_gp.train import WGANGPTrainer
    out = tmp_path_factory.mktemp("ckpt")
    return WGANGPTrainer(make_cfg(toy_root, out), verbose=False).run() / "checkpoint_latest.pt"


@pytest.mark.parametrize("args, message", [
    (["--mode", "inpainting", "--components", "tread"], "unknown component(s) ['tread']; valid components"),
    (["--mode", "conditional", "--cond", "24"], "--cond '24': expected 2 finite values (width_px, height_px)"),
    (["--mode", "conditional", "--cond", "24,wide"], "--cond '24,wide': values must be numbers"),
    (["--mode", "conditional", "--cond_csv", "/no/such.csv"], "No such file"),
])
def test_bad_sampling_arguments(trained_ckpt, tmp_path, args, message):
    proc = run_script("sample.py", "--checkpoint", trained_ckpt, "--out", tmp_path / "s", *args, check=False)
    assert proc.returncode != 0 and message in proc.stderr, proc.stderr
    assert not (tmp_path / "s" / "samples.npz").exists()


def test_unwritable_output_folder(trained_ckpt, tmp_path):
    blocker = tmp_path / "a_file"
    blocker.write_text("not a folder")
    proc = run_script("sample.py", "--checkpoint", trained_ckpt, "--out", blocker / "sub", check=False)
    assert proc.returncode != 0 and "is not writable" in proc.stderr


def test_overwrite_flag_replaces(trained_ckpt, tmp_path):
    out = tmp_path / "s"
    run_script("sample.py", "--checkpoint", trained_ckpt, "--mode", "unconditional", "--num_samples", 2, "--out", out)
    proc = run_script("sample.py", "--checkpoint", trained_ckpt, "--mode", "unconditional", "--num_samples", 2,
                      "--out", out, check=False)
    assert proc.returncode != 0 and "already exists" in proc.stderr
    run_script("sample.py", "--checkpoint", trained_ckpt, "--mode", "unconditional", "--num_samples", 3,
               "--out", out, "--overwrite")
