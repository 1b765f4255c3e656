"""Valid pieces without clean-up (issue 31): per checkpoint, the share of raw samples whose each
component has the real number of pieces, and the FD and condition error raw vs after
``--postprocess clean`` (the mid-plane side read from the data). Writes a JSON file; the
checkpoints of one design (runs named ``<design>_s<seed>``) are summarised as mean ± sd.

    python bench/pieces.py --checkpoints outputs/wgan_gp/seeds/shipped_400s_s{0,1,2}/checkpoint_latest.pt \
        outputs/wgan_gp/seeds/euler1_400s_s{0,1,2}/checkpoint_latest.pt --out bench/results/pieces.json

Protocol of bench/ablation.py: one EMA sample per test condition (guidance 0, sampling seed 0),
measured as evaluate.py measures a samples folder (``ablation.measure``); a component's real
piece count is the median over the test images (``evaluate.RealSet.pieces``).
"""
from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from ablation import measure, one_per_condition  # noqa: E402
from seeds import summarize  # noqa: E402
from src_new.datasets.factory import build_datasets  # noqa: E402
from src_new.evaluation import metrics as M  # noqa: E402
from src_new.evaluation.postprocess import clean  # noqa: E402
from src_new.models.wgan_gp.sample import load_model_from_checkpoint  # noqa: E402
from src_new.utils.io import mirror_side, write_json  # noqa: E402
from src_new.utils.provenance import checkpoint_benchmark_args, provenance  # noqa: E402


def design_of(path):
    """``.../<design>_s<seed>/checkpoint_latest.pt`` -> design (the run folder without its seed)."""
    run = Path(path).parent.name
    return re.sub(r"_s\d+$", "", run)


def piece_figures(images, real_pieces, names):
    """{same_pieces_fraction: every component right, same_pieces_<name>: that component right}."""
    conn = M.connectivity(images, real_pieces)
    return {"same_pieces_fraction": conn["same_pieces_fraction"],
            **{f"same_pieces_{n}": float(v) for n, v in zip(names, conn["same_pieces"].mean(0))}}


def summarise(rows):
    """Per design, ``seeds.summarize`` (mean, sd with n - 1, n) of every float figure of its rows."""
    return {design: summarize([{k: v for k, v in r.items() if isinstance(v, float)}
                               for r in rows if r["design"] == design])
            for design in dict.fromkeys(r["design"] for r in rows)}


def main(argv=None):
    args, out_path = checkpoint_benchmark_args(__doc__, "bench/results/pieces.json", argv)
    rows, sets = [], None
    for path in args.checkpoints:
        model, cfg = load_model_from_checkpoint(path)
        if not model.cond_dim:
            raise SystemExit(f"pieces.py draws one sample per test condition: {path} is unconditional")
        names = list(cfg["data"]["component_dirs"])
        sets = sets or build_datasets(cfg, ("train", "test"), verbose=False)
        test = sets["test"]
        raw_cond = test.raw_conditions.numpy()
        images = one_per_condition(model, test.conditions, torch.Generator().manual_seed(0))
        side = mirror_side(test.images_float, cfg["data"].get("mirror", "auto"))
        cleaned = clean(images, mirror=side).astype(np.float32)
        raw_fig, real = measure(images, cfg, sets, raw_cond)
        clean_fig, _ = measure(cleaned, cfg, sets, raw_cond)
        row = {"checkpoint": path, "design": design_of(path), "training_seed": cfg["training"]["seed"],
               "n": len(images), "mirror": side,
               **{f"raw_{k}": v for k, v in {**raw_fig, **piece_figures(images, real.pieces, names)}.items()},
               **{f"clean_{k}": v for k, v in {**clean_fig, **piece_figures(cleaned, real.pieces, names)}.items()}}
        row["fd_raw_over_clean"] = row["raw_fd"] / row["clean_fd"]
        rows.append(row)
        print(json.dumps({k: (round(v, 3) if isinstance(v, float) else v) for k, v in row.items()}), flush=True)
    write_json({"provenance": provenance(argv), "rows": rows, "summary": summarise(rows)}, out_path)


if __name__ == "__main__":
    main()
