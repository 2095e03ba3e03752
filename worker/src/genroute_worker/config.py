"""The worker's settings, one frozen value shared by the CLI, the app and the job runner.

Why a separate module: the app, the job manager and the benchmark build their parts from the
same settings without importing argparse or torch.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Settings:
    """Everything the operator can set (see ``genroute-worker --help``)."""

    model: Path
    model_id: str
    host: str = "127.0.0.1"
    port: int = 8001
    device: str = "auto"  # auto | cpu | cuda | cuda:N
    dtype: str = "auto"  # auto | float32 | float16 | bfloat16
    cpu_offload: bool = False
    vae_tiling: bool = False
    vae_slicing: bool = False
    queue_size: int = 8
    output_dir: Path | None = None
    retention_seconds: float = 3600.0
    max_records: int = 1000
    poll_after_ms: int = 1000
    max_body_bytes: int = 1 << 20
    # Request defaults; None means "the pipeline's own default".
    fps: int | None = None
    num_frames: int | None = None
    num_inference_steps: int | None = None
    guidance_scale: float | None = None
    # Bounds every request is checked against.
    max_frames: int = 1000
    max_side: int = 4096
    max_steps: int = 1000
    log_level: str = "info"
    # Test-only: lets a prompt marker raise inside the pipeline's step callback.
    test_faults: bool = False
