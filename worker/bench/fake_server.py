"""The worker's HTTP layer around a zero-cost pipeline, for the benchmark only.

Why: to measure what the server itself costs (parsing, validation, the job records, the
render thread hand-off, JSON answers) without the model's time in the way. The fake
returns black frames at once; the MP4 is still encoded (that part is real). The real
server path (``python -m genroute_worker``) always loads with from_pretrained.

    python worker/bench/fake_server.py --port 8101 [--queue-size N]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from genroute_worker.config import Settings  # noqa: E402
from genroute_worker.pipeline import PipelineInfo, RenderRequest, StepHook  # noqa: E402

INFO = PipelineInfo(
    class_name="FakePipeline",
    device="cpu",
    dtype="none",
    spatial_multiple=2,
    temporal_factor=1,
    default_width=16,
    default_height=16,
    default_num_frames=1,
    default_fps=8,
    default_steps=1,
    default_guidance=1.0,
    accepts_negative_prompt=True,
)


class FakeRenderer:
    """Black frames of the asked size, one step reported, no model."""

    info = INFO

    def render(self, req: RenderRequest, on_step: StepHook) -> np.ndarray:
        on_step(req.num_inference_steps, req.num_inference_steps)
        return np.zeros((req.num_frames, req.height, req.width, 3), dtype=np.uint8)


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--port", type=int, default=8101)
    p.add_argument("--queue-size", type=int, default=1_000_000)
    args = p.parse_args()
    import uvicorn

    from genroute_worker.app import create_app

    settings = Settings(
        model=Path(tempfile.gettempdir()),
        model_id="fake",
        port=args.port,
        queue_size=args.queue_size,
        max_records=2_000_000,
    )
    app = create_app(settings, FakeRenderer())
    uvicorn.run(app, host="127.0.0.1", port=args.port, log_level="warning", access_log=False)


if __name__ == "__main__":
    main()
