"""Where the encoder puts real designs in the latent space: per checkpoint, the eigenvalues of the
covariance of E(x, c) over the train split, and the batch KL of the reach term (diagonal and
full covariance, ``losses.batch_latent_kl``) on training-size batches; writes JSON.

    python bench/latents.py --checkpoints outputs/wgan_gp/seeds/encflat_900s_s0/checkpoint_latest.pt \
        --out bench/results/latents.json

Sampling draws z from N(0, I): eigenvalues near 1 mean the reached latents fill the prior's
directions; eigenvalues near 0, that they sit on a thin set the prior's samples mostly miss.
"""
from __future__ import annotations

import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from pieces import design_of  # noqa: E402
from src_new.datasets.factory import build_datasets  # noqa: E402
from src_new.models.wgan_gp.losses import batch_latent_kl  # noqa: E402
from src_new.models.wgan_gp.sample import load_model_from_checkpoint  # noqa: E402
from src_new.utils.io import write_json  # noqa: E402
from src_new.utils.provenance import checkpoint_benchmark_args, provenance  # noqa: E402


@torch.no_grad()
def latent_figures(model, images, cond, batch_size):
    """{eigenvalues (ascending), kl_diagonal, kl_full}: the covariance spectrum of the encoder's
    latents of ``images`` (N, C, H, W) and the mean batch KL over consecutive batches."""
    z = torch.cat([model.encoder(images[i:i + 256], None, None if cond is None else cond[i:i + 256]).float()
                   for i in range(0, len(images), 256)])
    batches = [z[i:i + batch_size] for i in range(0, len(z) - batch_size + 1, batch_size)]
    mean_kl = lambda full: sum(batch_latent_kl(b, full=full).item() for b in batches) / len(batches)
    return {"eigenvalues": torch.linalg.eigvalsh(torch.cov(z.T)).tolist(),
            "kl_diagonal": mean_kl(False), "kl_full": mean_kl(True)}


def main(argv=None):
    args, out_path = checkpoint_benchmark_args(__doc__, "bench/results/latents.json", argv)
    rows = []
    for path in args.checkpoints:
        model, cfg = load_model_from_checkpoint(path)
        train = build_datasets(cfg, ("train",), verbose=False)["train"]
        cond = train.conditions if model.cond_dim else None
        batch_size = cfg["training"]["batch_size"]
        rows.append({"checkpoint": path, "design": design_of(path), "training_seed": cfg["training"]["seed"],
                     "n": len(train.images_float), "batch_size": batch_size,
                     **latent_figures(model, train.images_float, cond, batch_size)})
        r = rows[-1]
        print(f"{path}: eigenvalues {r['eigenvalues'][0]:.3f} .. {r['eigenvalues'][-1]:.3f}, "
              f"KL diagonal {r['kl_diagonal']:.3f}, full {r['kl_full']:.3f}")
    write_json({"provenance": provenance(argv), "rows": rows}, out_path)
    print(f"wrote {out_path}")


if __name__ == "__main__":
    main()
