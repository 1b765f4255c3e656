"""Encoder: image (B, C, H, W) in [0, 1] -> latent (B, latent_dim)."""
import torch
from torch import nn

from ...utils.checks import check_image


class Encoder(nn.Module):
    """Conv 3x3 + GN + ReLU, three stride-2 convs (dim -> 2dim -> 4dim -> 8dim) with GN + ReLU,
    global average pool, Linear 8dim -> 4dim + ReLU, Linear -> latent_dim.

    About 1.7M parameters at C=5, dim=64. Every norm is per-sample (GroupNorm), so a sample's
    latent never depends on the rest of the batch.
    """

    def __init__(self, channels=5, latent_dim=20, image_size=(64, 32), dim=64):
        super().__init__()
        self.channels, self.latent_dim, self.image_size = channels, latent_dim, tuple(image_size)
        widths = [dim, dim * 2, dim * 4, dim * 8]
        layers = [nn.Conv2d(channels, widths[0], 3, padding=1), nn.GroupNorm(8, widths[0]), nn.ReLU()]
        for c_in, c_out in zip(widths[:-1], widths[1:]):
            layers += [nn.Conv2d(c_in, c_out, 3, stride=2, padding=1), nn.GroupNorm(8, c_out), nn.ReLU()]
        self.features = nn.Sequential(*layers, nn.AdaptiveAvgPool2d(1), nn.Flatten())
        self.head = nn.Sequential(nn.Linear(widths[-1], widths[-1] // 2), nn.ReLU(),
                                  nn.Linear(widths[-1] // 2, latent_dim))

    def forward(self, x):
        """x: (B, C, H, W) in [0, 1] -> (B, latent_dim)."""
        check_image(x, self.channels, self.image_size, "Encoder input")
        return self.head(self.features(x))
