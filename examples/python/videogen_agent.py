"""The seed's ``VideoGenAgent._generate_with_backend_manager``, written on genroute.

The seed's agent asked a hand-written backend manager which backend to use, called it, kept
its own cost tracking and formatted a JSON answer with ``video_uri``, ``backend_used``,
``cost_usd``, ``quality_score``, ``latency_seconds`` and the month's spend. Here genroute does
the routing, the calls with their fallbacks, the circuit breakers and the ledger (exact money,
reserved before each call and committed after), and the agent keeps only what is its own:
building the request and shaping the answer.

It runs on the embedded demo policy (``policies/demo.yaml``: the seed's four backends,
simulated, so no keys and no servers are needed), with the SQLite ledger in
``$GENROUTE_DATA_DIR`` (default ``./.genroute``)::

    pip install ./python        # from a clone of the repository
    python examples/python/videogen_agent.py
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import pathlib
import time
import uuid
from decimal import Decimal
from typing import Any

import genroute

logger = logging.getLogger("videogen_agent")


def _json(value: Any) -> str:
    """JSON with money as exact decimal strings ("0.15"), never as floats."""
    return json.dumps(value, default=lambda v: str(v) if isinstance(v, Decimal) else repr(v))


class VideoGenAgent:
    """Generates videos from text, routed by a genroute policy."""

    def __init__(self, policy: genroute.Policy | None = None, data_dir: str | None = None) -> None:
        self.policy = policy or genroute.Policy.demo()
        data = pathlib.Path(data_dir or os.environ.get("GENROUTE_DATA_DIR", ".genroute"))
        data.mkdir(parents=True, exist_ok=True)
        # One router for the agent's life: it holds the ledger connection and the breakers.
        self.router = genroute.Router(
            self.policy, f"sqlite:{data / 'ledger.sqlite3'}", videos_dir=data / "videos"
        )

    async def generate_video_from_text(
        self,
        prompt: str,
        duration: int = 5,
        aspect_ratio: str = "16:9",
        priority: str = "balanced",
        style: str | None = None,
        negative_prompt: str | None = None,
    ) -> str:
        video_id = f"video-{uuid.uuid4().hex[:12]}"
        return await self._generate_with_backend_manager(
            prompt, duration, aspect_ratio, priority, style, negative_prompt, video_id
        )

    async def _generate_with_backend_manager(
        self,
        prompt: str,
        duration: int,
        aspect_ratio: str,
        priority: str,
        style: str | None,
        negative_prompt: str | None,
        video_id: str,
    ) -> str:
        # 1-2. The request: genroute validates every field against the policy (an unknown
        # priority is a RequestError naming the field, not a silent default).
        fields: dict[str, Any] = {
            "prompt": prompt,
            "duration": duration,
            "aspect_ratio": aspect_ratio,
            "priority": priority,
        }
        if style is not None:
            fields["style"] = style
        if negative_prompt is not None:
            fields["negative_prompt"] = negative_prompt
        try:
            request = genroute.Request(self.policy, fields)
        except genroute.RequestError as e:
            return _json({"success": False, "video_id": video_id, "error": str(e), "field": e.field})

        # What genroute is about to do, with the live spend and breakers from the ledger.
        decision = self.policy.decide(request, self.router.state())
        logger.info("routing %s to %s (rule %s, expected cost %s)",
                    video_id, decision.backend, decision.rule, decision.cost_usd)

        # 3. Generate: the chosen backend, then its fallbacks, within the budget.
        started = time.perf_counter()
        try:
            result = await self.router.generate(request)
        except genroute.NoBackendAvailable as e:
            reasons = {b.name: b.reasons for b in e.explanation.backends} if e.explanation else {}
            return _json({"success": False, "video_id": video_id, "error": str(e),
                          "budget_exhausted": isinstance(e, genroute.BudgetExceeded),
                          "reasons": reasons})
        except genroute.GenerationFailed as e:
            attempts = [a.to_dict() for a in e.generation.attempts] if e.generation else []
            return _json({"success": False, "video_id": video_id, "error": str(e),
                          "attempts": attempts})
        latency = time.perf_counter() - started

        # 4. Cost tracking is the ledger's: the month's committed spend, exact.
        budget = self.router.budget()

        # 5. The answer, in the seed's shape.
        return _json({
            "success": True,
            "video_id": video_id,
            "request_id": result.request_id,
            "video_uri": result.video,
            "backend_used": result.backend,
            "model": result.model,
            "cost_usd": result.cost_usd,
            "quality_score": result.quality,
            "latency_seconds": round(latency, 3),
            "attempts": [{"backend": a.backend, "outcome": a.outcome, "latency_ms": a.latency_ms}
                         for a in result.attempts],
            "cost_tracking": {
                "monthly_spend_usd": budget.spent_usd,
                "budget_remaining_usd": budget.remaining_usd,
                "monthly_budget_usd": budget.budget_usd,
                "utilization_percent": budget.utilization_percent,
            },
        })


async def main() -> None:
    agent = VideoGenAgent()
    for priority, aspect_ratio in [("quality", "16:9"), ("speed", "16:9"), ("balanced", "9:16"),
                                   ("balanced", "16:9")]:
        print(await agent.generate_video_from_text(
            "a red fox at dawn", priority=priority, aspect_ratio=aspect_ratio))


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, format="%(name)s: %(message)s")
    asyncio.run(main())
