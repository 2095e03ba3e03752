"""The router from Python: async generate on the demo policy with the SQLite ledger, the
result as the CLI's JSON, cancellation reaching the Rust future, the sync call, and the
errors a generation can end in."""

from __future__ import annotations

import asyncio
import json
import pathlib
import time
from decimal import Decimal

import pytest

import genroute


def one_backend(*, latency: str = "30", time_scale: str = "0", failure_rate: str = "0",
                budget: str = "100", budget_available: bool = False) -> genroute.Policy:
    return genroute.Policy.from_yaml(f"""
budget: {{monthly_budget_usd: {budget}, cost_threshold_usd: {budget}}}
backends:
  sim:
    priority: 1
    type: simulated
    cost: {{per_video_usd: 0.05}}
    quality: {{score: 0.9}}
    performance: {{avg_generation_time_seconds: {latency}, max_generation_time_seconds: 600}}
    simulation: {{failure_rate: {failure_rate}, time_scale: {time_scale}}}
    selection_criteria: {{budget_available: {str(budget_available).lower()}}}
""", name="one.yaml")


@pytest.fixture
def sqlite(tmp_path: pathlib.Path) -> str:
    return f"sqlite:{tmp_path / 'ledger.sqlite3'}"


def test_async_generate_on_the_demo_policy_with_sqlite(sqlite: str, tmp_path: pathlib.Path) -> None:
    # The demo policy without its simulated failure rates (as the CLI's golden test does), so
    # the outcome does not depend on the random request ids.
    import re

    reliable = re.sub(r"failure_rate: [0-9.]+", "failure_rate: 0", genroute.DEMO_POLICY)
    demo = genroute.Policy.from_yaml(reliable, name="demo.yaml")
    router = genroute.Router(demo, sqlite, videos_dir=tmp_path / "videos")

    async def main() -> list[genroute.Generation]:
        requests = [{"prompt": "a red fox at dawn", "priority": p} for p in ("quality", "speed", "balanced")]
        return await asyncio.gather(*(router.generate(r) for r in requests))

    results = asyncio.run(main())
    for g in results:
        assert g.backend and g.video and g.attempts
        assert g.attempts[-1].outcome == "success"
        assert isinstance(g.cost_usd, Decimal) and g.cost_usd > 0
        assert g.quality is not None and isinstance(g.quality, Decimal)
        # The CLI's JSON shape (`genroute generate --format json`), money exact in to_dict.
        assert set(json.loads(g.to_json())) >= {"request_id", "backend", "model", "video", "cost_usd", "attempts"}
        assert g.to_dict() == json.loads(g.to_json(), parse_float=Decimal)
        assert [a.to_dict() for a in g.attempts] == g.to_dict()["attempts"]
    quality = results[0]
    assert quality.attempts[0].backend == "veo"
    # The ledger holds exactly what was committed, and decisions see it.
    budget = router.budget()
    assert budget.committed_usd == sum((g.cost_usd for g in results), Decimal(0))
    assert budget.spent_usd == budget.committed_usd and budget.reserved_usd == 0
    assert budget.remaining_usd == Decimal(100) - budget.spent_usd
    assert router.state().spend == budget.spent_usd
    assert budget.to_dict()["budget_usd"] == Decimal(100)
    # A second router on the same file sees the same month.
    assert genroute.Router(demo, sqlite).budget().committed_usd == budget.committed_usd


def test_cancelling_the_task_cancels_the_rust_future(sqlite: str) -> None:
    # The backend takes 2 s; the task is cancelled after 0.3 s. If the Rust future went on
    # running, it would commit 0.05 at 2 s: after 2.5 s nothing is committed.
    router = genroute.Router(one_backend(latency="2", time_scale="1"), sqlite)

    async def main() -> None:
        task = asyncio.ensure_future(router.generate({"prompt": "slow"}))
        await asyncio.sleep(0.3)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        await asyncio.sleep(2.5)

    asyncio.run(main())
    b = router.budget()
    assert b.committed_usd == 0, b.to_dict()
    # The reservation sent before the cancel stays open until it settles or expires (the
    # provider may have started the job), as when a server's client goes away.
    assert b.reserved_usd + b.in_doubt_usd == Decimal("0.05"), b.to_dict()


def test_wait_for_timeouts_cancel_too() -> None:
    # As above: past the backend's 2 s, a Rust future still running would have committed.
    router = genroute.Router(one_backend(latency="2", time_scale="1"))

    async def main() -> None:
        with pytest.raises(asyncio.TimeoutError):
            await asyncio.wait_for(router.generate({"prompt": "slow"}), 0.2)
        await asyncio.sleep(2.5)

    asyncio.run(main())
    assert router.budget().committed_usd == 0


def test_generate_sync_releases_the_gil(demo: genroute.Policy) -> None:
    import threading

    router = genroute.Router(one_backend(latency="1", time_scale="1"))
    ticks = 0
    done = threading.Event()

    def count() -> None:
        nonlocal ticks
        while not done.is_set():
            ticks += 1
            time.sleep(0.001)

    t = threading.Thread(target=count)
    t.start()
    g = router.generate_sync({"prompt": "a fox"})
    done.set()
    t.join()
    assert g.backend == "sim" and g.cost_usd == Decimal("0.05")
    assert ticks > 100  # the other thread ran while the call waited


def test_nothing_eligible_raises_with_the_explanation(demo: genroute.Policy) -> None:
    router = genroute.Router(demo)
    with pytest.raises(genroute.NoBackendAvailable) as info:
        router.generate_sync({"priority": "speed", "quality_threshold": Decimal("0.95")})
    e = info.value.explanation
    assert isinstance(e, genroute.Explanation) and e.backend is None
    assert not isinstance(info.value, genroute.BudgetExceeded)
    assert all(not b.eligible for b in e.backends)


def test_budget_stops_everything_raises_budget_exceeded() -> None:
    router = genroute.Router(one_backend(budget="0.01", budget_available=True))
    with pytest.raises(genroute.BudgetExceeded) as info:
        router.generate_sync({"prompt": "x"})
    assert isinstance(info.value, genroute.NoBackendAvailable)
    assert info.value.explanation is not None
    assert any("budget" in r for r in info.value.explanation.backends[0].reasons)


def test_every_backend_failing_raises_generation_failed() -> None:
    router = genroute.Router(one_backend(failure_rate="1"))

    async def main() -> None:
        with pytest.raises(genroute.GenerationFailed) as info:
            await router.generate({"prompt": "x"})
        g = info.value.generation
        assert g is not None and g.video is None and g.attempts[0].outcome != "success"
        assert g.cost_usd == 0

    asyncio.run(main())
    assert router.budget().spent_usd == 0


def test_store_errors(demo: genroute.Policy) -> None:
    with pytest.raises(genroute.StoreError, match="is not \"memory\""):
        genroute.Router(demo, "postgres://x")
    # A password in a store URL never reaches an error or a repr.
    with pytest.raises(genroute.StoreError) as info:
        genroute.Router(demo, "redis://:hunter2@127.0.0.1:1/0", store_timeout=0.5)
    assert "hunter2" not in str(info.value)
    with pytest.raises(genroute.StoreError) as info:
        genroute.Router(demo, "bogus://:hunter2@x")
    assert "hunter2" not in str(info.value)
    with pytest.raises(ValueError):
        genroute.Router(demo, store_timeout=-1)


def test_api_keys_never_show(tmp_path: pathlib.Path) -> None:
    from conftest import POLICIES

    secret = "sk-do-not-print-1234"
    policy = genroute.Policy.from_file(POLICIES / "videogen.yaml", env={"PIXVERSE_API_KEY": secret})
    router = genroute.Router(policy, env={"PIXVERSE_API_KEY": secret, "VERTEX_ACCESS_TOKEN": secret})
    texts = [repr(router), repr(policy), policy.explain({"priority": "speed"}).to_json(),
             policy.explain({"priority": "speed"}).to_text(), router.state().__repr__()]
    assert all(secret not in t for t in texts)


def test_requests_are_validated_before_anything_runs(demo: genroute.Policy) -> None:
    router = genroute.Router(demo)
    with pytest.raises(genroute.RequestError):
        router.generate_sync({"priorty": "speed"})

    async def main() -> None:
        with pytest.raises(genroute.RequestError):
            await router.generate({"priorty": "speed"})

    asyncio.run(main())
    assert router.budget().spent_usd == 0
    assert "demo.yaml" in repr(router) and router.policy is demo


def test_two_routers_share_one_redis_ledger(demo: genroute.Policy, tmp_path: pathlib.Path) -> None:
    """A real redis-server (scripts/test installs it): two routers, as two agents would be,
    spend from one ledger, and each sees the other's spend to the cent."""
    import shutil
    import socket
    import subprocess

    server = shutil.which("redis-server")
    if server is None:
        pytest.skip("redis-server is not installed (scripts/test installs it)")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen([server, "--port", str(port), "--save", "", "--appendonly", "no",
                             "--dir", str(tmp_path)], stdout=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), 0.2).close()
                break
            except OSError:
                assert time.monotonic() < deadline, "redis-server did not start"
                time.sleep(0.05)
        url = f"redis://127.0.0.1:{port}/0"
        policy = one_backend()
        a, b = genroute.Router(policy, url), genroute.Router(policy, url)

        async def main() -> list[genroute.Generation]:
            return await asyncio.gather(*(r.generate({"prompt": "one ledger"}) for r in (a, b) * 5))

        results = asyncio.run(main())
        assert all(g.backend == "sim" for g in results)
        assert a.budget().spent_usd == b.budget().spent_usd == Decimal("0.50")
    finally:
        proc.terminate()
        proc.wait(timeout=10)
