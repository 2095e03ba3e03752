"""Shared fixtures: tiny model directories and real worker subprocesses.

Why session-scoped: a worker start costs ~10 s of imports on this 2-core machine, so each
model gets one worker that the test files share; tests that need special flags start
their own. ``GENROUTE_WORKER_TEST_DEVICE=cuda`` runs the same tests on a GPU
(scripts/gpu-check).
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from serve import running_worker  # noqa: E402
from tiny_models import build_cogvideox, build_mochi  # noqa: E402

DEVICE = os.environ.get("GENROUTE_WORKER_TEST_DEVICE", "cpu")
DTYPE = os.environ.get("GENROUTE_WORKER_TEST_DTYPE", "float32")


@pytest.fixture(scope="session")
def models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("tiny")
    return {"cogvideox": build_cogvideox(root / "cogvideox"), "mochi": build_mochi(root / "mochi")}


def start(model: Path, **flags: Any):  # type: ignore[no-untyped-def]
    flags.setdefault("device", DEVICE)
    flags.setdefault("dtype", DTYPE)
    return running_worker(model, **flags)


@pytest.fixture(scope="session")
def cog(models: dict[str, Path]) -> Iterator[httpx.Client]:
    """The CogVideoX worker: queue of 3, fault markers on, short poll hints."""
    with start(
        models["cogvideox"],
        model_id="CogVideoX-5b",
        queue_size=3,
        poll_after_ms=500,
        env={"GENROUTE_WORKER_TEST_FAULTS": "1"},
    ) as url:
        with httpx.Client(base_url=url, timeout=30) as client:
            yield client


@pytest.fixture(scope="session")
def mochi(models: dict[str, Path]) -> Iterator[httpx.Client]:
    with start(models["mochi"]) as url:
        with httpx.Client(base_url=url, timeout=30) as client:
            yield client


def wait_for(client: httpx.Client, video_id: str, statuses: set[str], timeout: float = 60.0) -> dict[str, Any]:
    """Polls until the job reaches one of ``statuses``; fails the test on timeout."""
    deadline = time.monotonic() + timeout
    while True:
        r = client.get(f"/v1/videos/{video_id}")
        assert r.status_code == 200, r.text
        body = r.json()
        if body["status"] in statuses:
            return body
        finished = {"completed", "failed", "cancelled"}
        assert body["status"] not in finished, f"{video_id} ended {body['status']}: {body}"
        assert time.monotonic() < deadline, f"{video_id} still {body['status']} after {timeout} s"
        time.sleep(0.02)


def decode(data: bytes) -> tuple[int, int, int, float]:
    """(frames, width, height, fps) of an MP4, by decoding every frame with PyAV."""
    import io

    import av

    with av.open(io.BytesIO(data)) as container:
        stream = container.streams.video[0]
        frames = list(container.decode(stream))
        fps = float(stream.average_rate) if stream.average_rate else 0.0
    return len(frames), frames[0].width, frames[0].height, fps


def metric(client: httpx.Client, line_prefix: str) -> float:
    """The value of the first Prometheus sample line starting with ``line_prefix``."""
    text = client.get("/metrics").text
    for line in text.splitlines():
        if line.startswith(line_prefix):
            return float(line.rsplit(" ", 1)[1])
    raise AssertionError(f"no metric {line_prefix!r} in:\n{text}")
