"""One policy and one router shared by threads: same answers as one thread, exact money."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal

import genroute

REQUESTS = [
    {"priority": "quality"},
    {"priority": "speed"},
    {"priority": "balanced", "aspect_ratio": "9:16"},
    {"priority": "balanced", "quality_threshold": Decimal("0.70")},
    {"priority": "balanced", "tier": "enterprise"},
]
STATES = [None, {"spend": Decimal("99.98")}, {"breakers": {"veo": "open"}}, {"failures": 1}]


def test_threads_deciding_at_once_agree_with_one_thread(demo: genroute.Policy) -> None:
    now = "2026-11-10T12:00:00Z"
    work = [(r, {**(s or {}), "now": now}) for r in REQUESTS for s in STATES]
    expected = [demo.decide(r, s) for r, s in work]
    barrier = threading.Barrier(8)

    def run(_: int) -> list[genroute.Decision]:
        barrier.wait()
        out = []
        for _ in range(200):
            out = [demo.decide(r, s) for r, s in work]
        return out

    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(run, range(8)))
    assert all(r == expected for r in results)
    # Explanations from many threads too.
    with ThreadPoolExecutor(4) as pool:
        texts = list(pool.map(lambda rs: demo.explain(*rs).to_json(), work * 4))
    assert texts == [demo.explain(*rs).to_json() for rs in work] * 4


def test_threads_generating_at_once_spend_exactly() -> None:
    policy = genroute.Policy.from_yaml("""
budget: {monthly_budget_usd: 1000, cost_threshold_usd: 1000}
backends:
  sim:
    priority: 1
    type: simulated
    cost: {per_video_usd: 0.01}
    quality: {score: 0.9}
    performance: {avg_generation_time_seconds: 1, max_generation_time_seconds: 60}
    circuit_breaker: {failure_threshold: 4000000000}
""")
    router = genroute.Router(policy)
    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(lambda i: router.generate_sync({"prompt": f"fox {i}"}), range(200)))
    assert {g.backend for g in results} == {"sim"}
    assert router.budget().committed_usd == Decimal("2.00")
