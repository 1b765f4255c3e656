"""Building blocks of the WGAN-GP networks."""
from torch import nn


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
