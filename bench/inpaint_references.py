"""Model-free inpainting references on the preserved sets of bench/inpaint_curve.py: IoU on the
generated components of the nearest train sample (k = 1, the baseline evaluate.py reports) and of
the pixelwise majority of the k nearest (k > 1). The majority averages over what the kept
components leave undetermined, so it shows how much of the hidden part is predictable at all;
writes a JSON file.

    python bench/inpaint_references.py --config configs/wgan_gp_toy.yaml \
        --out bench/results/inpaint_references.json
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from inpaint_curve import PRESERVED  # noqa: E402
from src_new.datasets.multicomponent import build_datasets  # noqa: E402
from src_new.evaluation.evaluate import inpainting_metrics, nearest_train_inpainting  # noqa: E402
from src_new.utils.config import auto_complete_config, load_config, validate_config  # noqa: E402
from src_new.utils.masks import create_mask  # noqa: E402


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--config", default="configs/wgan_gp_toy.yaml")
    p.add_argument("--n", type=int, default=160, help="the first n test samples (as inpaint_curve.py)")
    p.add_argument("--k", default="1,3,10,30", help="neighbour counts, comma-separated")
    p.add_argument("--out", default="bench/results/inpaint_references.json")
    args = p.parse_args()
    cfg = validate_config(auto_complete_config(load_config(args.config), verbose=False))
    names = cfg["data"]["component_dirs"]
    sets = build_datasets(cfg, ("train", "test"), verbose=False)
    truth = sets["test"].images_float[: args.n].numpy()
    train = sets["train"].images_float.numpy()
    rows = []
    for keep in PRESERVED:
        mask = create_mask(list(keep), names, len(truth), cfg["model"]["image_size"]).numpy()
        for k in map(int, args.k.split(",")):
            out = nearest_train_inpainting(truth, mask, train, k=k)
            row = {"preserved": list(keep), "k": k,
                   "iou_generated": inpainting_metrics(out, truth, mask, names)["iou_generated"]}
            rows.append(row)
            print(json.dumps(row))
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"config": args.config, "n": len(truth), "train_size": len(train), "rows": rows}, indent=1))


if __name__ == "__main__":
    main()
