"""Command line: flags (with ``GENROUTE_WORKER_*`` environment fallbacks), load, serve.

Why the care: this is what an operator runs on a GPU box by hand or from systemd, so a
wrong flag, a bad environment value or an unloadable model directory ends with one clear
line naming what to fix (exit 2 for usage, 1 for a model that won't load), never a
traceback. The model is loaded before the port opens, so ``/health`` answering means the
pipeline is ready.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import sys
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path

from genroute_worker import __version__
from genroute_worker.config import Settings

ENV_PREFIX = "GENROUTE_WORKER_"
DTYPES = ("auto", "float32", "float16", "bfloat16")


class UsageError(Exception):
    """A flag or environment value is wrong; the message says which and how to fix it."""


def _positive(name: str) -> Callable[[str], int]:
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{name} must be a whole number, not {text!r}") from None
        if value < 1:
            raise argparse.ArgumentTypeError(f"{name} must be at least 1, not {value}")
        return value

    return parse


def _port(text: str) -> int:
    value = _positive("--port")(text)
    if value > 65535:
        raise argparse.ArgumentTypeError(f"--port must be 1 to 65535, not {value}")
    return value


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a number of seconds, not {text!r}") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be more than 0 seconds, not {text}")
    return value


def _guidance(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"--guidance-scale must be a number, not {text!r}") from None
    if not 0 <= value <= 100:
        raise argparse.ArgumentTypeError(f"--guidance-scale must be 0 to 100, not {text}")
    return value


def _device(text: str) -> str:
    if text in ("auto", "cpu", "cuda") or (text.startswith("cuda:") and text[5:].isdigit()):
        return text
    raise argparse.ArgumentTypeError(f"--device must be auto, cpu, cuda or cuda:N, not {text!r}")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="genroute-worker",
        description="Serve a local diffusers text-to-video pipeline (CogVideoX, Mochi 1, ...) "
        "over the OpenAI-style /v1/videos job API that genroute speaks. Every flag can also be "
        "set as GENROUTE_WORKER_<FLAG> (e.g. GENROUTE_WORKER_PORT=8001); a flag wins.",
    )
    add = p.add_argument
    add("--model", type=Path, help="diffusers pipeline directory (with model_index.json); required")
    add("--model-id", help="the id reported as `model` and accepted in requests (default: the directory name)")
    add("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    add("--port", type=_port, default=8001, help="port to listen on (default 8001)")
    add("--device", type=_device, default="auto", help="auto (CUDA when present, else CPU), cpu, cuda, cuda:N")
    add("--dtype", choices=DTYPES, default="auto", help="weights dtype; auto = bfloat16 on CUDA (float16 "
        "without bf16 support), float32 on CPU")
    add("--cpu-offload", action="store_true", help="enable_model_cpu_offload: keep only the running model on the GPU")
    add("--vae-tiling", action="store_true", help="decode the VAE in tiles (less memory for large sizes)")
    add("--vae-slicing", action="store_true", help="decode the VAE a slice at a time")
    add("--queue-size", type=_positive("--queue-size"), default=8, help="jobs that may wait (default 8); more get 429")
    add("--output-dir", type=Path, help="where MP4s are written (default: a temporary directory removed on exit)")
    add("--retention", type=_seconds, default=3600.0, help="seconds a finished job and its file are kept (default 3600)")
    add("--max-records", type=_positive("--max-records"), default=1000, help="job records kept at most (default 1000)")
    add("--poll-after-ms", type=_positive("--poll-after-ms"), default=1000,
        help="longest openai-poll-after-ms hint (default 1000; shorter when the job should end sooner)")
    add("--max-body-bytes", type=_positive("--max-body-bytes"), default=1 << 20, help="largest create body (default 1 MiB)")
    add("--fps", type=_positive("--fps"), help="default fps (default: the model's: CogVideoX 8, Mochi 30)")
    add("--num-frames", type=_positive("--num-frames"), help="default num_frames when neither num_frames nor seconds is sent")
    add("--steps", type=_positive("--steps"), help="default num_inference_steps (default: the pipeline's)")
    add("--guidance-scale", type=_guidance, help="default guidance_scale (default: the pipeline's)")
    add("--max-frames", type=_positive("--max-frames"), default=1000, help="largest num_frames accepted (default 1000)")
    add("--max-side", type=_positive("--max-side"), default=4096, help="largest width or height accepted (default 4096)")
    add("--max-steps", type=_positive("--max-steps"), default=1000, help="largest num_inference_steps accepted (default 1000)")
    add("--log-level", choices=("debug", "info", "warning", "error"), default="info")
    add("--version", action="version", version=f"genroute-worker {__version__}")
    return p


_BOOL_ENV = {"1": True, "true": True, "yes": True, "on": True, "0": False, "false": False, "no": False, "off": False, "": False}


def _env_args(parser: argparse.ArgumentParser, environ: dict[str, str]) -> list[str]:
    """Environment values as extra argv placed before the real one (so flags win)."""
    out: list[str] = []
    for action in parser._actions:  # noqa: SLF001 - argparse has no public listing
        if not action.option_strings or action.dest in ("help", "version"):
            continue
        var = ENV_PREFIX + action.dest.upper()
        if var not in environ:
            continue
        value = environ[var]
        flag = action.option_strings[0]
        if action.nargs == 0:
            if value.strip().lower() not in _BOOL_ENV:
                raise UsageError(f"{var}={value!r}: use 1/true/yes/on or 0/false/no/off")
            if _BOOL_ENV[value.strip().lower()]:
                out.append(flag)
        else:
            out += [flag, value]
    return out


def parse_settings(argv: Sequence[str] | None = None, environ: dict[str, str] | None = None) -> Settings:
    """Flags and environment to Settings; UsageError or SystemExit(2) on bad input."""
    environ = dict(os.environ if environ is None else environ)
    parser = build_parser()
    args_in = list(sys.argv[1:] if argv is None else argv)
    env_argv = _env_args(parser, environ)
    if env_argv:
        # Parse the environment alone first so a bad value is blamed on its variable.
        try:
            with open(os.devnull, "w") as null, contextlib.redirect_stderr(null):
                parser.parse_args(env_argv)
        except SystemExit:
            bad = " ".join(env_argv)
            raise UsageError(f"a GENROUTE_WORKER_* variable has a bad value (as flags: {bad}); see --help") from None
    args = parser.parse_args(env_argv + args_in)
    if args.model is None:
        parser.error("--model DIR is required (a diffusers pipeline directory, e.g. /models/CogVideoX-5b)")
    model = args.model.expanduser().resolve()
    if not model.is_dir():
        raise UsageError(f"--model {args.model}: no such directory")
    if args.output_dir is not None:
        out = args.output_dir.expanduser()
        try:
            out.mkdir(parents=True, exist_ok=True)
            probe = tempfile.NamedTemporaryFile(dir=out, prefix=".write-test-")
            probe.close()
        except OSError as e:
            raise UsageError(f"--output-dir {out}: cannot write there ({e.strerror or e})") from None
    return Settings(
        model=model,
        model_id=args.model_id or model.name,
        host=args.host,
        port=args.port,
        device=args.device,
        dtype=args.dtype,
        cpu_offload=args.cpu_offload,
        vae_tiling=args.vae_tiling,
        vae_slicing=args.vae_slicing,
        queue_size=args.queue_size,
        output_dir=args.output_dir,
        retention_seconds=args.retention,
        max_records=args.max_records,
        poll_after_ms=args.poll_after_ms,
        max_body_bytes=args.max_body_bytes,
        fps=args.fps,
        num_frames=args.num_frames,
        num_inference_steps=args.steps,
        guidance_scale=args.guidance_scale,
        max_frames=args.max_frames,
        max_side=args.max_side,
        max_steps=args.max_steps,
        log_level=args.log_level,
        test_faults=environ.get("GENROUTE_WORKER_TEST_FAULTS") == "1",
    )


def main(argv: Sequence[str] | None = None) -> int:
    try:
        settings = parse_settings(argv)
    except UsageError as e:
        print(f"genroute-worker: error: {e}", file=sys.stderr)
        return 2
    logging.basicConfig(
        level=settings.log_level.upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    os.environ.setdefault("HF_HUB_OFFLINE", "1")  # weights come from --model, never the hub
    from genroute_worker.pipeline import DiffusersRenderer, PipelineLoadError

    log = logging.getLogger("genroute_worker")
    try:
        renderer = DiffusersRenderer.load(
            settings.model,
            device=settings.device,
            dtype=settings.dtype,
            cpu_offload=settings.cpu_offload,
            vae_tiling=settings.vae_tiling,
            vae_slicing=settings.vae_slicing,
            fps=settings.fps,
        )
    except PipelineLoadError as e:
        print(f"genroute-worker: error: {e}", file=sys.stderr)
        return 1
    info = renderer.info
    log.info(
        "loaded %s from %s as %r on %s (%s); sizes in multiples of %d, frames %s",
        info.class_name,
        settings.model,
        settings.model_id,
        info.device,
        info.dtype,
        info.spatial_multiple,
        f"{info.temporal_factor}*k+1" if info.temporal_factor > 1 else "any",
    )
    if settings.test_faults:
        log.warning("GENROUTE_WORKER_TEST_FAULTS=1: prompt fault markers are honoured (tests only)")
    import uvicorn

    from genroute_worker.app import create_app

    app = create_app(settings, renderer)
    try:
        uvicorn.run(app, host=settings.host, port=settings.port, log_level=settings.log_level, access_log=False)
    except OSError as e:
        print(f"genroute-worker: error: cannot listen on {settings.host}:{settings.port}: {e}", file=sys.stderr)
        return 1
    return 0
