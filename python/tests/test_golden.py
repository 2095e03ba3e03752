"""Decide and explain on the shipped policies give the Rust golden tests' answers.

The cases are not copied: they are read from the same files the Rust tests read, the policy
test files (``policies/tests/*.yaml``, run by ``genroute test`` in tests/cli.rs) and the CLI's
snapshots (``snapshots/cli_explain_*.snap``), and every answer comes from the Python API.
"""

from __future__ import annotations

import json
import pathlib
from decimal import Decimal
from typing import Any

import pytest

import genroute
from conftest import CLI_ENV, NOW, POLICIES, load_yaml, snapshot

CASE_FILES = sorted((POLICIES / "tests").glob("*.yaml"))


def cases() -> list[Any]:
    out = []
    for path in CASE_FILES:
        spec = load_yaml(path)
        for case in spec["cases"]:
            out.append(pytest.param(path, spec, case, id=f"{path.stem}: {case['name']}"))
    return out


def test_the_case_files_are_there() -> None:
    names = {p.name for p in CASE_FILES}
    assert {"demo.yaml", "videogen.yaml"} <= names
    assert sum(len(load_yaml(p)["cases"]) for p in CASE_FILES) >= 30


_policies: dict[pathlib.Path, genroute.Policy] = {}


def policy_of(path: pathlib.Path, spec: dict[str, Any]) -> genroute.Policy:
    """The test file's policy, seeing only the file's environment (as `genroute test` does)."""
    if path not in _policies:
        _policies[path] = genroute.Policy.from_file(
            (path.parent / spec["policy"]).resolve(), env=spec.get("env", {})
        )
    return _policies[path]


def state_of(spec: dict[str, Any], case: dict[str, Any]) -> genroute.State:
    s = case.get("state") or {}
    return genroute.State(
        spend=s.get("spend"),
        breakers=s.get("breakers"),
        failures=s.get("failures"),
        now=s.get("now", spec.get("now")),
    )


@pytest.mark.parametrize(("path", "spec", "case"), cases())
def test_case(path: pathlib.Path, spec: dict[str, Any], case: dict[str, Any]) -> None:
    policy = policy_of(path, spec)
    state = state_of(spec, case)
    request = case.get("request") or {}
    decision = policy.decide(request, state)
    explanation = policy.explain(request, state)
    expect = case["expect"]
    for key in ("backend", "rule", "model"):
        if key in expect:
            assert getattr(decision, key) == expect[key], (key, explanation.to_text())
    if "fallbacks" in expect:
        assert decision.fallbacks == expect["fallbacks"], explanation.to_text()
    # decide and explain agree, and the decision is the head of the explanation's JSON.
    head = {k: explanation.to_dict()[k] for k in ("backend", "model", "rule", "cost_usd", "fallbacks")}
    assert decision.to_dict() == head
    # A validated Request decides the same as the dict it was built from.
    assert policy.decide(genroute.Request(policy, request), state) == decision


def cli_state(spend: str, breakers: dict[str, str] | None = None) -> genroute.State:
    return genroute.State(spend=Decimal(spend), breakers=breakers, now=NOW)


def test_explain_json_is_the_cli_snapshot(videogen: genroute.Policy) -> None:
    # tests/cli.rs explain_json_has_the_documented_keys: --request '{"priority": "quality"}'
    # --breaker veo=open --spend 12.5
    e = videogen.explain({"priority": "quality"}, cli_state("12.5", {"veo": "open"}))
    want = json.loads(snapshot("cli_explain_json"))
    assert json.loads(e.to_json()) == want
    # to_dict is the same tree, with every number exact.
    assert e.to_dict() == json.loads(snapshot("cli_explain_json"), parse_float=Decimal)
    assert e.to_dict()["context"]["monthly_spend"] == Decimal("12.5")
    assert isinstance(e.to_dict()["cost_usd"], Decimal)


def test_explain_text_is_the_cli_snapshot(videogen: genroute.Policy) -> None:
    # explain_text_shows_clauses_values_and_the_decision: balanced, 9:16, --spend 20
    e = videogen.explain({"priority": "balanced", "aspect_ratio": "9:16"}, cli_state("20"))
    assert e.to_text().rstrip("\n") == snapshot("cli_explain_text").rstrip("\n")
    assert str(e) == e.to_text()


def test_explain_none_is_the_cli_snapshot(videogen: genroute.Policy) -> None:
    # explain_exits_3_when_nothing_is_eligible_and_still_prints
    e = videogen.explain({"priority": "speed", "quality_threshold": 0.95}, cli_state("0"))
    assert e.to_text().rstrip("\n") == snapshot("cli_explain_none").rstrip("\n")
    assert e.backend is None
    assert videogen.decide({"priority": "speed", "quality_threshold": 0.95}, cli_state("0")).backend is None


def test_explanation_objects_carry_the_json(videogen: genroute.Policy) -> None:
    e = videogen.explain({"priority": "quality"}, cli_state("12.5", {"veo": "open"}))
    d = e.to_dict()
    assert [r.to_dict() for r in e.rules] == d["rules"]
    assert [b.to_dict() for b in e.backends] == d["backends"]
    first = e.rules[0]
    assert (first.name, first.matched, first.status, first.target_eligible) == (
        "quality_priority", True, "target ineligible", False)
    assert first.target_reasons == ["circuit breaker is open"]
    assert first.location == "policies/videogen.yaml:176:16"
    assert [c.text for c in first.clauses] == ["priority == 'quality'", "budget_available"]
    assert first.clauses[0].reads == {"priority": "quality"}
    veo = e.backends[0]
    assert (veo.name, veo.eligible, veo.breaker, veo.cost_usd) == ("veo", False, "open", Decimal("0.1"))
    assert e.context["breakers"]["veo"] == "open"
    assert e.request["priority"] == "quality"
    assert e.summary.startswith("rule `veo_outage_quality` matched")


def test_names_match_the_cli_table() -> None:
    # snapshots/cli_names.snap is `genroute names`: every built-in name is listed there.
    policy = genroute.Policy.demo()
    table = snapshot("cli_names")
    names = policy.names()
    builtin = [n for n in names if not n.name.startswith(("backends.", "request.tier"))]
    assert builtin and all(n.name in table for n in builtin)
    assert any(n.name == "request.tier" and n.type == "enum free|pro|enterprise" for n in names)
    assert any(n.name == "backends.veo.cost" and n.type == "money" for n in names)
    by_name = {n.name: n for n in names}
    assert by_name["budget.monthly_spend"].alias == "monthly_spend"


def test_cli_env_is_what_the_snapshot_saw() -> None:
    # Without the keys, PixVerse and Veo are not eligible: the env argument is what counts.
    bare = genroute.Policy.from_file(POLICIES / "videogen.yaml", env={})
    e = bare.explain({"priority": "speed"}, cli_state("0"))
    reasons = {b.name: b.reasons for b in e.backends}
    assert any("PIXVERSE_API_KEY is not set" in r for r in reasons["pixverse"])
    assert CLI_ENV["PIXVERSE_API_KEY"] not in e.to_json()
