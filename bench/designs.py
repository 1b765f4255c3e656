"""The command line shared by the benchmarks that compare designs of one config
(bench/autoencoder.py, bench/step_time.py): each ``--design`` is a name and config overrides."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from src_new.pipeline.config import apply_overrides, auto_complete_config, load_config, validate_config  # noqa: E402


def design_parser(doc, default_out):
    """A parser with ``--config``, ``--design NAME [KEY=VALUE ...]`` (repeatable), ``--out`` and
    ``--overwrite``; the benchmark adds its own options."""
    p = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--config", default="configs/wgan_gp_toy.yaml")
    p.add_argument("--design", nargs="+", action="append", required=True, metavar=("NAME", "KEY=VALUE"),
                   help="a design: its name, then config overrides (section.key=value); repeat per design")
    p.add_argument("--out", default=default_out)
    p.add_argument("--overwrite", action="store_true", help="replace an existing --out")
    return p


def design_config(config, overrides):
    """The resolved config of a design: ``config`` (a path or name) with its ``overrides``."""
    return validate_config(auto_complete_config(apply_overrides(load_config(config), overrides), verbose=False))
