"""Optional classic FID features: Inception-v3 pool features (2048-d) as in pytorch-fid.

Needs a user-supplied pytorch-fid weights file (``pt_inception-2015-12-05-6726825d.pth``,
the TF FID Inception ported to PyTorch); nothing is downloaded. pytorch-fid builds
torchvision's Inception-v3 (1008 classes, no aux head) and swaps some blocks so that it
matches the TF graph: the pooling branch of the A, C and first E blocks averages without
counting the zero padding, and the last E block max-pools. Here the first three are done
with a pre-hook on the pooling branch (the parameter names stay torchvision's, so the
weights file loads strictly) and the last with a small subclass.

Masks (N, C, H, W) become RGB through the colour overlay (``utils.io.overlay``, mirrored to
the full section, 64 x 64), which the network resizes to 299 x 299 as pytorch-fid does.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

BLOCKS = ("Conv2d_1a_3x3", "Conv2d_2a_3x3", "Conv2d_2b_3x3", "maxpool1", "Conv2d_3b_1x1", "Conv2d_4a_3x3",
          "maxpool2", "Mixed_5b", "Mixed_5c", "Mixed_5d", "Mixed_6a", "Mixed_6b", "Mixed_6c", "Mixed_6d",
          "Mixed_6e", "Mixed_7a", "Mixed_7b", "Mixed_7c")
PAD_EXCLUDING_POOL = ("Mixed_5b", "Mixed_5c", "Mixed_5d", "Mixed_6b", "Mixed_6c", "Mixed_6d", "Mixed_6e", "Mixed_7b")
FEATURE_DIM = 2048
SKIP_MESSAGE = ("Inception FID skipped: no weights file. Pass --inception_weights PATH (or set "
                "evaluation.inception_weights) to a pytorch-fid pt_inception-2015-12-05-*.pth file; "
                "nothing is downloaded.")


def _exclude_padding(module, args):
    """Pre-hook on a pooling branch: torchvision feeds it avg_pool2d(3, 1, 1) counting the zero
    padding; rescale by 9 / (valid pixels in each window) to get count_include_pad=False."""
    x = args[0]
    valid = F.avg_pool2d(torch.ones_like(x[:1, :1]), 3, stride=1, padding=1)   # = valid / 9
    return (x / valid,)


def build_fid_inception():
    """The pytorch-fid FID Inception-v3 architecture with untrained weights (eval mode)."""
    from torchvision.models.inception import Inception3, InceptionE

    class MaxPoolInceptionE(InceptionE):
        """pytorch-fid's FIDInceptionE_2: the pooling branch max-pools instead of averaging."""

        def _forward(self, x):
            b3 = self.branch3x3_1(x)
            b3 = torch.cat([self.branch3x3_2a(b3), self.branch3x3_2b(b3)], 1)
            bd = self.branch3x3dbl_2(self.branch3x3dbl_1(x))
            bd = torch.cat([self.branch3x3dbl_3a(bd), self.branch3x3dbl_3b(bd)], 1)
            pool = self.branch_pool(F.max_pool2d(x, kernel_size=3, stride=1, padding=1))
            return [self.branch1x1(x), b3, bd, pool]

    model = Inception3(num_classes=1008, aux_logits=False, init_weights=False)
    model.Mixed_7c = MaxPoolInceptionE(2048)
    for name in PAD_EXCLUDING_POOL:
        getattr(model, name).branch_pool.register_forward_pre_hook(_exclude_padding)
    return model.eval()


def load_fid_inception(weights_path, device="cpu"):
    """Build the FID Inception and load a pytorch-fid weights file (``weights_only=True``)."""
    path = Path(weights_path)
    if not path.is_file():
        raise FileNotFoundError(f"Inception weights not found: {path}; give the path of a pytorch-fid "
                                f"pt_inception-2015-12-05-*.pth file (nothing is downloaded)")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:   # unpickling refused, truncated file, not a torch file
        raise ValueError(f"{path}: cannot load as plain tensors (weights_only=True): "
                         f"{str(err).splitlines()[0]}") from None
    if not isinstance(state, dict):
        raise ValueError(f"{path}: expected a state dict, got {type(state).__name__}")
    model = build_fid_inception()
    try:
        model.load_state_dict(state)
    except RuntimeError as err:
        detail = " ".join(line.strip() for line in str(err).splitlines()[1:3])[:400]
        raise ValueError(f"{path}: not pytorch-fid FID Inception weights (pt_inception-2015-12-05): "
                         f"{detail}") from None
    return model.to(device)


def masks_to_rgb(images, component_names):
    """(N, C, H, W) masks in [0, 1] -> (N, 3, H, 2W) float32 in [0, 1]: colour overlay,
    mirrored to the full cross-section."""
    from ..utils.io import overlay, to_numpy

    arr = to_numpy(images)
    if arr.ndim != 4 or arr.shape[1] != len(component_names):
        raise ValueError(f"masks_to_rgb: expected (N, {len(component_names)}, H, W) images for "
                         f"{list(component_names)}, got shape {arr.shape}")
    rgb = np.stack([overlay(s, component_names, mirror=True) for s in arr])
    return torch.from_numpy(rgb).permute(0, 3, 1, 2).float() / 255.0


@torch.no_grad()
def pool_features(model, rgb):
    """(N, 3, H, W) RGB in [0, 1] -> (N, 2048) pool features, as pytorch-fid computes them:
    bilinear resize to 299 x 299, scale to [-1, 1], blocks up to Mixed_7c, global average."""
    x = F.interpolate(rgb, size=(299, 299), mode="bilinear", align_corners=False)
    x = 2 * x - 1
    for name in BLOCKS:
        x = getattr(model, name)(x)
    return F.adaptive_avg_pool2d(x, 1).flatten(1)


def inception_features(images, component_names, model, batch_size=50, device=None):
    """(N, C, H, W) masks -> (N, 2048) float64 numpy Inception pool features."""
    device = device or next(model.parameters()).device
    rgb = masks_to_rgb(images, component_names)
    out = [pool_features(model, rgb[i:i + batch_size].to(device)).double().cpu()
           for i in range(0, len(rgb), batch_size)]
    return torch.cat(out).numpy()
