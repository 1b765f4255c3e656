"""Same seed, same numbers: fixed-seed tiny runs of both models through the CLI (train, sample
every mode, evaluate) reproduce the committed statistics of tests/data/behaviour.json.

A refactor must leave them unchanged; an intended change of behaviour rewrites the file with
``python bench/behaviour.py --golden --out tests/data/behaviour.json`` and says why in its
commit. The tolerance (relative 1e-3 on sums over whole tensors) absorbs the summation order of
another CPU's kernels, not a changed computation: those move the figures by far more."""
import json
import math
import sys

import pytest

from conftest import ROOT

sys.path.insert(0, str(ROOT / "bench"))
import behaviour  # noqa: E402

GOLDEN = json.loads((ROOT / behaviour.GOLDEN).read_text())


def close(a, b):
    return math.isclose(a, b, rel_tol=1e-3, abs_tol=1e-4)


@pytest.mark.parametrize("model_type", sorted(behaviour.CONFIGS))
def test_fixed_seed_runs_reproduce_the_committed_figures(model_type, tmp_path):
    result = behaviour.golden({model_type: behaviour.fingerprint(model_type, tmp_path)})[model_type]
    expected = GOLDEN[model_type]
    assert set(result) == set(expected)
    differ = []
    for group in expected:
        assert set(result[group]) == set(expected[group]), group
        for key, want in expected[group].items():
            got = result[group][key]
            pairs = zip(got, want) if isinstance(want, list) else [(got, want)]
            if not all(close(a, b) for a, b in pairs):
                differ.append(f"{group} {key}: {want} -> {got}")
    assert not differ, f"{len(differ)} figures moved:\n" + "\n".join(differ[:20])


def test_the_comparison_sees_a_changed_weight():
    group = next(iter(GOLDEN["wgan_gp"]["checkpoint"]))
    want = GOLDEN["wgan_gp"]["checkpoint"][group]
    assert not all(close(a, b) for a, b in zip([w * 1.01 + 1e-3 for w in want], want))
