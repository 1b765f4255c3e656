"""Video -> a folder of frames (PNG) for ``data.type: image_folder``, decoded with PyAV."""
from __future__ import annotations

from pathlib import Path

from ..utils.io import prepare_output_dir
from .image_folder import fit_image


def extract_frames(video, out_dir, every=10, size=None, overwrite=False, progress=True):
    """Write every ``every``-th frame of ``video`` (frames 0, every, 2 every, ...) to
    ``out_dir/frame_<index>.png`` (RGB; index = the frame's number in the video), scaled to
    cover ``size`` (int or (H, W)) and center-cropped when given. Returns the written paths.

    Raises FileNotFoundError for a missing file and ValueError for a file that is not a
    readable video (naming the file and what the decoder said)."""
    import av
    from tqdm import tqdm

    video = Path(video)
    if every < 1:
        raise ValueError(f"--every {every}: keep every N-th frame with N >= 1")
    if not video.is_file():
        raise FileNotFoundError(f"video not found: {video}")
    size_hw = None if size is None else ((size, size) if isinstance(size, int) else tuple(size))
    try:
        container = av.open(str(video))
    except av.FFmpegError as err:
        raise ValueError(f"{video}: cannot read it as a video ({err}); is it a video file "
                         f"(mp4, avi, mkv, mov, webm, ...) and complete?") from None
    written = []
    with container:
        if not container.streams.video:
            raise ValueError(f"{video}: the file has no video stream (streams: "
                             f"{[s.type for s in container.streams] or 'none'})")
        stream = container.streams.video[0]
        out = prepare_output_dir(out_dir, overwrite, "frames folder")
        total = stream.frames or None
        bar = tqdm(total=total, desc=f"frames of {video.name}", unit="frame", disable=not progress)
        index = -1
        try:
            for index, frame in enumerate(container.decode(stream)):
                bar.update(1)
                if index % every:
                    continue
                image = frame.to_image()
                if size_hw is not None:
                    image = fit_image(image, size_hw)
                path = out / f"frame_{index:06d}.png"
                image.save(path)
                written.append(path)
        except av.FFmpegError as err:
            raise ValueError(f"{video}: decoding failed after frame {index} ({err}); the file is "
                             f"truncated or corrupt ({len(written)} frames written to {out})") from None
        finally:
            bar.close()
    if not written:
        raise ValueError(f"{video}: no frame could be decoded")
    return written
