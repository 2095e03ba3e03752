"""Frames to an MP4 file.

Why not ``diffusers.utils.export_to_video`` as it is: it scales float frames by 255 without
clipping or rounding (a value just over 1.0 wraps to black) and pads sizes to multiples of
16 by default, which would change the W×H a client asked for. This module writes through the
same imageio + imageio-ffmpeg backend (a bundled ffmpeg binary, so no system package), with
H.264 in yuv420p, the exact size and the request's fps.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np


def to_uint8(frames: np.ndarray) -> np.ndarray:
    """``(F, H, W, C)`` floats in [0, 1] (or uint8) as uint8 RGB, clipped and rounded."""
    if frames.dtype == np.uint8:
        out = frames
    else:
        out = np.clip(np.rint(frames.astype(np.float32) * 255.0), 0, 255).astype(np.uint8)
    if out.ndim != 4:
        raise ValueError(f"frames have shape {frames.shape}; expected (frames, height, width, channels)")
    if out.shape[-1] == 1:
        out = np.repeat(out, 3, axis=-1)
    elif out.shape[-1] == 4:
        out = out[..., :3]
    return np.ascontiguousarray(out)


def write_mp4(frames: np.ndarray, path: Path, fps: float) -> int:
    """Writes ``frames`` to ``path`` at ``fps``; returns the file's size in bytes."""
    import imageio.v2 as imageio

    data = to_uint8(frames)
    tmp = path.with_suffix(".part.mp4")
    with imageio.get_writer(
        str(tmp),
        format="FFMPEG",  # type: ignore[arg-type]
        mode="I",
        fps=fps,
        codec="libx264",
        pixelformat="yuv420p",
        quality=8,
        macro_block_size=1,
        ffmpeg_log_level="error",
    ) as writer:
        for frame in data:
            writer.append_data(frame)
    tmp.replace(path)
    return path.stat().st_size
