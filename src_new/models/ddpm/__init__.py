"""DDPM baseline: ``from src_new.models.ddpm import GaussianDiffusion, UNet, build_ddpm``."""
from .diffusion import GaussianDiffusion
from .unet import UNet


def build_ddpm(cfg):
    """Build a GaussianDiffusion from a resolved config dict."""
    m = cfg["model"]
    unet = UNet(m["channels"], m["cond_dim"], m["image_size"], dim=m["dim"], dim_mults=m["dim_mults"],
                res_blocks=m["res_blocks"], attn_resolutions=m["attn_resolutions"], dropout=m["dropout"])
    return GaussianDiffusion(unet, image_size=m["image_size"], timesteps=m["timesteps"],
                             cond_drop_prob=m["cond_drop_prob"])


__all__ = ["GaussianDiffusion", "UNet", "build_ddpm"]
