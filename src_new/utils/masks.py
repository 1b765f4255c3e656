"""Component masks for inpainting (1 = known pixel, 0 = to generate)."""
from __future__ import annotations

import torch


def component_indices(components, component_names):
    """Names -> channel indices, with an error listing the valid names."""
    unknown = [c for c in components if c not in component_names]
    if unknown:
        raise ValueError(f"unknown component(s) {unknown}; valid components: {list(component_names)}")
    return [list(component_names).index(c) for c in components]


def create_mask(components_to_preserve, component_names, batch_size, image_size, device=None):
    """(B, C, H, W) float mask: 1 on every pixel of the preserved components, 0 elsewhere."""
    idx = component_indices(components_to_preserve, component_names)
    mask = torch.zeros(batch_size, len(component_names), *image_size, device=device)
    mask[:, idx] = 1.0
    return mask
