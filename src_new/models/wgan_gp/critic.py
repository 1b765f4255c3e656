"""Critic: image (B, C, H, W) in [0, 1] + condition -> unbounded score (B, 1)."""
import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.parametrizations import spectral_norm as _spectral_norm

from ...utils.checks import check_cond, check_image


class CondConv(nn.Module):
    """``conv(cat([x, broadcast(emb)]))`` computed without building the broadcast map.

    The embedding is constant over space, so its share of the conv is, per output pixel,
    emb . (the sum of the kernel taps that fall inside the image). That sum takes only a few
    distinct values (all taps inside, or a border row/column cut off): per sample, a matmul
    over those few "tap regions", then a one-hot matmul spreading them to the output pixels.
    Same weights, same function as the concatenation (``forward_concat``; tested), a few
    thousand MACs per sample instead of a convolution over ``cond_emb_dim`` extra channels.
    """

    def __init__(self, conv, image_channels):
        super().__init__()
        self.conv, self.image_channels = conv, image_channels
        self._regions = {}

    def regions(self, height, width, device, dtype):
        """(rows (U, kh), cols (V, kw), spread (U*V, H'*W')): the distinct 0/1 patterns of
        kernel rows/columns inside the image, and the one-hot map from (row, column)
        pattern pairs to output pixels. Cached per input size."""
        key = (height, width, device, dtype)
        if key not in self._regions:
            conv = self.conv
            (kh, kw), (sh, sw), (ph, pw) = conv.kernel_size, conv.stride, conv.padding

            def patterns(size, k, stride, pad):
                out = (size + 2 * pad - k) // stride + 1
                pos = torch.arange(out)[:, None] * stride - pad + torch.arange(k)[None, :]
                inside = ((pos >= 0) & (pos < size)).to(dtype)
                return torch.unique(inside, dim=0, return_inverse=True)

            rows, row_of = patterns(height, kh, sh, ph)
            cols, col_of = patterns(width, kw, sw, pw)
            pair = row_of[:, None] * len(cols) + col_of[None, :]            # (H', W')
            spread = F.one_hot(pair.flatten(), len(rows) * len(cols)).T.to(dtype)
            self._regions[key] = (rows.to(device), cols.to(device), spread.contiguous().to(device))
        return self._regions[key]

    def forward(self, x, emb):
        conv, c = self.conv, self.image_channels
        weight = conv.weight
        y = F.conv2d(x, weight[:, :c], conv.bias, conv.stride, conv.padding)
        if emb is None:
            return y
        rows, cols, spread = self.regions(x.shape[2], x.shape[3], x.device, weight.dtype)
        taps = torch.einsum("ocij,ui,vj->cuvo", weight[:, c:], rows, cols)   # tap sums per region
        per_region = (emb @ taps.flatten(1)).view(len(emb), -1, weight.shape[0])   # (B, U*V, O)
        cond_map = (spread.T @ per_region).view(len(emb), *y.shape[2:], -1)     # (B, H', W', O)
        return y + cond_map.permute(0, 3, 1, 2)

    def forward_concat(self, x, emb):
        """Reference: the literal concatenation of the broadcast embedding."""
        if emb is not None:
            x = torch.cat([x, emb[:, :, None, None].expand(-1, -1, *x.shape[2:])], dim=1)
        return self.conv(x)


class Critic(nn.Module):
    """Condition embedded (Linear cond_dim -> 64), broadcast over the image and concatenated;
    Conv k4 s2 stack dim -> 2dim -> 4dim -> 8dim with LeakyReLU(0.2) and per-sample LayerNorm
    over (C, H, W) (GroupNorm with one group) after all but the first conv; global average
    pool; Linear 8dim -> 8dim + LeakyReLU; Linear -> 1, no output activation.

    No BatchNorm: a sample's score must not depend on the rest of the batch, or the per-sample
    gradient penalty (and one critic pass over real and fake together) would be wrong.
    About 3.1M parameters at C=5, dim=64, cond_dim=2.
    """

    def __init__(self, channels=5, cond_dim=2, image_size=(64, 32), dim=64, cond_emb_dim=64,
                 spectral_norm=False):
        super().__init__()
        self.channels, self.cond_dim, self.image_size = channels, cond_dim, tuple(image_size)
        sn = _spectral_norm if spectral_norm else (lambda m: m)
        self.cond_embed = nn.Linear(cond_dim, cond_emb_dim) if cond_dim > 0 else None
        c_in = channels + (cond_emb_dim if cond_dim > 0 else 0)
        widths = [dim, dim * 2, dim * 4, dim * 8]
        self.first = CondConv(sn(nn.Conv2d(c_in, widths[0], 4, stride=2, padding=1)), channels)
        layers = [nn.LeakyReLU(0.2, inplace=True)]
        for a, b in zip(widths[:-1], widths[1:]):
            layers += [sn(nn.Conv2d(a, b, 4, stride=2, padding=1)), nn.GroupNorm(1, b),
                       nn.LeakyReLU(0.2, inplace=True)]
        self.features = nn.Sequential(*layers, nn.AdaptiveAvgPool2d(1), nn.Flatten())
        self.head = nn.Sequential(sn(nn.Linear(widths[-1], widths[-1])), nn.LeakyReLU(0.2, inplace=True),
                                  sn(nn.Linear(widths[-1], 1)))
        self.memory_format = torch.contiguous_format   # torch.channels_last: NHWC convs (same maths)

    def forward(self, x, cond=None, concat=False):
        """x: (B, C, H, W); cond: (B, cond_dim) or None (zeros are used: the critic of a
        conditional model is meant to always see the true condition). Returns (B, 1).
        concat: build the broadcast condition map literally (the plan's reference path). CUDA
        always takes it: there the extra input channels cost next to nothing while the region
        path's small kernels add launch time (H100, default config: 0.127 vs 0.143 s/iteration)."""
        check_image(x, self.channels, self.image_size, "Critic input")
        emb = None
        if self.cond_embed is not None:
            cond = check_cond(cond, x.shape[0], self.cond_dim, "Critic condition")
            if cond is None:
                cond = x.new_zeros(x.shape[0], self.cond_dim)
            emb = self.cond_embed(cond.to(x.dtype))
        x = x.contiguous(memory_format=self.memory_format)
        h = self.first.forward_concat(x, emb) if concat or x.is_cuda else self.first(x, emb)
        return self.head(self.features(h))
