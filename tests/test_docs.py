"""The README stays true: every config key is documented, the quick start commands exist."""
import re

from src_new.pipeline.config import MODEL_SCHEMA, SCHEMA

from conftest import ROOT


def test_every_config_key_is_in_the_readme():
    readme = (ROOT / "README.md").read_text()
    keys = {f"{s}.{k}" for s, ks in SCHEMA.items() for k in ks}
    keys |= {f"{s}.{k}" for schema in MODEL_SCHEMA.values() for s, ks in schema.items() for k in ks}
    missing = sorted(k for k in keys if f"`{k}`" not in readme)
    assert not missing, f"README config reference lacks {missing}"


def test_quick_start_targets_exist():
    readme = (ROOT / "README.md").read_text()
    makefile = (ROOT / "Makefile").read_text()
    for target in re.findall(r"^make (\w+)", readme, flags=re.M):
        assert re.search(rf"^{target}:", makefile, flags=re.M), target
    assert "make test" in (ROOT / ".ci" / "run").read_text()


def test_results_files_cited_by_the_docs_exist():
    """Every figure cites a committed results file: each bench/results/*.json the README or
    docs/results.md names is in the repository."""
    cited = set()
    for doc in ("README.md", "docs/results.md"):
        cited |= set(re.findall(r"bench/results/[\w.-]+\.json", (ROOT / doc).read_text()))
    cited = {c for c in cited if not c.endswith("_quick.json")}
    assert cited, "the docs cite no results file"
    missing = sorted(c for c in cited if not (ROOT / c).is_file())
    assert not missing, f"cited but not committed: {missing}"
