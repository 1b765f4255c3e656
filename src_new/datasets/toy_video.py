"""A synthetic video the project makes itself (no download), for the picture path
(``data.type: image_folder``): a few coloured shapes, circles and rectangles, moving on smooth
seeded trajectories over a vertical colour gradient, written with PyAV.

    write_toy_video("data/toy_video.mp4", n_frames=2000, size=128, seed=0)
    # then: video_to_frames.py data/toy_video.mp4 --every 2 --size 64 --out data/frames_toy

Each shape's centre follows a Lissajous path, x(t) = cx + ax sin(2 pi t / Tx + phase) (the
same for y), with periods of PERIOD_FRAMES frames: a frame differs from the next by about a
pixel at 128 x 128, and the shapes' joint positions do not repeat within a clip. Shapes are
drawn in a fixed order (later ones in front) with anti-aliased edges. Everything is drawn from
one seed: the same seed gives the same frames (``toy_frames``), pixel for pixel.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

# Saturated colours (RGB) the shapes take, in a seeded order; each shape has its own.
PALETTE = ((230, 40, 40), (40, 90, 230), (245, 205, 30), (40, 190, 70), (210, 60, 210), (250, 140, 20))
KINDS = ("circle", "rectangle")
PERIOD_FRAMES = (80, 240)     # range of each coordinate's period (frames): smooth, unhurried motion
RADIUS = (0.09, 0.17)         # range of a shape's half-size, as a share of the frame's side
MIN_SIZE, MAX_SIZE = 16, 2048


def _check(n_frames, size, n_shapes, fps):
    if not 1 <= n_frames <= 1_000_000:
        raise ValueError(f"n_frames = {n_frames}: use 1 to 1000000 frames")
    if not (MIN_SIZE <= size <= MAX_SIZE and size % 2 == 0):
        raise ValueError(f"size = {size}: use an even number of pixels in [{MIN_SIZE}, {MAX_SIZE}] "
                         f"(the yuv420p video format halves the colour resolution)")
    if not 1 <= n_shapes <= len(PALETTE):
        raise ValueError(f"n_shapes = {n_shapes}: use 1 to {len(PALETTE)} (one colour each)")
    if not 1 <= fps <= 240:
        raise ValueError(f"fps = {fps}: use 1 to 240 frames per second")


def toy_scene(seed=0, n_shapes=4):
    """The seeded description of a clip -> dict: background colours (top, bottom) and one dict
    per shape (kind, colour, half-size ry/rx, centre cx/cy, amplitude ax/ay, period tx/ty,
    phase px/py; lengths as shares of the frame's side)."""
    rng = np.random.default_rng(seed)
    top = rng.uniform(10, 70, 3)
    bottom = rng.uniform(90, 170, 3)
    colours = rng.permutation(len(PALETTE))[:n_shapes]
    shapes = []
    for i in range(n_shapes):
        r = rng.uniform(*RADIUS)
        aspect = rng.uniform(0.6, 1.6)
        kind = KINDS[i % len(KINDS)]
        ry, rx = (r, r) if kind == "circle" else (r * aspect ** 0.5, r / aspect ** 0.5)
        shapes.append({"kind": kind, "colour": np.array(PALETTE[colours[i]], np.float32),
                       "ry": ry, "rx": rx,
                       "cy": 0.5, "cx": 0.5, "ay": 0.5 - ry * 0.6, "ax": 0.5 - rx * 0.6,
                       "ty": rng.uniform(*PERIOD_FRAMES), "tx": rng.uniform(*PERIOD_FRAMES),
                       "py": rng.uniform(0, 2 * np.pi), "px": rng.uniform(0, 2 * np.pi)})
    return {"top": top, "bottom": bottom, "shapes": shapes}


def draw_frame(scene, t, size):
    """Frame ``t`` of ``scene`` -> uint8 (size, size, 3)."""
    s = np.linspace(0, 1, size, dtype=np.float32)[:, None, None]
    image = np.broadcast_to(scene["top"] * (1 - s) + scene["bottom"] * s, (size, size, 3)).astype(np.float32)
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32) + 0.5
    for sh in scene["shapes"]:
        cy = (sh["cy"] + sh["ay"] * np.sin(2 * np.pi * t / sh["ty"] + sh["py"])) * size
        cx = (sh["cx"] + sh["ax"] * np.sin(2 * np.pi * t / sh["tx"] + sh["px"])) * size
        ry, rx = sh["ry"] * size, sh["rx"] * size
        if sh["kind"] == "circle":
            inside = ry - np.hypot(yy - cy, xx - cx)                         # signed distance to the edge
        else:
            inside = np.minimum(ry - np.abs(yy - cy), rx - np.abs(xx - cx))
        alpha = np.clip(inside + 0.5, 0, 1)[..., None]                       # one-pixel anti-aliased edge
        image = image * (1 - alpha) + sh["colour"] * alpha
    return image.round().astype(np.uint8)


def toy_frames(n_frames, size=128, seed=0, n_shapes=4):
    """Yield the clip's frames, uint8 (size, size, 3) each (the same for the same arguments)."""
    _check(n_frames, size, n_shapes, 25)
    scene = toy_scene(seed, n_shapes)
    for t in range(n_frames):
        yield draw_frame(scene, t, size)


def write_toy_video(path, n_frames=2000, size=128, seed=0, fps=25, n_shapes=4, overwrite=False):
    """Write the clip of ``toy_frames`` to ``path`` (MPEG-4 Part 2 in the container the suffix
    names, .mp4 for instance; high bit rate, so the frames come back close to as drawn) -> path.
    FileExistsError for an existing file unless ``overwrite``; ValueError for bad numbers."""
    import av

    _check(n_frames, size, n_shapes, fps)
    path = Path(path)
    if path.is_dir():
        raise ValueError(f"{path} is a folder; give a video file name such as {path / 'toy_video.mp4'}")
    if path.exists() and not overwrite:
        raise FileExistsError(f"{path} already exists; pass --overwrite to replace it")
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.stem}.partial{path.suffix}")    # a killed run leaves no half video at path
    with av.open(str(tmp), "w") as container:
        stream = container.add_stream("mpeg4", rate=fps)
        stream.width = stream.height = size
        stream.pix_fmt = "yuv420p"
        stream.bit_rate = max(1_000_000, size * size * fps * 2)
        stream.thread_count = 1                                      # one thread: the same bytes every time
        for frame in toy_frames(n_frames, size, seed, n_shapes):
            for packet in stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    tmp.replace(path)
    return path
