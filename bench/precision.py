"""Sampling and inpainting of a trained WGAN-GP in fp32 and bf16: time side by side, and how
often the binarized outputs agree for the same latents (and the same inpainting starts).

    python bench/precision.py --checkpoint outputs/wgan_gp/demo/checkpoint_latest.pt
        [--n 800] [--inpaint_n 64] [--repeats 5] [--out bench/results/precision.json]

Sampling: ``--n`` test conditions, one fixed latent each (guidance 0), batch 250, and the same
latents unconditionally (the default mode, its conditions drawn from one seed for both). Inpainting: ``--inpaint_n`` test samples keeping carcass, crown and
sidewall, the config's inpainting options, restarts drawn from one seed. Agreement: the share
of pixels whose value thresholded at 0.5 is the same in both precisions (of generated pixels
for inpainting). Timings: median of ``--repeats`` alternated rounds after a warm-up.
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from src_new.datasets.factory import build_datasets  # noqa: E402
from src_new.models.wgan_gp.sample import load_model_from_checkpoint  # noqa: E402
from src_new.utils.io import write_json  # noqa: E402
from src_new.utils.masks import create_mask  # noqa: E402
from src_new.utils.precision import autocast, bf16_supported  # noqa: E402
from src_new.utils.provenance import provenance  # noqa: E402

PRECISIONS = ("fp32", "bf16")


def side_by_side(fns, repeats):
    """{name: (median seconds, last output)}: one warm-up call each, then alternated rounds."""
    outputs = {name: fn() for name, fn in fns.items()}
    times = {name: [] for name in fns}
    for r in range(repeats):
        for name in (list(fns) if r % 2 == 0 else list(fns)[::-1]):
            start = time.perf_counter()
            outputs[name] = fns[name]()
            times[name].append(time.perf_counter() - start)
    return {name: (statistics.median(t), outputs[name]) for name, t in times.items()}


def agreement(a, b, where=None):
    """Share of pixels with the same value after thresholding at 0.5 (over ``where`` if given)."""
    same = (a > 0.5) == (b > 0.5)
    return float(same[where].float().mean()) if where is not None else float(same.float().mean())


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--checkpoint", required=True)
    p.add_argument("--n", type=int, default=800, help="samples (test conditions) for sampling")
    p.add_argument("--inpaint_n", type=int, default=64, help="test samples for inpainting")
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--out", default="bench/results/precision.json")
    args = p.parse_args(argv)
    torch.set_num_threads(2)
    model, cfg = load_model_from_checkpoint(args.checkpoint)
    test = build_datasets(cfg, ("test",), verbose=False)["test"]
    n = min(args.n, len(test))
    cond = test.conditions[:n]
    z = torch.randn(n, model.latent_dim, generator=torch.Generator().manual_seed(0))

    def sampler(precision, conditional):
        def fn():   # unconditional: the default (marginal) mode, its conditions drawn from one seed
            gen = torch.Generator().manual_seed(1)
            with autocast(precision, "cpu"):
                return torch.cat([model.sample(z=z[i:i + 250], cond=cond[i:i + 250] if conditional else None,
                                               generator=gen) for i in range(0, n, 250)])
        return fn

    result = {"checkpoint": args.checkpoint, "bf16_units": bf16_supported("cpu"), "sampling": {}}
    for kind, conditional in (("conditional", True), ("unconditional", False)):
        timed = side_by_side({pr: sampler(pr, conditional) for pr in PRECISIONS}, args.repeats)
        result["sampling"][kind] = {
            "n": n, **{f"ms_per_image_{pr}": timed[pr][0] / n * 1e3 for pr in PRECISIONS},
            "bf16_speedup": timed["fp32"][0] / timed["bf16"][0],
            "pixel_agreement": agreement(timed["fp32"][1], timed["bf16"][1])}

    names, s = cfg["data"]["component_dirs"], cfg["sampling"]
    keep = [c for c in ("fpu", "group_nc", "group_km") if c in names] or names[:1]
    m = min(args.inpaint_n, len(test))
    truth = test.images_float[:m]
    mask = create_mask(keep, names, m, cfg["model"]["image_size"])
    options = {"num_steps": s["inpaint_steps"], "lr": s["inpaint_lr"], "restarts": s["restarts"],
               "loss": s["inpaint_loss"], "prior_weight": s["inpaint_prior_weight"],
               "lr_schedule": s["inpaint_lr_schedule"], "noise": s["inpaint_noise"]}

    def inpainter(precision):
        def fn():
            with autocast(precision, "cpu"):
                return model.inpaint(truth * mask, mask, cond=test.conditions[:m],
                                     generator=torch.Generator().manual_seed(0), **options)
        return fn

    timed = side_by_side({pr: inpainter(pr) for pr in PRECISIONS}, max(1, args.repeats // 2))
    hidden = mask == 0
    result["inpainting"] = {
        "n": m, "kept": keep, "options": options, **{f"s_per_image_{pr}": timed[pr][0] / m for pr in PRECISIONS},
        "bf16_speedup": timed["fp32"][0] / timed["bf16"][0],
        "pixel_agreement_generated": agreement(timed["fp32"][1], timed["bf16"][1], hidden),
        "iou_vs_truth": {pr: float(((timed[pr][1] > 0.5) & (truth > 0.5))[hidden].sum()
                                   / ((timed[pr][1] > 0.5) | (truth > 0.5))[hidden].sum().clamp_min(1))
                         for pr in PRECISIONS}}
    result["provenance"] = provenance(argv, sampling_seed=0, resolved_config=cfg)
    write_json(result, ROOT / args.out)
    for kind, r in result["sampling"].items():
        print(f"sampling {kind}: {r['ms_per_image_fp32']:.2f} ms/image fp32, {r['ms_per_image_bf16']:.2f} bf16 "
              f"({r['bf16_speedup']:.2f}x); binarized pixels agree {100 * r['pixel_agreement']:.3f}%")
    r = result["inpainting"]
    print(f"inpainting: {r['s_per_image_fp32']:.3f} s/image fp32, {r['s_per_image_bf16']:.3f} bf16 "
          f"({r['bf16_speedup']:.2f}x); generated pixels agree {100 * r['pixel_agreement_generated']:.2f}%; "
          f"IoU of the generated pixels vs truth {r['iou_vs_truth']['fp32']:.3f} / {r['iou_vs_truth']['bf16']:.3f}")
    print(f"wrote {args.out}")
    return result


if __name__ == "__main__":
    main()
