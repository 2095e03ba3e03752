"""Jobs: their records, the bounded queue and the one render thread.

Why this shape: a GPU renders one video at a time well and two badly (memory), so one
thread owns the pipeline and takes jobs from a bounded FIFO; the asyncio handlers only touch
job records under a short lock and never wait for a render. A full queue is refused at
once (429) instead of growing without bound. Cancelling a queued job is immediate; a running
one is stopped by its own step callback at the next denoising step. Finished records live
for a retention time, then they and their files are dropped.
"""

from __future__ import annotations

import logging
import math
import secrets
import shutil
import tempfile
import threading
import time
from collections import OrderedDict, deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from genroute_worker.encode import write_mp4
from genroute_worker.metrics import Metrics
from genroute_worker.pipeline import (
    RenderCancelled,
    Renderer,
    RenderRequest,
    free_device_memory,
    is_out_of_memory,
)

log = logging.getLogger("genroute_worker.jobs")

QUEUED, IN_PROGRESS, COMPLETED, FAILED, CANCELLED = (
    "queued",
    "in_progress",
    "completed",
    "failed",
    "cancelled",
)
FINISHED = frozenset({COMPLETED, FAILED, CANCELLED})

#: Test-only markers (honoured only with Settings.test_faults) that raise inside the real
#: pipeline's step callback, so the failure travels through diffusers like a real one.
FAULT_MARKERS = {"[[fault:oom]]": MemoryError, "[[fault:error]]": RuntimeError}


class QueueFull(Exception):
    """The bounded queue has no room; ``retry_after`` is whole seconds (at least 1)."""

    def __init__(self, retry_after: int) -> None:
        super().__init__("queue full")
        self.retry_after = retry_after


@dataclass
class Job:
    """One video job; mutated only under JobManager's lock."""

    id: str
    request: RenderRequest
    fps: int
    seconds: str
    model: str
    created_at: int
    status: str = QUEUED
    progress: int = 0
    completed_at: int | None = None
    error: dict[str, str] | None = None
    cancel_requested: bool = False
    path: Path | None = None
    started: float | None = None  # monotonic
    finished: float | None = None  # monotonic
    frames_made: int | None = None
    seq: int = 0  # order of arrival in the queue
    extras: dict[str, Any] = field(default_factory=dict)

    def public(self) -> dict[str, Any]:
        """The OpenAI-style video object."""
        body: dict[str, Any] = {
            "id": self.id,
            "object": "video",
            "status": self.status,
            "progress": self.progress,
            "model": self.model,
            "prompt": self.request.prompt,
            "seconds": self.seconds,
            "size": f"{self.request.width}x{self.request.height}",
            "created_at": self.created_at,
            "completed_at": self.completed_at,
            "error": self.error,
            "num_frames": self.request.num_frames,
            "fps": self.fps,
        }
        if self.cancel_requested and self.status == IN_PROGRESS:
            body["cancel_requested"] = True
        return body


class JobManager:
    """Owns the records, the queue and the render thread."""

    def __init__(
        self,
        renderer: Renderer,
        metrics: Metrics,
        *,
        queue_size: int,
        output_dir: Path | None,
        retention_seconds: float,
        max_records: int,
        test_faults: bool = False,
    ) -> None:
        self.renderer = renderer
        self.metrics = metrics
        self.queue_size = queue_size
        self.retention = retention_seconds
        self.max_records = max_records
        self.test_faults = test_faults
        self._own_dir = output_dir is None
        self.output_dir = Path(tempfile.mkdtemp(prefix="genroute-worker-")) if output_dir is None else output_dir
        self.output_dir.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._wake = threading.Condition(self._lock)
        self._jobs: OrderedDict[str, Job] = OrderedDict()  # oldest first
        self._queue: deque[Job] = deque()
        self._current: Job | None = None
        self._seq = 0
        self._render_times: deque[float] = deque(maxlen=20)
        self._stopping = False
        self._thread = threading.Thread(target=self._run, name="render", daemon=True)

    # ---- lifecycle -------------------------------------------------------------------

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        """Stops taking jobs, asks a running one to stop at its next step, cleans files."""
        with self._wake:
            self._stopping = True
            for job in self._queue:
                self._finish(job, CANCELLED)
            self._queue.clear()
            if self._current is not None:
                self._current.cancel_requested = True
            self._wake.notify_all()
        self._thread.join(timeout)
        if self._own_dir:
            shutil.rmtree(self.output_dir, ignore_errors=True)

    # ---- what the handlers call (short, under the lock) ------------------------------

    def submit(self, request: RenderRequest, *, fps: int, seconds: str, model: str) -> dict[str, Any]:
        with self._wake:
            if len(self._queue) >= self.queue_size or self._stopping:
                self.metrics.jobs.labels(outcome="rejected").inc()
                raise QueueFull(self._retry_after())
            job = Job(
                id=f"video_{secrets.token_hex(12)}",
                request=request,
                fps=fps,
                seconds=seconds,
                model=model,
                created_at=int(time.time()),
            )
            self._seq += 1
            job.seq = self._seq
            self._jobs[job.id] = job
            self._queue.append(job)
            self.metrics.queue.set(len(self._queue))
            self._evict_overflow()
            self._wake.notify()
            return job.public()

    def get(self, job_id: str) -> dict[str, Any] | None:
        with self._lock:
            job = self._jobs.get(job_id)
            return None if job is None else job.public()

    def content(self, job_id: str) -> tuple[str | None, Path | None]:
        """The job's status and, when completed, its file."""
        with self._lock:
            job = self._jobs.get(job_id)
            if job is None:
                return None, None
            return job.status, job.path if job.status == COMPLETED else None

    def list(self, limit: int, after: str | None) -> tuple[list[dict[str, Any]], bool] | None:
        """Newest first; ``after`` is the id of the last item of the previous page."""
        with self._lock:
            newest = list(reversed(self._jobs.values()))
            if after is not None:
                ids = [j.id for j in newest]
                if after not in ids:
                    return None
                newest = newest[ids.index(after) + 1 :]
            page = newest[:limit]
            return [j.public() for j in page], len(newest) > limit

    def cancel(self, job_id: str) -> tuple[str, dict[str, Any]] | None:
        """Returns (what happened, object): cancelled | requested | unchanged | finished."""
        with self._lock:
            job = self._jobs.get(job_id)
            if job is None:
                return None
            if job.status == QUEUED:
                self._queue.remove(job)
                self.metrics.queue.set(len(self._queue))
                self._finish(job, CANCELLED)
                return "cancelled", job.public()
            if job.status == IN_PROGRESS:
                job.cancel_requested = True
                return "requested", job.public()
            if job.status == CANCELLED:
                return "unchanged", job.public()
            return "finished", job.public()

    def queued(self) -> int:
        with self._lock:
            return len(self._queue)

    def busy(self) -> bool:
        with self._lock:
            return self._current is not None

    def poll_hint_ms(self, job_id: str, ceiling: int) -> int | None:
        """How long a poller should wait: the expected time left, within [100, ceiling] ms."""
        with self._lock:
            job = self._jobs.get(job_id)
            if job is None or job.status in FINISHED:
                return None
            mean = self._mean_render()
            if mean is None:
                return ceiling
            if job.status == IN_PROGRESS:
                left = mean * (1 - job.progress / 100)
            else:
                # Places ahead, from arrival order (O(1); cancelled jobs ahead make it an
                # over-estimate, which is harmless for a hint).
                ahead = job.seq - self._queue[0].seq if self._queue else 0
                left = mean * (ahead + 1 + (self._current is not None))
            return int(min(ceiling, max(100, left * 1000)))

    def mean_render_seconds(self) -> float | None:
        with self._lock:
            return self._mean_render()

    def sweep(self) -> int:
        """Drops finished records past retention (and their files); returns how many."""
        now = time.monotonic()
        with self._lock:
            old = [
                j
                for j in self._jobs.values()
                if j.status in FINISHED and j.finished is not None and now - j.finished >= self.retention
            ]
            for job in old:
                self._drop(job)
            return len(old)

    # ---- internals (lock held) -------------------------------------------------------

    def _mean_render(self) -> float | None:
        return sum(self._render_times) / len(self._render_times) if self._render_times else None

    def _retry_after(self) -> int:
        """Seconds until the running job is expected to free a place, at least 1."""
        mean = self._mean_render()
        if mean is None:
            return 1
        left = mean
        if self._current is not None and self._current.started is not None:
            left = max(0.0, mean - (time.monotonic() - self._current.started))
        return max(1, math.ceil(left))

    def _evict_overflow(self) -> None:
        if len(self._jobs) <= self.max_records:
            return
        for job in [j for j in self._jobs.values() if j.status in FINISHED]:
            if len(self._jobs) <= self.max_records:
                break
            self._drop(job)

    def _drop(self, job: Job) -> None:
        self._jobs.pop(job.id, None)
        if job.path is not None:
            job.path.unlink(missing_ok=True)
            job.path = None

    def _finish(self, job: Job, status: str, error: dict[str, str] | None = None) -> None:
        job.status = status
        job.error = error
        job.completed_at = int(time.time())
        job.finished = time.monotonic()
        if status == COMPLETED:
            job.progress = 100
        self.metrics.jobs.labels(outcome=status).inc()

    # ---- the render thread -----------------------------------------------------------

    def _run(self) -> None:
        while True:
            with self._wake:
                while not self._queue and not self._stopping:
                    self._wake.wait()
                if self._stopping:
                    return
                job = self._queue.popleft()
                self.metrics.queue.set(len(self._queue))
                job.status = IN_PROGRESS
                job.started = time.monotonic()
                self._current = job
                self.metrics.in_progress.set(1)
            try:
                self._render(job)
            finally:
                with self._lock:
                    self._current = None
                    self.metrics.in_progress.set(0)

    def _on_step(self, job: Job, fault: type[BaseException] | None) -> Any:
        def hook(done: int, total: int) -> None:
            with self._lock:
                # 99 at most until the file is written.
                job.progress = max(job.progress, min(99, int(100 * done / max(total, 1))))
                stop = job.cancel_requested
            if stop:
                raise RenderCancelled()
            if fault is not None:
                raise fault(f"injected fault after step {done} of {total}")

        return hook

    def _render(self, job: Job) -> None:
        req = job.request
        fault = None
        if self.test_faults:
            fault = next((k for m, k in FAULT_MARKERS.items() if m in req.prompt), None)
        t0 = time.perf_counter()
        try:
            frames = self.renderer.render(req, self._on_step(job, fault))
            if frames.shape[0] < req.num_frames:
                raise RuntimeError(
                    f"the pipeline returned {frames.shape[0]} frames, fewer than num_frames {req.num_frames}"
                )
            if tuple(frames.shape[1:3]) != (req.height, req.width):
                raise RuntimeError(
                    f"the pipeline returned {frames.shape[2]}x{frames.shape[1]} frames, not "
                    f"{req.width}x{req.height}"
                )
            with self._lock:
                job.frames_made = int(frames.shape[0])
                if job.cancel_requested:
                    raise RenderCancelled()
            path = self.output_dir / f"{job.id}.mp4"
            write_mp4(frames[: req.num_frames], path, job.fps)
        except RenderCancelled:
            with self._lock:
                self._finish(job, CANCELLED)
            log.info("job %s cancelled at %d%%", job.id, job.progress)
            return
        except BaseException as e:  # noqa: BLE001 - a job's failure must not end the thread
            oom = is_out_of_memory(e)
            if oom:
                free_device_memory(self.renderer.info.device)
            message = str(e).strip() or type(e).__name__
            with self._lock:
                self._finish(
                    job,
                    FAILED,
                    {"code": "out_of_memory" if oom else "render_failed", "message": message[:2000]},
                )
            log.warning("job %s failed: %s: %s", job.id, type(e).__name__, message[:500])
            if not isinstance(e, Exception) and not oom:
                raise
            return
        elapsed = time.perf_counter() - t0
        with self._lock:
            self._render_times.append(elapsed)
            job.path = path
            self._finish(job, COMPLETED)
        self.metrics.render_seconds.observe(elapsed)
        log.info("job %s completed in %.3f s", job.id, elapsed)
