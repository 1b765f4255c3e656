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


@pytest.mark.parametrize("args, message", [
    (["--height", "0"], "the shapes need at least 16 x 8 pixels"),
    (["--test_fraction", "1.5"], "--test_fraction 1.5: use a share in (0, 1)"),
    (["--n", "1"], "--n must be in [2, 10000000]"),
])
def test_make_toy_data_arguments_are_checked(tmp_path, args, message):
    proc = run_script("make_toy_data.py", "--out", tmp_path / "d", "--n", "10", *args, check=False)
    assert proc.returncode != 0 and message in proc.stderr and "Traceback" not in proc.stderr
    assert not (tmp_path / "d").exists()


def test_make_toy_data_refuses_a_file_as_output_folder(tmp_path):
    target = tmp_path / "a_file"
    target.write_text("keep me")
    proc = run_script("make_toy_data.py", "--out", target, "--n", "10", check=False)
    assert proc.returncode != 0 and "is a file" in proc.stderr and target.read_text() == "keep me"


def test_an_image_whose_header_is_huge_is_refused_undecoded(tmp_path):
    """A PNG announcing 30000 x 30000 pixels (a tiny file) is refused from its header, in our
    words, for masks and for pictures."""
    import struct
    import zlib

    from src_new.datasets.image_folder import read_image
    from src_new.datasets.multicomponent import read_png

    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    for side, message in ((30000, "far above 50,000,000 pixels"), (8000, "announces 8000 x 8000 pixels")):
        path = tmp_path / f"bomb{side}.png"
        path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", side, side, 8, 0, 0, 0, 0))
                         + chunk(b"IDAT", zlib.compress(b"\x00" * 10)) + chunk(b"IEND", b""))
        with pytest.raises(ValueError, match=message):
            read_png(path, (64, 32))
        with pytest.raises(ValueError, match=message):
            read_image(path, (64, 32), 3)
