"""genroute from Python, beside zen-engine and datalogic-py, in one run.

1. One condition per call, each engine compiled once, the input a Python dict per call (how a
   Python agent holds a request), and then the input prepared once (genroute's ``Request``,
   datalogic-py's ``DataHandle``; zen-engine has no such form): genroute's ``Condition.evaluate`` (request dict + State),
   zen-engine's compiled ``PyExpression.evaluate`` and datalogic-py's compiled
   ``Rule.evaluate``, on two of bench/peers' conditions (c1, 2 clauses; c6, 10 clauses),
   written in each engine's language as bench/peers writes them, and a hand-written Python
   function for scale. Every engine's answer is checked before it is timed.
2. ``policy.decide(...)`` per call on bench/peers' policy and on the demo policy (4 backends,
   7 rules, fallbacks): from a dict, from a prebuilt ``genroute.Request``, and the Rust
   ``decide_into`` on the same request, looped in Rust in this process.
3. ``await router.generate(...)`` with a zero-latency simulated backend and the in-memory
   ledger (benches/execute.rs' "first_backend_serves" policy), ``generate_sync``, and the
   Rust ``Router::generate`` looped in Rust in this process.

Prints a Markdown report (medians of repeated timings). Run by scripts/bench-python.
"""

from __future__ import annotations

import asyncio
import json
import pathlib
import platform
import statistics
import sys
import time
from decimal import Decimal
from typing import Any, Callable

import genroute
from genroute import _genroute as native

REPO = pathlib.Path(__file__).resolve().parents[2]
NOW = "2026-11-10T12:00:00Z"

# bench/peers/src/lib.rs CONDITIONS c1 and c6, and their zen and JSONLogic forms
# (bench/peers/src/zen_engine.rs, datalogic_engine.rs).
CONDITIONS = {
    "c1": {
        "genroute": "priority == 'quality' AND budget_available",
        "zen": "priority == 'quality' and budget_available",
        "jsonlogic": {"and": [{"==": [{"var": "priority"}, "quality"]}, {"var": "budget_available"}]},
        "python": lambda c: c["priority"] == "quality" and c["budget_available"],
    },
    "c6": {
        "genroute": "priority != 'speed' AND budget_available AND duration <= 10 "
                    "AND aspect_ratio in ['16:9', '9:16'] AND monthly_spend < monthly_budget * 0.9 "
                    "AND quality_threshold <= 0.9 AND NOT (style == 'anime') AND failures < 3 "
                    "AND hour >= 6 AND day_of_month <= 28",
        "zen": "priority != 'speed' and budget_available and duration <= 10 "
               "and aspect_ratio in ['16:9', '9:16'] and monthly_spend < monthly_budget * 0.9 "
               "and quality_threshold <= 0.9 and not (style == 'anime') and failures < 3 "
               "and hour >= 6 and day_of_month <= 28",
        "jsonlogic": {"and": [
            {"!=": [{"var": "priority"}, "speed"]},
            {"var": "budget_available"},
            {"<=": [{"var": "duration"}, 10]},
            {"in": [{"var": "aspect_ratio"}, ["16:9", "9:16"]]},
            {"<": [{"var": "monthly_spend"}, {"*": [{"var": "monthly_budget"}, 0.9]}]},
            {"<=": [{"var": "quality_threshold"}, 0.9]},
            {"!": {"==": [{"var": "style"}, "anime"]}},
            {"<": [{"var": "failures"}, 3]},
            {">=": [{"var": "hour"}, 6]},
            {"<=": [{"var": "day_of_month"}, 28]},
        ]},
        "python": lambda c: (c["priority"] != "speed" and c["budget_available"] and c["duration"] <= 10
                             and c["aspect_ratio"] in ("16:9", "9:16")
                             and c["monthly_spend"] < c["monthly_budget"] * 0.9
                             and c["quality_threshold"] <= 0.9 and not c["style"] == "anime"
                             and c["failures"] < 3 and c["hour"] >= 6 and c["day_of_month"] <= 28),
    },
}

# bench/peers' base context: quality, 8 s, 16:9, 0.8, cinematic, $40 of $100 spent, veo at $0.50.
REQUEST = {"priority": "quality", "duration": 8, "aspect_ratio": "16:9",
           "quality_threshold": 0.8, "style": "cinematic"}
FLAT = {**REQUEST, "monthly_spend": 40.0, "monthly_budget": 100.0, "cost_threshold": 80.0,
        "cost": 0.5, "budget_available": True, "failures": 0, "hour": 12, "day_of_month": 10}


def per_call(fn: Callable[[], Any], *, target_s: float = 0.2, repeats: int = 7) -> float:
    """Median nanoseconds per call over `repeats` timings of about `target_s` each."""
    n = 1
    while True:
        t = time.perf_counter()
        for _ in range(n):
            fn()
        if time.perf_counter() - t > target_s / 4:
            break
        n *= 4
    n = max(1, int(n * (target_s / 4) / max(time.perf_counter() - t, 1e-9) * 4))
    samples = []
    for _ in range(repeats):
        t = time.perf_counter_ns()
        for _ in range(n):
            fn()
        samples.append((time.perf_counter_ns() - t) / n)
    return statistics.median(samples)


def fmt(ns: float) -> str:
    return f"{ns / 1000:.2f} µs" if ns >= 1000 else f"{ns:.0f} ns"


def main() -> None:
    rows: list[tuple[str, str, float]] = []
    import datalogic_py
    import zen

    peers = genroute.Policy.from_file(REPO / "bench/peers/policy.yaml")
    state = genroute.State(spend=Decimal("40"), now=NOW)
    engine = datalogic_py.Engine()
    for name, c in CONDITIONS.items():
        g = peers.condition(c["genroute"], target="veo")
        z = zen.compile_expression(c["zen"])
        d = engine.compile(json.dumps(c["jsonlogic"]))
        py = c["python"]
        answers = {"genroute": g.evaluate(REQUEST, state), "zen": z.evaluate(FLAT),
                   "datalogic": d.evaluate(FLAT), "python": py(FLAT)}
        assert set(answers.values()) == {True}, answers
        rows.append((f"condition {name}", "genroute `Condition.evaluate(dict, State)`",
                     per_call(lambda: g.evaluate(REQUEST, state))))
        prebuilt = genroute.Request(peers, REQUEST)
        handle = datalogic_py.DataHandle(json.dumps(FLAT))
        assert g.evaluate(prebuilt, state) and d.evaluate_data(handle)
        rows.append((f"condition {name}", "genroute `Condition.evaluate(Request, State)` (request validated once)",
                     per_call(lambda: g.evaluate(prebuilt, state))))
        rows.append((f"condition {name}", "zen-engine `PyExpression.evaluate(dict)`",
                     per_call(lambda: z.evaluate(FLAT))))
        rows.append((f"condition {name}", "datalogic-py `Rule.evaluate(dict)`",
                     per_call(lambda: d.evaluate(FLAT))))
        rows.append((f"condition {name}", "datalogic-py `Rule.evaluate_data(DataHandle)` (data parsed once)",
                     per_call(lambda: d.evaluate_data(handle))))
        rows.append((f"condition {name}", "hand-written Python function",
                     per_call(lambda: py(FLAT))))

    for label, policy, req in [
        ("decide, bench/peers policy (1 backend, 1 rule)", peers, REQUEST),
        ("decide, demo policy (4 backends, 7 rules)", genroute.Policy.demo(), {"priority": "balanced", "aspect_ratio": "9:16"}),
    ]:
        prebuilt = genroute.Request(policy, req)
        rows.append((label, "`policy.decide(dict, State)`", per_call(lambda: policy.decide(req, state))))
        rows.append((label, "`policy.decide(Request, State)`", per_call(lambda: policy.decide(prebuilt, state))))
        rows.append((label, "`policy.explain(Request, State)`", per_call(lambda: policy.explain(prebuilt, state))))
        rust = statistics.median(native._bench_decide(policy, prebuilt, state, 200_000) for _ in range(7))
        rows.append((label, "Rust `decide_into`, same process", rust))

    execute = genroute.Policy.from_yaml("""
budget: {monthly_budget_usd: 100000000, cost_threshold_usd: 1}
backends:
  primary:
    priority: 1
    type: simulated
    cost: {per_video_usd: 0.05}
    quality: {score: 0.9}
    performance: {avg_generation_time_seconds: 30, max_generation_time_seconds: 90}
    simulation: {failure_rate: 0}
    circuit_breaker: {failure_threshold: 4000000000}
""", name="bench.yaml")
    router = genroute.Router(execute, "memory", videos_dir="/tmp/genroute-bench-videos")
    req = genroute.Request(execute, {"prompt": "a red fox", "quality_threshold": Decimal("0.5")})
    assert router.generate_sync(req).video

    async def awaited(n: int) -> float:
        t = time.perf_counter_ns()
        for _ in range(n):
            await router.generate(req)
        return (time.perf_counter_ns() - t) / n

    label = "generate, zero-latency simulated backend, memory ledger"
    rows.append((label, "`await router.generate(Request)`",
                 statistics.median(asyncio.run(awaited(5_000)) for _ in range(5))))
    rows.append((label, "`router.generate_sync(Request)`", per_call(lambda: router.generate_sync(req))))
    rows.append((label, "Rust `Router::generate` on the same router and runtime, same process",
                 statistics.median(native._bench_generate(router, req, 20_000) for _ in range(5))))
    rows.append((label, "Rust `Router::generate` as benches/execute.rs runs it (current-thread runtime, bare store)",
                 statistics.median(native._bench_generate_standalone(execute, req, 20_000) for _ in range(5))))

    print(f"Python {platform.python_version()} ({sys.implementation.name}), genroute {genroute.__version__}, "
          f"zen-engine {version('zen-engine')}, datalogic-py {version('datalogic-py')}; "
          f"{platform.machine()}, {cpu()}; medians.\n")
    print("| benchmark | call | per call | ratio |")
    print("|---|---|---:|---:|")
    base: dict[str, float] = {}
    for group, call, ns in rows:
        base.setdefault(group, ns)
        print(f"| {group} | {call} | {fmt(ns)} | {ns / base[group]:.2f}× |")


def version(dist: str) -> str:
    from importlib.metadata import version as v

    return v(dist)


def cpu() -> str:
    try:
        for line in pathlib.Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


if __name__ == "__main__":
    main()
