"""notebooks/wgan_gp_quickstart.ipynb is committed without outputs and runs top to bottom in a
real Jupyter kernel (nbclient + ipykernel) against a tiny checkpoint trained here."""
import os

import nbformat
import pytest

from src_new.models.wgan_gp.train import WGANGPTrainer

from conftest import ROOT, make_cfg

NOTEBOOK = ROOT / "notebooks" / "wgan_gp_quickstart.ipynb"


def test_notebook_is_saved_without_outputs():
    nb = nbformat.read(NOTEBOOK, as_version=4)
    nbformat.validate(nb)
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert code and all(c.outputs == [] and c.execution_count is None for c in code), \
        "clear the outputs before committing (Jupyter: Edit > Clear outputs of all cells)"


def execute(tmp_path, monkeypatch, **params):
    """Run the notebook in a fresh kernel with QUICKSTART_<NAME> parameters -> all outputs as text
    and the number of pictures."""
    from nbclient import NotebookClient
    from nbclient.exceptions import CellExecutionError

    # The kernel imports this checkout (whatever another clone installed last).
    monkeypatch.setenv("PYTHONPATH", str(ROOT))
    monkeypatch.setenv("JUPYTER_RUNTIME_DIR", str(tmp_path / "runtime"))
    monkeypatch.setenv("OMP_NUM_THREADS", os.environ.get("OMP_NUM_THREADS", "2"))
    for name, value in params.items():
        monkeypatch.setenv(f"QUICKSTART_{name.upper()}", str(value))
    nb = nbformat.read(NOTEBOOK, as_version=4)
    client = NotebookClient(nb, timeout=120, kernel_name="python3",
                            resources={"metadata": {"path": str(NOTEBOOK.parent)}})
    try:
        client.execute()
    except CellExecutionError as err:
        pytest.fail(f"a notebook cell failed:\n{str(err)[-3000:]}")
    outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs]
    text = "\n".join(o.get("text", "") + str(o.get("data", {}).get("text/plain", "")) for o in outputs)
    return text, sum("image/png" in o.get("data", {}) for o in outputs)


def check_outputs(text, images):
    assert f"src_new from {ROOT}" in text
    assert "kept pixels unchanged: max |diff| = 0.0" in text                      # inpainting keeps them
    assert images >= 8                                                            # grids and the curves
    assert "geometric_fd" in text and "condition_mae" in text                     # the evaluation table


def test_notebook_runs_on_a_tiny_checkpoint(toy_root, tmp_path, monkeypatch):
    run_dir = WGANGPTrainer(make_cfg(toy_root, tmp_path / "outputs"), verbose=False).run()
    text, images = execute(tmp_path, monkeypatch, checkpoint=run_dir / "checkpoint_latest.pt", data=toy_root,
                           n_eval=16)
    assert str(run_dir / "checkpoint_latest.pt") in text and "32 train / 8 test samples" in text
    check_outputs(text, images)


def test_notebook_trains_its_own_model_without_a_checkpoint(tmp_path, monkeypatch):
    monkeypatch.delenv("QUICKSTART_CHECKPOINT", raising=False)
    text, images = execute(tmp_path, monkeypatch, tiny_samples=40, tiny_epochs=1, n_eval=16)
    assert "wgan_quickstart_" in text and "32 train / 8 test samples" in text
    check_outputs(text, images)
