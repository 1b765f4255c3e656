"""Train a model: python src_new/scripts/train.py --model wgan_gp --config configs/wgan_gp_toy.yaml

Also runs under torchrun for data-parallel training (see README, "Distributed training").
"""
import argparse
import sys

import _bootstrap  # noqa: F401

from src_new.models import available_models, get_entry
from src_new.utils.checkpoint import load_checkpoint
from src_new.pipeline.config import add_config_args, config_from_args


def build_parser():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", help=f"model type, one of {available_models()} (default: the config's model.type)")
    add_config_args(parser)
    parser.add_argument("--resume", metavar="CHECKPOINT",
                        help="continue a run from a checkpoint (its run folder); config values given "
                             "with --set (e.g. training.lr_generator) override the stored ones")
    return parser


def main(argv=None):
    args = build_parser().parse_args(argv)
    if args.model is not None and args.model not in available_models():
        sys.exit(f"error: unknown model '{args.model}'; available models: {available_models()}")
    try:
        resume_state = None
        if args.resume:
            resume_state = load_checkpoint(args.resume)
            if args.config is None:   # continue with the checkpoint's own config
                args.base_config = resume_state.get("config")
        elif args.config is None:
            sys.exit("error: --config is required (or --resume CHECKPOINT)")
        cfg = config_from_args(args, model_type=args.model)
        entry = get_entry(cfg["model"]["type"], "train")
    except (ValueError, FileNotFoundError, PermissionError, FileExistsError) as err:
        sys.exit(f"error: {err}")
    try:
        entry.train(cfg, resume=args.resume, resume_state=resume_state)
    except (ValueError, FileNotFoundError, PermissionError, FileExistsError) as err:
        sys.exit(f"error: {err}")


if __name__ == "__main__":
    main()
