"""Procedural tire cross-sections: five geometrically related binary component masks.

The image is the right half of a tire cross-section (H=64 rows, W=32 columns); column 0
is the tire's mid-plane, so mirroring gives the full section. Every shape is a band of a
superellipse ``r(x, y) = (|x/a|^p + |(y-cy)/b|^p)^(1/p)`` whose semi-axes ``a, b``,
squareness ``p``, centre and band thicknesses are drawn per sample, plus a smooth random
thickness wobble, so no two samples are alike:

- tpc (tread): the outermost band on the crown, ``r in [1 - t_tread, 1]``, up to the shoulder;
- bt (belt): a thin band just inside the tread, narrower than it;
- group_km (crown): a band inside the belt, on the carcass;
- group_nc (carcass): a thin band all around, inside the crown, down to the bead;
- fpu (sidewall): the outer band below the shoulder, down to the bead.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from ..utils.geometry import measure_dimensions

COMPONENTS = ["group_nc", "group_km", "bt", "fpu", "tpc"]


# Each parameter is drawn uniformly from its range, in this order (the order fixes the data a
# seed gives).
PARAM_RANGES = dict(
    a=(15.0, 29.0),            # half width (x semi-axis)
    b=(20.0, 30.0),            # y semi-axis
    p=(2.5, 5.0),              # shoulder squareness
    top=(1.0, 5.0),            # first tread row
    bottom_frac=(0.55, 0.85),  # bead cut, as a fraction of b below the centre
    t_tread=(3.0, 6.5),
    t_belt=(1.2, 2.5),
    t_crown=(1.5, 3.5),
    t_carcass=(1.2, 2.2),
    t_side=(2.0, 4.5),
    belt_frac=(0.55, 0.85),    # belt half width / a
    crown_frac=(0.6, 0.9),
    shoulder=(0.15, 0.45),     # sidewall starts this fraction of b above centre
    wobble_amp=(0.0, 0.6),
    wobble_freq=(1.0, 3.0),
    wobble_phase=(0, 2 * np.pi),
)


def _sample_params(rng):
    return {name: rng.uniform(lo, hi) for name, (lo, hi) in PARAM_RANGES.items()}


def render_sample(params, height=64, width=32):
    """Render one sample: float32 (5, H, W) binary masks in COMPONENTS order."""
    q = params
    cy = q["top"] + q["b"]
    bottom = min(cy + q["bottom_frac"] * q["b"], height - 1.0)
    y, x = np.mgrid[0:height, 0:width].astype(np.float64)
    xc = x + 0.5
    r = (np.abs(xc / q["a"]) ** q["p"] + np.abs((y + 0.5 - cy) / q["b"]) ** q["p"]) ** (1 / q["p"])
    # Depth below the outer surface in pixels (approximately), with a smooth thickness wobble.
    depth = (1 - r) * min(q["a"], q["b"])
    angle = np.arctan2(xc, np.maximum(cy - y, 1e-3))
    wobble = 1 + q["wobble_amp"] * 0.3 * np.sin(q["wobble_freq"] * angle + q["wobble_phase"])
    upper = y + 0.5 < cy - q["shoulder"] * q["b"]
    inside = (y <= bottom)

    def band(lo, hi):
        return (depth >= lo * wobble) & (depth < hi * wobble) & inside

    d_belt = q["t_tread"]
    d_crown = d_belt + q["t_belt"]
    d_carc = d_crown + q["t_crown"]
    tread = band(0, q["t_tread"]) & upper
    belt = band(d_belt, d_crown) & (xc < q["belt_frac"] * q["a"]) & upper
    crown = band(d_crown, d_carc) & (xc < q["crown_frac"] * q["a"]) & upper
    side_depth = q["t_side"]
    sidewall = band(0, side_depth) & ~upper
    # The carcass runs around the crown and down the side to the bead; it does not close
    # under the mid-plane.
    carcass = band(max(d_carc, side_depth), max(d_carc, side_depth) + q["t_carcass"]) \
        & ((y + 0.5 < cy) | (xc > 0.55 * q["a"]))
    masks = np.stack([carcass, crown, belt, sidewall, tread]).astype(np.float32)
    return masks


def generate(n, seed=0, height=64, width=32):
    """``n`` samples: float32 (n, 5, H, W) in {0, 1}; deterministic for ``seed``."""
    rng = np.random.default_rng(seed)
    return np.stack([render_sample(_sample_params(rng), height, width) for _ in range(n)])


def write_dataset(out_dir, n=4000, seed=0, test_fraction=0.2, height=64, width=32):
    """Write the EPURE layout: ``out/<component>/mdbk_<prefix>_<component>.png`` and
    ``out/dimensions.csv`` (matching, train, width_px, height_px from measure_dimensions)."""
    import pandas as pd
    from PIL import Image

    out = Path(out_dir)
    images = generate(n, seed, height, width)
    dims = measure_dimensions(images)
    rng = np.random.default_rng(seed + 1)
    is_train = rng.permutation(n) >= int(round(test_fraction * n))
    for comp in COMPONENTS:
        (out / comp).mkdir(parents=True, exist_ok=True)
    prefixes = [f"{i:05d}" for i in range(n)]
    for i, prefix in enumerate(prefixes):
        for c, comp in enumerate(COMPONENTS):
            Image.fromarray((images[i, c] * 255).astype(np.uint8), mode="L").save(
                out / comp / f"mdbk_{prefix}_{comp}.png")
    frame = pd.DataFrame({"matching": prefixes, "train": is_train,
                          "width_px": dims[:, 0], "height_px": dims[:, 1]})
    frame.to_csv(out / "dimensions.csv", index=False)
    return frame
