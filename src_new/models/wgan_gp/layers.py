"""Small building blocks and input checks shared by the WGAN-GP networks."""
import torch
from torch import nn


def check_image(x, channels, image_size, what):
    """Raise ValueError unless x is (B, channels, H, W) with (H, W) == image_size."""
    expected = f"(B, {channels}, {image_size[0]}, {image_size[1]})"
    if not isinstance(x, torch.Tensor) or x.dim() != 4 or x.shape[1] != channels \
            or tuple(x.shape[2:]) != tuple(image_size):
        got = tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__
        raise ValueError(f"{what}: expected shape {expected}, got {got}")


def check_cond(cond, batch_size, cond_dim, what):
    """None, or a (B, cond_dim) tensor; returns None for cond_dim == 0."""
    if cond is None:
        return None
    if not isinstance(cond, torch.Tensor) or cond.dim() != 2 or cond.shape[0] != batch_size \
            or cond.shape[1] != cond_dim:
        got = tuple(cond.shape) if isinstance(cond, torch.Tensor) else type(cond).__name__
        raise ValueError(f"{what}: expected condition of shape ({batch_size}, {cond_dim}), got {got}")
    return cond if cond_dim > 0 else None


class ResBlock(nn.Module):
    """conv-GN-ReLU-conv-GN + residual, then ReLU; shape-preserving."""

    def __init__(self, dim, groups=8):
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(dim, dim, 3, padding=1), nn.GroupNorm(groups, dim), nn.ReLU(inplace=True),
            nn.Conv2d(dim, dim, 3, padding=1), nn.GroupNorm(groups, dim))
        self.act = nn.ReLU(inplace=True)

    def forward(self, x):
        return self.act(x + self.body(x))
