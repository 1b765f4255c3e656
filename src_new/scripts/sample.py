"""Sample from a trained model (the model type is read from the checkpoint):

    python src_new/scripts/sample.py --checkpoint outputs/wgan_gp/<run>/checkpoint_latest.pt \
        --mode conditional --guidance_scale 2.0
    python src_new/scripts/sample.py --checkpoint ... --mode inpainting --components fpu group_nc
    python src_new/scripts/sample.py --checkpoint ... --mode conditional --cond 24,48 --cond 20,40
"""
import argparse
import sys

import _bootstrap  # noqa: F401

from src_new.models import available_models, get_entry
from src_new.utils.checkpoint import load_checkpoint
from src_new.pipeline.sampling import add_sampling_args


def build_parser():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", help=f"model type, one of {available_models()} (default: read from the checkpoint)")
    add_sampling_args(parser)
    return parser


def main(argv=None):
    args = build_parser().parse_args(argv)
    try:
        ckpt = load_checkpoint(args.checkpoint)
        found = (ckpt.get("config") or {}).get("model", {}).get("type") if isinstance(ckpt, dict) else None
        if found is None:
            raise ValueError(f"{args.checkpoint}: no config.model.type inside; not a checkpoint of this project")
        if args.model is not None and args.model != found:
            raise ValueError(f"--model {args.model} but {args.checkpoint} is a '{found}' checkpoint "
                             f"(omit --model to infer it)")
        entry = get_entry(found, "sample")
        entry.main(args, ckpt=ckpt)
    except (ValueError, FileNotFoundError, FileExistsError, PermissionError) as err:
        sys.exit(f"error: {err}")


if __name__ == "__main__":
    main()
