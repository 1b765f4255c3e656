"""The shell scripts (make demo / quality, the model comparison) call the Python CLIs with flags
that exist: each script runs with a stand-in interpreter that records its commands, and every
recorded command is parsed by the real script's argument parser."""
import importlib.util
import os
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src_new" / "scripts"))   # the CLIs' `import _bootstrap`
SHELL_SCRIPTS = ["demo.sh", "quality.sh", "compare_models.sh", "frames.sh"]


def load_cli(name, folder=ROOT / "src_new" / "scripts"):
    spec = importlib.util.spec_from_file_location(f"cli_{name}", folder / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def recorded_commands(script, tmp_path):
    log = tmp_path / "commands.log"
    fake = tmp_path / "fake_python"
    fake.write_text(f'#!/usr/bin/env bash\nprintf "%q " "$@" >> {shlex.quote(str(log))}\necho >> {shlex.quote(str(log))}\n')
    fake.chmod(0o755)
    env = dict(os.environ, PYTHON=str(fake), BUDGET="5", RESULTS=str(tmp_path / "results.json"))
    done = subprocess.run(["bash", str(ROOT / "scripts" / script)], env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return [shlex.split(line) for line in log.read_text().splitlines() if line.strip()]


@pytest.mark.parametrize("script", SHELL_SCRIPTS)
def test_shell_script_flags_exist(script, tmp_path):
    commands = recorded_commands(script, tmp_path)
    clis = {name: load_cli(name) for name in ("train", "sample", "evaluate", "make_toy_video", "video_to_frames",
                                              "frames_grid")}
    clis["collect_results"] = load_cli("collect_results", ROOT / "bench")   # writes the results JSON
    used = set()
    for argv in commands:
        name = Path(argv[0]).stem
        assert name in clis, f"{script} runs an unknown script {argv[0]}"
        try:
            clis[name].build_parser().parse_args(argv[1:])
        except SystemExit:
            pytest.fail(f"{script}: {' '.join(argv)} is rejected by {argv[0]}'s parser")
        used.add(name)
    assert {"train", "sample", "evaluate"} <= used, f"{script} should train, sample and evaluate; ran {used}"
