"""Money is Decimal in and out; floats are refused where money is expected; bad request and
state values are RequestErrors that name the field."""

from __future__ import annotations

import datetime
import json
from decimal import Decimal

import pytest

import genroute

MONEY_FIELD = genroute.DEMO_POLICY.replace(
    "request_fields:\n", "request_fields:\n  max_spend: {type: money}\n", 1)


def test_spend_round_trips_exactly() -> None:
    for text in ["0", "0.1", "99.98", "12.345678", "-0.05", "9000000000000"]:
        assert genroute.State(spend=Decimal(text)).spend == Decimal(text)
        assert genroute.State(spend=text).spend == Decimal(text)
    assert genroute.State(spend=12).spend == Decimal(12)
    assert genroute.State(spend=Decimal("1E+2")).spend == Decimal(100)
    assert genroute.State(spend=Decimal("0.1000000")).spend == Decimal("0.1")
    assert isinstance(genroute.State().spend, Decimal)


def test_the_budget_boundary_is_exact(demo: genroute.Policy) -> None:
    # tests/decide.rs budget_check_is_exact_at_the_boundary, in Decimal: 99.85 + 0.15 <= 100.
    q = {"priority": "quality"}
    assert demo.decide(q, {"spend": Decimal("99.85")}).model == "veo-3.0-generate-preview"
    assert demo.decide(q, {"spend": Decimal("99.850001")}).model == "veo-2.0-generate-001"
    # 0.1 + 0.2 == 0.3 holds in genroute's arithmetic.
    c = demo.condition("monthly_spend + 0.2 == 0.3")
    assert c.evaluate({}, {"spend": Decimal("0.1")}) is True


@pytest.mark.parametrize("where", ["State", "dict"])
def test_a_float_for_money_is_a_type_error(demo: genroute.Policy, where: str) -> None:
    with pytest.raises(TypeError, match="Decimal or a string") as info:
        if where == "State":
            genroute.State(spend=12.5)
        else:
            demo.decide({}, {"spend": 12.5})
    assert "state.spend" in str(info.value)


def test_a_float_for_a_money_request_field_is_a_type_error() -> None:
    p = genroute.Policy.from_yaml(MONEY_FIELD, name="money.yaml")
    with pytest.raises(TypeError, match="max_spend: money must be a decimal.Decimal or a string"):
        p.decide({"max_spend": 0.5})
    r = genroute.Request(p, {"max_spend": Decimal("0.5")})
    assert r.fields == {"max_spend": Decimal("0.5"), "tier": "free"}
    assert r.to_dict()["max_spend"] == Decimal("0.5")
    assert genroute.Request(p, max_spend="0.25").to_dict()["max_spend"] == Decimal("0.25")
    assert p.condition("max_spend > 0.3").evaluate({"max_spend": Decimal("0.5")}) is True


def test_numbers_that_are_not_money_take_floats(demo: genroute.Policy) -> None:
    r = genroute.Request(demo, quality_threshold=0.7, duration=8)
    assert (r.quality_threshold, r.duration) == (Decimal("0.7"), Decimal(8))
    assert genroute.Request(demo, quality_threshold=Decimal("0.70")).quality_threshold == Decimal("0.7")


@pytest.mark.parametrize(("value", "words"), [
    (Decimal("0.0000001"), "more than 6 decimal places"),
    (Decimal("NaN"), "not a finite number"),
    (Decimal("Infinity"), "not a finite number"),
    ("12,50", "not a decimal"),
    (10**30, "too large"),
])
def test_bad_money_is_a_request_error(value: object, words: str) -> None:
    with pytest.raises(genroute.RequestError) as info:
        genroute.State(spend=value)
    assert info.value.field == "state.spend"
    assert words in info.value.reason


def test_results_carry_decimals(demo: genroute.Policy) -> None:
    d = demo.decide({"priority": "speed"})
    assert d.cost_usd == Decimal("0.05") and isinstance(d.cost_usd, Decimal)
    e = demo.explain({"priority": "speed"}, {"spend": "20.10"})
    tree = e.to_dict()
    assert tree == json.loads(e.to_json(), parse_float=Decimal)
    assert tree["context"]["budget_remaining"] == Decimal("79.9")
    assert tree["context"]["monthly_budget"] == Decimal(100)
    assert isinstance(tree["context"]["monthly_budget"], Decimal)  # not the JSON's int
    assert isinstance(tree["context"]["failures"], int)  # a count stays an int
    floats = [v for v in _leaves(tree) if isinstance(v, float)]
    assert floats == []


def _leaves(v: object) -> list[object]:
    if isinstance(v, dict):
        return [x for item in v.values() for x in _leaves(item)]
    if isinstance(v, list):
        return [x for item in v for x in _leaves(item)]
    return [v]


@pytest.mark.parametrize(("request_", "field", "words"), [
    ({"priorty": "quality"}, "priorty", "did you mean `priority`"),
    ({"priority": "qualty"}, "priority", "quality"),
    ({"duration": -1}, "duration", "out of range"),
    ({"duration": "five"}, "duration", "number"),
    ({"quality_threshold": 2}, "quality_threshold", "out of range"),
    ({"aspect_ratio": [16, 9]}, "aspect_ratio", "a list"),
    ({"tier": None, "prompt": 7}, "prompt", "expected a string"),
    ({1: "x"}, "(body)", "strings"),
])
def test_bad_requests_name_the_field(demo: genroute.Policy, request_: dict, field: str, words: str) -> None:
    with pytest.raises(genroute.RequestError) as info:
        demo.decide(request_)
    assert info.value.field == field
    assert words in info.value.reason
    assert str(info.value).startswith(f"request field `{field}`")


@pytest.mark.parametrize(("state", "field", "exc"), [
    ({"breakers": {"veoo": "open"}}, "state.breakers.veoo", genroute.RequestError),
    ({"breakers": {"veo": "broken"}}, "state.breakers.veo", genroute.RequestError),
    ({"failures": -1}, "state.failures", genroute.RequestError),
    ({"now": "yesterday"}, "state.now", genroute.RequestError),
    ({"now": datetime.datetime(2026, 11, 10, 12)}, "state.now", genroute.RequestError),
    ({"spending": 1}, "state.spending", genroute.RequestError),
    ({"failures": 1.5}, None, TypeError),
    ({"now": 12}, None, TypeError),
])
def test_bad_states_name_the_field(demo: genroute.Policy, state: dict, field: str | None, exc: type) -> None:
    with pytest.raises(exc) as info:
        demo.decide({}, state)
    if field is not None:
        assert info.value.field == field  # type: ignore[attr-defined]


def test_states_read_their_fields() -> None:
    now = datetime.datetime(2026, 11, 10, 12, 30, 1, 250, tzinfo=datetime.timezone.utc)
    s = genroute.State(spend="1.5", breakers={"veo": "half_open"}, failures=2, now=now)
    assert (s.spend, s.breakers, s.failures, s.now) == (Decimal("1.5"), {"veo": "half_open"}, 2, now)
    assert "Decimal('1.5')" in repr(s)
    assert genroute.State(now="2026-11-10T13:00:00+01:00").now == datetime.datetime(
        2026, 11, 10, 12, tzinfo=datetime.timezone.utc)


def test_a_request_belongs_to_its_policy(demo: genroute.Policy) -> None:
    other = genroute.Policy.demo()
    r = genroute.Request(demo, priority="quality", prompt="a fox")
    with pytest.raises(genroute.RequestError, match="another policy"):
        other.decide(r)
    assert "a fox" not in repr(r)  # prompts are never printed
    assert r.prompt == "a fox" and r.priority == "quality" and r.to_dict()["prompt"] == "a fox"
