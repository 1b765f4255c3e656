"""WGAN-GP inpainting: IoU on the generated components vs time per image, over restarts,
steps, the loss and the precision, against the nearest-train-sample baseline; writes a JSON file.

    python bench/inpaint_curve.py --checkpoint outputs/wgan_gp/quality/checkpoint_latest.pt \
        --out bench/results/inpaint_curve.json --overwrite

Each setting inpaints the same ``--n`` test samples (the first n of the test split, with their
conditions) for each preserved set; time per image is wall clock over the whole batch on this
machine (2 threads). The first setting runs once untimed as a warm-up.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from src_new.datasets.factory import build_datasets  # noqa: E402
from src_new.pipeline.evaluate import inpainting_metrics, nearest_train_inpainting  # noqa: E402
from src_new.models.wgan_gp.sample import load_model_from_checkpoint  # noqa: E402
from src_new.utils.checkpoint import load_checkpoint  # noqa: E402
from src_new.utils.io import write_json  # noqa: E402
from src_new.utils.masks import create_mask  # noqa: E402
from src_new.utils.precision import autocast, resolve_precision  # noqa: E402
from src_new.utils.provenance import provenance, results_path  # noqa: E402

PRESERVED = (("fpu", "group_nc", "group_km"), ("group_nc", "bt", "tpc"), ("tpc",))


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--checkpoint", required=True)
    p.add_argument("--n", type=int, default=160)
    p.add_argument("--settings", default="bce:8:50,bce:8:100,bce:16:100,bce:1:100,mse:1:100,mse:2:100,bce:0:0",
                   help="loss:restarts:steps[:precision],... (steps 0 = the encoder's latent alone; precision "
                        "fp32 (default) or bf16, as sample.py --precision)")
    p.add_argument("--lr", type=float, default=None, help="default: the checkpoint config's inpaint_lr")
    p.add_argument("--out", default="bench/results/inpaint_curve.json")
    p.add_argument("--overwrite", action="store_true", help="replace an existing --out")
    args = p.parse_args(argv)
    out_path = results_path(p, Path(args.out), args.overwrite)
    torch.set_num_threads(2)
    ckpt = load_checkpoint(args.checkpoint)
    model, cfg = load_model_from_checkpoint(args.checkpoint, ckpt=ckpt)
    lr = args.lr if args.lr is not None else cfg["sampling"]["inpaint_lr"]
    names = cfg["data"]["component_dirs"]
    sets = build_datasets(cfg, ("train", "test"), verbose=False)
    truth = sets["test"].images_float[: args.n]
    cond = sets["test"].conditions[: args.n] if model.cond_dim else None
    train = sets["train"].images_float.numpy()
    rows = []
    for keep in PRESERVED:
        mask = create_mask(list(keep), names, len(truth), model.image_size)
        base = nearest_train_inpainting(truth.numpy(), mask.numpy(), train)
        baseline = inpainting_metrics(base, truth.numpy(), mask.numpy(), names)["iou_generated"]
        for i, setting in enumerate(args.settings.split(",")):
            loss, restarts, steps, *precision = setting.split(":")
            precision = resolve_precision(precision[0] if precision else "fp32", "cpu", f"setting {setting}")
            kw = dict(num_steps=int(steps), lr=lr, cond=cond, restarts=max(int(restarts), 1), loss=loss,
                      generator=torch.Generator().manual_seed(0))
            if i == 0 and keep == PRESERVED[0]:
                with autocast(precision, "cpu"):
                    model.inpaint(truth[:16] * mask[:16], mask[:16], **{**kw, "cond": None if cond is None else cond[:16]})
            start = time.perf_counter()
            with autocast(precision, "cpu"):
                out = model.inpaint(truth * mask, mask, **kw).float()
            seconds = (time.perf_counter() - start) / len(truth)
            m = inpainting_metrics(out.numpy(), truth.numpy(), mask.numpy(), names)
            row = {"preserved": list(keep), "loss": loss, "restarts": int(restarts), "steps": int(steps), "lr": lr,
                   "precision": precision,
                   "iou_generated": m["iou_generated"], "nearest_train_iou": baseline,
                   "seconds_per_image": seconds, "preserved_max_abs_diff": m["preserved_max_abs_diff"]}
            rows.append(row)
            print(json.dumps(row))
    write_json({"provenance": provenance(argv, sampling_seed=0, training_seed=cfg["training"]["seed"],
                                         global_step=ckpt["global_step"]),
                "checkpoint": args.checkpoint, "n": len(truth), "rows": rows}, out_path)


if __name__ == "__main__":
    main()
