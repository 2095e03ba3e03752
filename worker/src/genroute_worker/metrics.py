"""Prometheus metrics, one registry per app.

Why a registry of its own: tests and the benchmark build several apps in one process; the
global default registry would refuse the second set of metric names.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client import CONTENT_TYPE_LATEST

__all__ = ["Metrics", "CONTENT_TYPE_LATEST"]


class Metrics:
    """Queue length, jobs by outcome and render time."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.queue = Gauge(
            "genroute_worker_queue_length",
            "Jobs waiting for the render thread (the running one not included).",
            registry=self.registry,
        )
        self.in_progress = Gauge(
            "genroute_worker_jobs_in_progress",
            "Jobs being rendered now (0 or 1).",
            registry=self.registry,
        )
        self.jobs = Counter(
            "genroute_worker_jobs",
            "Jobs by outcome: completed, failed, cancelled, or rejected (queue full).",
            ["outcome"],
            registry=self.registry,
        )
        for outcome in ("completed", "failed", "cancelled", "rejected"):
            self.jobs.labels(outcome=outcome)
        self.render_seconds = Histogram(
            "genroute_worker_render_seconds",
            "Time from a job's start on the render thread to its MP4 on disk.",
            buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1200),
            registry=self.registry,
        )

    def render(self) -> bytes:
        return generate_latest(self.registry)
