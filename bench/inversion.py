"""WGAN-GP inversion quality: IoU of G(E(x)) against x on the test split, for full inputs and
for the partial inputs of the three preserved sets, one row per checkpoint; writes JSON.

    python bench/inversion.py --checkpoints outputs/wgan_gp/quality/checkpoint_100.pt \
        outputs/wgan_gp/quality/checkpoint_latest.pt --out bench/results/inversion.json --overwrite

No latent optimization: the encoder's latent alone, decoded by the EMA generator with the test
condition. IoU per sample and component (``metrics.iou_dice``), averaged over every component
(full input) or over the hidden components only (partial input: the encoder sees the preserved
components and the mask, the generated ones are compared with the truth).
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from inpaint_curve import PRESERVED  # noqa: E402  (the preserved sets of make quality)
from src_new.datasets.factory import build_datasets  # noqa: E402
from src_new.evaluation.metrics import iou_dice  # noqa: E402
from src_new.models.wgan_gp.sample import load_model_from_checkpoint  # noqa: E402
from src_new.utils.checkpoint import load_checkpoint  # noqa: E402
from src_new.utils.io import write_json  # noqa: E402
from src_new.utils.masks import create_mask  # noqa: E402
from src_new.utils.provenance import checkpoint_benchmark_args, provenance  # noqa: E402


@torch.no_grad()
def inversion_iou(model, truth, mask, cond):
    """Mean IoU of G(E(x * mask, mask, c), c) vs x over the components the mask hides (all
    components when the mask keeps everything)."""
    recon = model.sampling_generator(model.encoder(truth * mask, mask, cond), cond)
    iou, _ = iou_dice(recon, truth)
    hidden = mask[:, :, 0, 0] == 0
    scored = hidden if hidden.any() else torch.ones_like(hidden)
    return float(torch.as_tensor(iou)[scored].mean())


def main(argv=None):
    args, out_path = checkpoint_benchmark_args(__doc__, "bench/results/inversion.json", argv)
    rows = []
    for path in args.checkpoints:
        ckpt = load_checkpoint(path)
        model, cfg = load_model_from_checkpoint(path, ckpt=ckpt)
        names = cfg["data"]["component_dirs"]
        test = build_datasets(cfg, ("test",), verbose=False)["test"]
        truth, cond = test.images_float, (test.conditions if model.cond_dim else None)
        row = {"checkpoint": path, "global_step": ckpt["global_step"], "training_seed": cfg["training"]["seed"],
               "phase": (ckpt.get("phase") or {}).get("name"), "n": len(truth),
               "full": inversion_iou(model, truth, torch.ones_like(truth), cond)}
        for keep in PRESERVED:
            mask = create_mask(list(keep), names, len(truth), model.image_size)
            row["keep_" + "+".join(keep)] = inversion_iou(model, truth, mask, cond)
        rows.append(row)
        print(json.dumps(row))
    write_json({"provenance": provenance(argv), "rows": rows}, out_path)


if __name__ == "__main__":
    main()
