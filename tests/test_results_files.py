"""Results files carry their provenance, the documents' rendered sections match them, and no measured
figure of the documents lives outside those sections."""
import json
import re
import subprocess
import sys

import pytest

from conftest import ROOT

sys.path.insert(0, str(ROOT / "bench"))

RESULTS = ROOT / "bench" / "results"
# Written before results carried a provenance block (each names its command in docs/results.md);
# a file leaves this list when the script that writes it is run again.
LEGACY = {"ablation.json", "inpaint_curve.json", "inversion.json",
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


from render_docs import DOCUMENTS, MARKER  # noqa: E402  (bench/ is on the path above)

# A measured figure in a document sits in a rendered section, written from its results file. Outside
# them, what reads as a measurement: a decimal number (also inside a size such as 11.84M), or a
# number with a time unit, a percent sign or an "x". Code (fenced blocks and `inline`) is skipped:
# commands and settings are written as code (`--guidance_scale 1.5`, `COLLAPSE_RATIO = 0.3`).
MEASUREMENT = re.compile(r"(?<![\w.])\d+\.\d+|\b\d+(?:\.\d+)?(?: ?(?:ms|s|min|minutes|hours?)\b|%|x\b)")
CODE = re.compile(r"```.*?```|`[^`]*`", re.S)            # inline code may wrap a line, as in Markdown
# The prose numbers that are not measurements, each with its reason; a phrase here is skipped
# wherever it appears, so keep each one long enough to say what it is.
NOT_MEASUREMENTS = {
    # README, "The WGAN-GP": the generator's size at the default config, a count of its weights.
    "11.84M parameters",
    # README, "Data": the threshold that defines width_px / height_px (measure_dimensions), a setting.
    "thresholded at 0.5",
}


def unrendered_measurements(text):
    """(line, figure) for each measurement-like number of ``text`` outside its rendered sections,
    its code and the NOT_MEASUREMENTS phrases."""
    prose = CODE.sub("", MARKER.sub("", text))
    for phrase in NOT_MEASUREMENTS:
        prose = prose.replace(phrase, "")
    return [(line.strip(), m.group()) for line in prose.splitlines() for m in MEASUREMENT.finditer(line)]


def test_the_measurement_scan_finds_a_stray_figure():
    doc = ("FD 1.51 in prose, 12 s, 3 % no, 7%, 2x, 64x32 no, 0.5 GB as 38.5M\n"
           "<!-- results:precision -->\nFD 2.25, 9 ms\n<!-- /results:precision -->\n"
           "`--inpaint_lr 0.05` and\n```bash\npython x.py --budget 400 s 0.3\n```\n11.84M parameters\n")
    assert [m for _, m in unrendered_measurements(doc)] == ["1.51", "12 s", "7%", "2x", "0.5", "38.5"]


@pytest.mark.parametrize("doc", DOCUMENTS)
def test_documents_hold_no_unrendered_measurements(doc):
    """Every measured figure of the documents is rendered from a results file (issue #25): a
    number outside the rendered sections goes into one, or the prose points at the table."""
    stray = unrendered_measurements((ROOT / doc).read_text())
    assert not stray, f"{doc}: measured figures outside rendered sections: " + "; ".join(
        f"{figure!r} in {line[:100]!r}" for line, figure in stray)


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
