"""examples/python/videogen_agent.py runs with no keys, and its report has the seed's fields."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from decimal import Decimal

from conftest import REPO

EXAMPLE = REPO / "examples" / "python" / "videogen_agent.py"


def test_the_example_agent_runs_on_the_demo_policy(tmp_path) -> None:  # type: ignore[no-untyped-def]
    env = {**os.environ, "GENROUTE_DATA_DIR": str(tmp_path)}
    out = subprocess.run([sys.executable, str(EXAMPLE)], capture_output=True, text=True,
                         env=env, timeout=120, cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    reports = [json.loads(line) for line in out.stdout.splitlines() if line.startswith("{")]
    assert len(reports) >= 3
    # The demo policy's simulated backends fail now and then (seeded by the random request
    # id), as real ones do: a failed generation is reported as the seed's agent reports it,
    # and costs nothing (its failures are not in doubt).
    served = [r for r in reports if r["success"]]
    assert served, reports
    for r in reports:
        if not r["success"]:
            assert r["error"], r
            continue
        assert {"video_uri", "backend_used", "cost_usd", "quality_score", "latency_seconds",
                "cost_tracking"} <= r.keys()
        # Money leaves the agent as exact decimal strings.
        assert isinstance(r["cost_usd"], str) and Decimal(r["cost_usd"]) > 0
        assert r["backend_used"] in {"veo", "pixverse", "cogvideox", "mochi"}
    spend = Decimal(served[-1]["cost_tracking"]["monthly_spend_usd"])
    assert spend == sum((Decimal(r["cost_usd"]) for r in served), Decimal(0))
    assert Decimal(served[-1]["cost_tracking"]["budget_remaining_usd"]) == Decimal(100) - spend
    assert (tmp_path / "ledger.sqlite3").exists()


def test_the_example_type_checks() -> None:
    out = subprocess.run([sys.executable, "-m", "mypy", "--strict", "--no-incremental",
                          "--cache-dir", os.devnull, str(EXAMPLE)],
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stdout + out.stderr
