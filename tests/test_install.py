"""The package is installed (``make install``: ``pip install -e .``): ``import src_new`` works
from any folder, as in a notebook under notebooks/, and resolves to this checkout."""
import subprocess
import sys

from conftest import ROOT


def test_src_new_imports_from_another_folder(tmp_path):
    # -I: no current folder or PYTHONPATH on sys.path, only the installed packages
    done = subprocess.run([sys.executable, "-I", "-c", "import src_new.models as m; print(m.__file__)"],
                          cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, f"`import src_new` fails outside the repo root; run `make install`:\n{done.stderr}"
    location = done.stdout.strip()
    assert location.startswith(str((ROOT / "src_new").resolve())), \
        f"src_new is installed from {location}, not from this checkout {ROOT}: run `make install` here"
