"""Results files carry their provenance, and the documents' rendered sections match them."""
import json
import subprocess
import sys

import pytest

from conftest import ROOT

sys.path.insert(0, str(ROOT / "bench"))

RESULTS = ROOT / "bench" / "results"
# Written before results carried a provenance block (each names its command in docs/results.md);
# a file leaves this list when the script that writes it is run again.
LEGACY = {"ablation.json", "compare_models.json", "inpaint_curve.json", "inpaint_references.json", "inversion.json",
          "quality.json", "quality_no_mbstd.json", "quality_trajectory.json", "recall_diagnosis.json"}
PROVENANCE_KEYS = {"commit", "dirty", "command", "date", "machine"}


def provenance_blocks(data):
    """A file's provenance blocks: its top-level one, or one per entry (seeds.json); [] if none."""
    if isinstance(data, dict) and "provenance" in data:
        return [data["provenance"]]
    if isinstance(data, dict) and data and all(isinstance(v, dict) and "provenance" in v for v in data.values()):
        return [v["provenance"] for v in data.values()]
    return []


@pytest.mark.parametrize("path", sorted(p.name for p in RESULTS.glob("*.json") if not p.name.endswith("_quick.json")))
def test_every_results_file_has_provenance(path):
    data = json.loads((RESULTS / path).read_text())
    blocks = provenance_blocks(data)
    if path in LEGACY:
        assert not blocks, f"{path} has provenance now: drop it from LEGACY"
        return
    assert blocks, f"{path} has no provenance block"
    for block in blocks:
        assert PROVENANCE_KEYS <= set(block), (path, sorted(block))
        assert block["commit"] and block["machine"]["cpu"] and block["machine"]["torch"]


def test_rendered_documents_match_their_results():
    proc = subprocess.run([sys.executable, str(ROOT / "bench" / "render_docs.py"), "--check"], cwd=ROOT,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr + proc.stdout


def test_render_rewrites_a_stale_section_and_rejects_unknown_ones():
    import render_docs
    text = "intro\n<!-- results:precision -->\nstale figures\n<!-- /results:precision -->\nend\n"
    out = render_docs.render(text)
    assert "stale figures" not in out and "bench/results/precision.json" in out and out.endswith("end\n")
    assert render_docs.render(out) == out                         # rendering is idempotent
    with pytest.raises(ValueError, match="unknown results section 'nope'"):
        render_docs.render("<!-- results:nope -->\n<!-- /results:nope -->\n")


def test_seed_verdicts_need_the_means_apart_beyond_the_standard_errors():
    from seeds import summarize, verdict
    s = summarize([{"fd": 1.0}, {"fd": 2.0}, {"fd": 3.0}])["fd"]
    assert (s["mean"], s["sd"], s["n"]) == (2.0, 1.0, 3)
    base = {"mean": 2.0, "sd": 0.3, "n": 3}
    close = {"mean": 1.7, "sd": 0.3, "n": 3}                     # 0.3 apart < 2 * 0.3 / sqrt(3) = 0.35
    far = {"mean": 1.0, "sd": 0.3, "n": 3}
    assert verdict(base, close, "lower") == "within noise"
    assert verdict(base, far, "lower") == "gain" and verdict(base, far, "higher") == "loss"


def test_collect_results_writes_provenance_and_training_facts(tiny_cfg, tmp_path):
    from collect_results import main as collect
    from src_new.datasets.factory import build_datasets
    from src_new.pipeline.evaluate import evaluate_samples
    from src_new.models.wgan_gp.train import WGANGPTrainer
    from src_new.utils.io import save_component_images, write_json

    run_dir = WGANGPTrainer(tiny_cfg, verbose=False).run()
    folder = tmp_path / "samples" / "conditional"
    test = build_datasets(tiny_cfg, ("test",), verbose=False)["test"]
    save_component_images(test.images_float, folder, tiny_cfg["data"]["component_dirs"], conditions=test.raw_conditions)
    write_json({"model": "wgan_gp", "mode": "conditional", "seed": 3, "options": {}, "config": tiny_cfg},
               folder / "manifest.json")
    evaluate_samples(folder)
    out = tmp_path / "results.json"
    result = collect([str(folder), "--out", str(out), "--run", str(run_dir), "--train_seconds", "12.5"])
    written = json.loads(out.read_text())
    assert written["provenance"]["sampling_seeds"] == [3] and written["provenance"]["training_seeds"] == {
        run_dir.name: tiny_cfg["training"]["seed"]}
    assert written["training"][run_dir.name]["steps"] > 0 and written["training"][run_dir.name]["train_seconds"] == 12.5
    assert written["runs"]["conditional"]["metrics"]["geometric_fd"] == result["runs"]["conditional"]["metrics"]["geometric_fd"]
    with pytest.raises(SystemExit, match="evaluate the folder first"):
        collect([str(tmp_path / "nothing"), "--out", str(out)])
