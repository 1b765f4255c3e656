"""DDPM baseline: ``from src_new.models.ddpm import GaussianDiffusion, UNet, build_ddpm``.

train.py / sample.py are imported by the model registry on demand, not here, so importing
the networks stays light."""
from .diffusion import GaussianDiffusion, build_ddpm
from .unet import UNet

__all__ = ["GaussianDiffusion", "UNet", "build_ddpm"]
