"""Turning a create body (already parsed to a flat mapping) into a final RenderRequest.

Why by hand rather than a pydantic model: form fields arrive as strings, JSON as numbers or
strings, and every refusal must name the field and say what to send instead, including the
pipeline's own rules (size multiples, the temporal VAE's frame counts), which only the loaded
pipeline knows. Unknown fields are ignored: the OpenAI client and genroute may send extras.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any

from genroute_worker.config import Settings
from genroute_worker.pipeline import PipelineInfo, RenderRequest

#: Model names that mean "whatever this worker serves".
GENERIC_MODELS = frozenset({"genroute"})
_SIZE = re.compile(r"^\s*(\d+)\s*[xX×]\s*(\d+)\s*$")
MAX_PROMPT_CHARS = 20_000
MAX_SECONDS = 600.0


class ApiError(Exception):
    """An error answered as ``{"error": {"code", "message", "param"}}``."""

    def __init__(self, status: int, code: str, message: str, param: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.param = param

    def body(self) -> dict[str, Any]:
        error: dict[str, Any] = {"code": self.code, "message": self.message, "type": "invalid_request_error"}
        if self.param is not None:
            error["param"] = self.param
        return {"error": error}


def invalid(param: str, message: str) -> ApiError:
    return ApiError(400, "invalid_request", f"`{param}` {message}", param)


@dataclass(frozen=True)
class Created:
    """A validated create: what to render and what to report."""

    request: RenderRequest
    fps: int
    seconds: str


def _text(body: dict[str, Any], name: str) -> str | None:
    value = body.get(name)
    if value is None:
        return None
    if not isinstance(value, str):
        raise invalid(name, f"must be a string, not {type(value).__name__}")
    return value


def _int(body: dict[str, Any], name: str, lo: int, hi: int) -> int | None:
    value = body.get(name)
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        raise invalid(name, f"must be an integer from {lo} to {hi}, not a boolean")
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, str):
        text = value.strip()
        if not re.fullmatch(r"[+-]?\d+", text):
            raise invalid(name, f"{value!r} is not an integer; send a whole number from {lo} to {hi}")
        value = int(text)
    if not isinstance(value, int):
        raise invalid(name, f"must be an integer from {lo} to {hi}, not {type(value).__name__}")
    if not lo <= value <= hi:
        raise invalid(name, f"{value} is out of range; use {lo} to {hi}")
    return value


def _float(body: dict[str, Any], name: str, lo: float, hi: float) -> float | None:
    value = body.get(name)
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        raise invalid(name, f"must be a number from {lo:g} to {hi:g}, not a boolean")
    if isinstance(value, str):
        try:
            value = float(value.strip())
        except ValueError:
            raise invalid(name, f"{value!r} is not a number; send one from {lo:g} to {hi:g}") from None
    if not isinstance(value, (int, float)) or not math.isfinite(value):
        raise invalid(name, f"must be a finite number from {lo:g} to {hi:g}")
    if not lo <= value <= hi:
        raise invalid(name, f"{value:g} is out of range; use {lo:g} to {hi:g}")
    return float(value)


def _size(body: dict[str, Any], settings: Settings, info: PipelineInfo) -> tuple[int, int]:
    side = settings.max_side
    width = _int(body, "width", 1, side)
    height = _int(body, "height", 1, side)
    size = body.get("size")
    if size is not None and size != "":
        if not isinstance(size, str):
            raise invalid("size", 'must be a string "WIDTHxHEIGHT", e.g. "720x480"')
        m = _SIZE.match(size)
        if m is None:
            raise invalid("size", f'{size!r} is not "WIDTHxHEIGHT"; send e.g. "720x480"')
        w, h = int(m.group(1)), int(m.group(2))
        for name, v in (("width", w), ("height", h)):
            if not 1 <= v <= side:
                raise invalid("size", f"{size!r}: {name} {v} is out of range; use 1 to {side} per side")
        if (width is not None and width != w) or (height is not None and height != h):
            raise invalid("size", f"{size!r} disagrees with `width`/`height`; send one or the other")
        width, height = w, h
    width = width if width is not None else info.default_width
    height = height if height is not None else info.default_height
    # yuv420p H.264 needs even sides; the pipeline needs its latent-patch multiple.
    multiple = math.lcm(info.spatial_multiple, 2)
    for name, v in (("width", width), ("height", height)):
        if v % multiple:
            lower = max(multiple, v - v % multiple)
            from_size = size not in (None, "")
            raise invalid(
                "size" if from_size else name,
                f"{f'{name} ' if from_size else ''}{v} is not a multiple of {multiple} "
                f"({info.class_name}: VAE scale x patch size); use {lower} or {lower + multiple}",
            )
    return width, height


def parse_create(body: dict[str, Any], settings: Settings, info: PipelineInfo) -> Created:
    """Validates a create body against the limits and the loaded pipeline's rules."""
    prompt = _text(body, "prompt")
    if prompt is None or not prompt.strip():
        raise invalid("prompt", "is required and must not be empty")
    if len(prompt) > MAX_PROMPT_CHARS:
        raise invalid("prompt", f"is {len(prompt)} characters; send at most {MAX_PROMPT_CHARS}")
    model = body.get("model")
    if model not in (None, ""):
        if not isinstance(model, str):
            raise invalid("model", "must be a string")
        if model.lower() not in {settings.model_id.lower(), *GENERIC_MODELS}:
            raise ApiError(
                400,
                "model_mismatch",
                f"`model` {model!r} is not served here; this worker serves {settings.model_id!r} "
                "(send that, \"genroute\", or leave `model` out)",
                "model",
            )
    if body.get("input_reference") not in (None, ""):
        raise invalid("input_reference", "is not supported: this worker renders text-to-video only")
    negative = _text(body, "negative_prompt")
    if negative is not None and len(negative) > MAX_PROMPT_CHARS:
        raise invalid("negative_prompt", f"is {len(negative)} characters; send at most {MAX_PROMPT_CHARS}")
    width, height = _size(body, settings, info)
    fps = _int(body, "fps", 1, 240) or settings.fps or info.default_fps
    seconds_value = body.get("seconds")
    seconds = _float(body, "seconds", 0.01, MAX_SECONDS)
    frames = _int(body, "num_frames", 1, settings.max_frames)
    if frames is not None:
        if not info.frames_ok(frames):
            below, above = info.frame_neighbours(frames)
            t = info.temporal_factor
            raise invalid(
                "num_frames",
                f"{frames}: {info.class_name} renders {t}*k+1 frames (its VAE compresses {t} frames "
                f"into one); use {below} or {above}",
            )
    elif seconds is not None:
        frames = info.nearest_frames(round(seconds * fps))
        if frames > settings.max_frames:
            raise invalid(
                "seconds",
                f"{seconds:g} at {fps} fps is {frames} frames, over the limit of {settings.max_frames}; "
                "send fewer seconds or a lower fps",
            )
    else:
        frames = settings.num_frames or info.default_num_frames
        if not info.frames_ok(frames):
            frames = info.nearest_frames(frames)
    steps = (
        _int(body, "num_inference_steps", 1, settings.max_steps)
        or settings.num_inference_steps
        or info.default_steps
    )
    guidance = _float(body, "guidance_scale", 0.0, 100.0)
    if guidance is None:
        guidance = settings.guidance_scale if settings.guidance_scale is not None else info.default_guidance
    seed = _int(body, "seed", 0, 2**63 - 1)
    if isinstance(seconds_value, str) and seconds is not None:
        seconds_text = seconds_value.strip()
    elif seconds is not None:
        seconds_text = f"{seconds:g}"
    else:
        seconds_text = f"{frames / fps:.3f}".rstrip("0").rstrip(".")
    return Created(
        RenderRequest(
            prompt=prompt,
            negative_prompt=negative,
            width=width,
            height=height,
            num_frames=frames,
            num_inference_steps=steps,
            guidance_scale=guidance,
            seed=seed,
        ),
        fps=fps,
        seconds=seconds_text,
    )
