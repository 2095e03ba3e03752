"""Loading a diffusers video pipeline and running one render on it.

Why: the server must load real weights the way an operator has them on disk
(``DiffusionPipeline.from_pretrained(dir, dtype=...)``), learn the pipeline's own rules
(height/width multiples, the frame-count rule of its temporal VAE, its defaults), and run a
render that reports progress and can be stopped between denoising steps. Everything
pipeline-specific lives here, so the HTTP and job layers stay model-agnostic.

Frame counts: a temporal VAE compresses ``t`` frames into one latent frame, so the pipelines
produce ``t*k + 1`` frames (CogVideoX: t=4, e.g. 49; Mochi 1: t=6, e.g. 19, 85, 163). The
worker accepts only such counts; CogVideoX's VAE decodes latents in pairs and may return up
to ``t - 1`` frames more than asked (e.g. 13 -> 16), which are cut so the video has exactly
the frames asked for. A pipeline that returns fewer fails the job.
"""

from __future__ import annotations

import inspect
import logging
import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np

log = logging.getLogger("genroute_worker.pipeline")

#: Frames per second that each pipeline family was trained for (its model card's export fps).
_NATIVE_FPS = {"CogVideoX": 8, "Mochi": 30}


class PipelineLoadError(Exception):
    """The model directory could not be turned into a usable pipeline (shown without traceback)."""


class RenderCancelled(Exception):
    """Raised from the step callback to stop a render whose job was cancelled."""


@dataclass(frozen=True)
class RenderRequest:
    """One validated render: every value is final (defaults and rules already applied)."""

    prompt: str
    negative_prompt: str | None
    width: int
    height: int
    num_frames: int
    num_inference_steps: int
    guidance_scale: float
    seed: int | None


#: ``on_step(done, total)`` is called after each denoising step; it may raise to stop.
StepHook = Callable[[int, int], None]


class Renderer(Protocol):
    """What the job runner needs of a pipeline (the real one, or the benchmark's fake)."""

    info: "PipelineInfo"

    def render(self, req: RenderRequest, on_step: StepHook) -> np.ndarray:
        """Returns frames as ``(F, H, W, 3)`` floats in [0, 1] or uint8."""
        ...


@dataclass(frozen=True)
class PipelineInfo:
    """The rules and defaults a request is validated and completed against."""

    class_name: str
    device: str
    dtype: str
    spatial_multiple: int  # height and width must be multiples of this
    temporal_factor: int  # num_frames must be temporal_factor * k + 1 (1 = any count)
    default_width: int
    default_height: int
    default_num_frames: int
    default_fps: int
    default_steps: int
    default_guidance: float
    accepts_negative_prompt: bool

    def frames_ok(self, n: int) -> bool:
        """Whether the pipeline produces ``n`` frames (at least; extras are cut)."""
        return self.temporal_factor <= 1 or (n - 1) % self.temporal_factor == 0

    def nearest_frames(self, n: int) -> int:
        """The valid frame count closest to ``n`` (ties go up), at least 1."""
        t = self.temporal_factor
        if t <= 1:
            return max(1, n)
        return max(1, t * max(0, math.floor((n - 1) / t + 0.5)) + 1)

    def frame_neighbours(self, n: int) -> tuple[int, int]:
        """The valid counts just below and just above ``n``."""
        t = max(1, self.temporal_factor)
        below = ((n - 1) // t) * t + 1
        return max(1, below), below + t


def _torch_dtype(name: str, device: str) -> Any:
    import torch

    if name == "auto":
        if device.startswith("cuda"):
            return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
        return torch.float32
    return {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}[name]


def resolve_device(requested: str) -> str:
    """``auto`` is CUDA when present, else CPU; an explicit CUDA without one is refused."""
    import torch

    if requested == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if requested.startswith("cuda") and not torch.cuda.is_available():
        raise PipelineLoadError(f"--device {requested}: no CUDA device is visible to torch")
    return requested


def _first_attr(obj: Any, names: tuple[str, ...], default: int) -> int:
    for name in names:
        value = getattr(obj, name, None)
        if isinstance(value, int) and value > 0:
            return value
    return default


def _patch(transformer: Any) -> int:
    size = getattr(getattr(transformer, "config", None), "patch_size", None)
    if isinstance(size, (list, tuple)):  # e.g. Wan's (t, h, w)
        size = size[-1]
    return size if isinstance(size, int) and size > 0 else 1


def _call_default(pipe: Any, name: str) -> Any:
    param = inspect.signature(pipe.__call__).parameters.get(name)
    if param is None or param.default is inspect.Parameter.empty:
        return None
    return param.default


def describe(pipe: Any, device: str, dtype: str, fps: int | None = None) -> PipelineInfo:
    """Reads a loaded pipeline's rules and defaults from its attributes and signature."""
    cls = type(pipe).__name__
    spatial = _first_attr(
        pipe, ("vae_scale_factor_spatial", "vae_spatial_scale_factor", "vae_scale_factor"), 8
    )
    temporal = _first_attr(pipe, ("vae_scale_factor_temporal", "vae_temporal_scale_factor"), 1)
    transformer = getattr(pipe, "transformer", None)
    config = getattr(transformer, "config", None)
    multiple = spatial * _patch(transformer)

    def default_side(name: str, sample: str, fallback: int) -> int:
        value = _call_default(pipe, name)
        if isinstance(value, int):
            return value
        sample_value = getattr(config, sample, None)
        return sample_value * spatial if isinstance(sample_value, int) else fallback

    frames = _call_default(pipe, "num_frames")
    if not isinstance(frames, int):
        sample_frames = getattr(config, "sample_frames", None)
        frames = sample_frames if isinstance(sample_frames, int) else 49
    native_fps = next((v for k, v in _NATIVE_FPS.items() if cls.startswith(k)), 8)
    steps = _call_default(pipe, "num_inference_steps")
    guidance = _call_default(pipe, "guidance_scale")
    return PipelineInfo(
        class_name=cls,
        device=device,
        dtype=dtype,
        spatial_multiple=multiple,
        temporal_factor=temporal,
        default_width=default_side("width", "sample_width", 720),
        default_height=default_side("height", "sample_height", 480),
        default_num_frames=frames,
        default_fps=fps or native_fps,
        default_steps=steps if isinstance(steps, int) else 50,
        default_guidance=float(guidance) if isinstance(guidance, (int, float)) else 6.0,
        accepts_negative_prompt="negative_prompt" in inspect.signature(pipe.__call__).parameters,
    )


def _max_sequence_length(pipe: Any) -> int | None:
    """The text length the transformer was built for (CogVideoX/Mochi configs carry it)."""
    config = getattr(getattr(pipe, "transformer", None), "config", None)
    for key in ("max_text_seq_length", "max_sequence_length"):
        value = getattr(config, key, None)
        if isinstance(value, int) and value > 0:
            return value
    return None


class DiffusersRenderer:
    """A pipeline loaded with ``DiffusionPipeline.from_pretrained`` from a local directory."""

    def __init__(self, pipe: Any, info: PipelineInfo) -> None:
        self.pipe = pipe
        self.info = info
        params = inspect.signature(pipe.__call__).parameters
        self._has_callback = "callback_on_step_end" in params
        self._max_seq = _max_sequence_length(pipe) if "max_sequence_length" in params else None

    @classmethod
    def load(
        cls,
        model: Path,
        *,
        device: str = "auto",
        dtype: str = "auto",
        cpu_offload: bool = False,
        vae_tiling: bool = False,
        vae_slicing: bool = False,
        fps: int | None = None,
    ) -> "DiffusersRenderer":
        """Loads the pipeline; every failure becomes a one-line PipelineLoadError."""
        if not model.is_dir():
            raise PipelineLoadError(f"--model {model}: not a directory")
        if not (model / "model_index.json").is_file():
            raise PipelineLoadError(
                f"--model {model}: no model_index.json; point it at a diffusers pipeline "
                "directory (e.g. a local copy of THUDM/CogVideoX-5b or genmo/mochi-1-preview)"
            )
        import torch
        from diffusers import DiffusionPipeline

        quiet_progress_bars()
        dev = resolve_device(device)
        if cpu_offload and not dev.startswith("cuda"):
            raise PipelineLoadError("--cpu-offload needs a CUDA device (it offloads GPU memory)")
        torch_dtype = _torch_dtype(dtype, dev)
        try:
            pipe = DiffusionPipeline.from_pretrained(str(model), dtype=torch_dtype)
        except Exception as e:  # noqa: BLE001 - reported as one line, not a traceback
            raise PipelineLoadError(f"--model {model}: cannot load: {type(e).__name__}: {e}") from e
        if "num_frames" not in inspect.signature(pipe.__call__).parameters:
            raise PipelineLoadError(
                f"--model {model}: {type(pipe).__name__} takes no num_frames; not a video pipeline"
            )
        if cpu_offload:
            pipe.enable_model_cpu_offload(device=dev)
        else:
            pipe.to(dev)
        vae = getattr(pipe, "vae", None)
        if vae_tiling:
            if not hasattr(vae, "enable_tiling"):
                raise PipelineLoadError(f"--vae-tiling: {type(vae).__name__} has no tiling")
            vae.enable_tiling()
        if vae_slicing:
            if not hasattr(vae, "enable_slicing"):
                raise PipelineLoadError(f"--vae-slicing: {type(vae).__name__} has no slicing")
            vae.enable_slicing()
        pipe.set_progress_bar_config(disable=True)
        dtype_name = str(torch_dtype).removeprefix("torch.")
        return cls(pipe, describe(pipe, dev, dtype_name, fps))

    def render(self, req: RenderRequest, on_step: StepHook) -> np.ndarray:
        import torch

        kwargs: dict[str, Any] = {
            "prompt": req.prompt,
            "height": req.height,
            "width": req.width,
            "num_frames": req.num_frames,
            "num_inference_steps": req.num_inference_steps,
            "guidance_scale": req.guidance_scale,
            "output_type": "np",
        }
        if req.negative_prompt is not None and self.info.accepts_negative_prompt:
            kwargs["negative_prompt"] = req.negative_prompt
        if self._max_seq is not None:
            kwargs["max_sequence_length"] = self._max_seq
        if req.seed is not None:
            # A CPU generator gives the same video for a seed on any device.
            kwargs["generator"] = torch.Generator("cpu").manual_seed(req.seed)
        total = req.num_inference_steps
        if self._has_callback:

            def callback(_pipe: Any, step: int, _t: Any, tensors: dict[str, Any]) -> dict[str, Any]:
                on_step(step + 1, total)
                return tensors

            kwargs["callback_on_step_end"] = callback
        out = self.pipe(**kwargs)
        frames = getattr(out, "frames", None)
        if frames is None:
            frames = out[0]
        return _first_video(frames)


def _first_video(frames: Any) -> np.ndarray:
    """The first video of a batch as ``(F, H, W, C)``, whatever container the pipeline used."""
    if hasattr(frames, "detach"):  # a torch tensor (output_type="pt"): (B, F, C, H, W)
        frames = frames.detach().float().cpu().numpy().transpose(0, 1, 3, 4, 2)
    if isinstance(frames, list):
        first = frames[0]
        if isinstance(first, list):  # PIL images
            return np.stack([np.asarray(img) for img in first])
        return np.asarray(first)
    array = np.asarray(frames)
    return array[0] if array.ndim == 5 else array


def quiet_progress_bars() -> None:
    """Loading bars are noise in a service log (the load itself is logged once)."""
    from diffusers.utils import logging as diffusers_logging
    from transformers.utils import logging as transformers_logging

    diffusers_logging.disable_progress_bar()
    transformers_logging.disable_progress_bar()


def free_device_memory(device: str) -> None:
    """Returns cached blocks to the driver after an out-of-memory error."""
    if device.startswith("cuda"):
        import torch

        torch.cuda.empty_cache()


def is_out_of_memory(e: BaseException) -> bool:
    """torch's OOM errors (CUDA or generic) and Python's MemoryError."""
    if isinstance(e, MemoryError):
        return True
    try:
        import torch
    except ImportError:  # pragma: no cover
        return False
    kinds = tuple(
        k
        for k in (getattr(torch, "OutOfMemoryError", None), getattr(torch.cuda, "OutOfMemoryError", None))
        if isinstance(k, type)
    )
    return bool(kinds) and isinstance(e, kinds)
