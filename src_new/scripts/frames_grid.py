"""A picture of real frames beside generated ones (docs/frames_grid.png of `make frames`):

    python src_new/scripts/frames_grid.py --samples samples/wgan_gp/frames_toy/unconditional \
        --out docs/frames_grid.png --n 16

The real frames are a seeded random choice from the training split of the samples' config (the
manifest's, or --config); the generated ones are the folder's first --n samples.
"""
import argparse
import sys
from pathlib import Path

import _bootstrap  # noqa: F401

import numpy as np

from src_new.datasets.factory import make_dataset
from src_new.pipeline.evaluate import load_config_for
from src_new.utils.grids import save_beside
from src_new.utils.io import load_samples


def build_parser():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--samples", required=True, help="samples folder (written by sample.py) or its samples.npz")
    parser.add_argument("--out", required=True, help="PNG file to write")
    parser.add_argument("--config", help="YAML config or checkpoint .pt for the data (default: the manifest's)")
    parser.add_argument("--n", type=int, default=16, help="pictures per side, 1-256 (default: 16)")
    parser.add_argument("--ncol", type=int, default=4, help="columns per side, 1-64 (default: 4)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the choice of real frames (default: 0)")
    return parser


def main(argv=None):
    parser = build_parser()
    args = parser.parse_args(argv)
    if not 1 <= args.n <= 256:
        parser.error(f"--n {args.n}: use 1 to 256 pictures per side")
    if not 1 <= args.ncol <= 64:
        parser.error(f"--ncol {args.ncol}: use 1 to 64 columns")
    folder = Path(args.samples)
    folder = folder.parent if folder.suffix == ".npz" else folder
    try:
        generated = load_samples(folder)["images"][:args.n]
        cfg = load_config_for(folder, args.config)
        train = make_dataset(cfg["data"], "train", cfg["model"]["image_size"], verbose=False)
    except (ValueError, FileNotFoundError, KeyError) as err:
        sys.exit(f"error: {err}")
    if generated.shape[1:] != tuple(train.images.shape[1:]):
        sys.exit(f"error: the samples are {generated.shape[1:]} but the config's frames are "
                 f"{tuple(train.images.shape[1:])}; pass the --config the samples were made with")
    pick = np.sort(np.random.default_rng(args.seed).choice(len(train), min(args.n, len(train)), replace=False))
    real = train.images_float[pick].numpy()
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    names = list(cfg["data"]["component_dirs"])
    save_beside([(f"real (training frames, {len(real)})", real), (f"generated ({len(generated)})", generated)],
                args.out, names, ncol=args.ncol)
    print(f"wrote {args.out}: {len(real)} real training frames beside {len(generated)} generated from {folder}")


if __name__ == "__main__":
    main()
