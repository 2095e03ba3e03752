"""Loading: errors with their places, warnings, and bad input that never crashes."""

from __future__ import annotations

import pathlib
import re

import pytest

import genroute
from conftest import POLICIES, REPO, snapshot

VIDEOGEN = (POLICIES / "videogen.yaml").read_text()


def line_of(text: str, needle: str) -> int:
    return text[: text.index(needle)].count("\n") + 1


def test_a_misspelled_enum_value_names_its_line_column_and_fix() -> None:
    # The case of tests/cli.rs check_json_has_locations_and_help.
    bad = VIDEOGEN.replace("priority == 'quality' AND budget_available",
                           "priority == 'qualty' AND budget_available", 1)
    with pytest.raises(genroute.PolicyError) as info:
        genroute.Policy.from_yaml(bad, name="bad.yaml")
    err = info.value
    assert isinstance(err, genroute.Error)
    (d,) = err.diagnostics
    assert (d.severity, d.code, d.file) == ("error", "unknown-enum-value", "bad.yaml")
    assert d.line == line_of(bad, "priority == 'qualty' AND budget_available")
    assert d.column == 29
    assert d.help == "did you mean 'quality'? `priority` is one of 'quality', 'balanced', 'speed'"
    assert "bad.yaml:%d:29" % d.line in str(err)
    assert d.to_dict()["code"] == "unknown-enum-value"
    assert str(d).startswith(f"bad.yaml:{d.line}:29: error[unknown-enum-value]")


def test_every_error_is_reported_at_once() -> None:
    bad = VIDEOGEN.replace("priority == 'speed' AND budget_available",
                           "prioirty == 'speed' AND budget_available").replace(
        'backend: "cogvideox"', 'backend: "cogvidex"')
    with pytest.raises(genroute.PolicyError) as info:
        genroute.Policy.from_yaml(bad, name="bad.yaml")
    codes = sorted(d.code for d in info.value.diagnostics)
    assert len(codes) >= 2
    assert all(d.line and d.column for d in info.value.diagnostics)
    # check() gives the same list without raising.
    assert [d.code for d in genroute.check(text=bad, name="bad.yaml")] == [
        d.code for d in info.value.diagnostics]


def test_a_yaml_syntax_error_has_a_place() -> None:
    with pytest.raises(genroute.PolicyError) as info:
        genroute.Policy.from_yaml("budget: {monthly_budget_usd: 1\nbackends: [", name="x.yaml")
    (d, *_) = info.value.diagnostics
    assert d.line is not None and d.file == "x.yaml"


def test_lint_warnings_are_the_snapshot() -> None:
    # tests/lints.rs renders the warnings of tests/fixtures/lints.yaml into lint_warnings.snap.
    text = (REPO / "tests/fixtures/lints.yaml").read_text()
    warnings = genroute.Policy.from_yaml(text, name="lints.yaml").check()
    snap = snapshot("lint_warnings")
    assert [w.code for w in warnings] == re.findall(r"^warning\[([a-z-]+)\]", snap, re.M)
    assert [f"lints.yaml:{w.line}:{w.column}" for w in warnings] == re.findall(
        r"┌─ (lints\.yaml:\d+:\d+)", snap)
    assert all(w.severity == "warning" for w in warnings)
    assert genroute.check(REPO / "tests/fixtures/lints.yaml", name="lints.yaml")[0].code == warnings[0].code


def test_the_shipped_policies_load_clean() -> None:
    assert genroute.check(POLICIES / "videogen.yaml") == []
    p = genroute.Policy.from_file(POLICIES / "videogen.yaml", env={})
    assert (len(p.backends), len(p.rules)) == (4, 7)
    assert p.backends[0] == "veo"
    assert p.name.endswith("videogen.yaml")
    assert "4 backends, 7 rules" in repr(p)


def test_a_missing_file_is_an_os_error_with_the_path(tmp_path: pathlib.Path) -> None:
    with pytest.raises(FileNotFoundError, match="nope.yaml"):
        genroute.Policy.from_file(tmp_path / "nope.yaml")


def test_feature_flags_come_from_env() -> None:
    p = genroute.Policy.demo(env={"VIDEOGEN_BACKEND_VEO_ENABLED": "false"})
    assert p.decide({"priority": "quality"}).backend != "veo"
    with pytest.raises(genroute.PolicyError) as info:
        genroute.Policy.demo(env={"VIDEOGEN_BACKEND_VEO_ENABLED": "maybe"})
    assert "VIDEOGEN_BACKEND_VEO_ENABLED" in str(info.value)


@pytest.mark.parametrize("text", [
    "",
    "[",
    "\x00\xff",
    "budget: " + "[" * 10_000,
    "a: &a [*a]",
    "budget: {monthly_budget_usd: 1e400, cost_threshold_usd: -1}",
    "x" * 5_000_000,
])
def test_hostile_policies_are_errors_not_crashes(text: str) -> None:
    with pytest.raises(genroute.PolicyError) as info:
        genroute.Policy.from_yaml(text)
    assert info.value.diagnostics


def test_conditions_check_like_rules(demo: genroute.Policy) -> None:
    guard = demo.condition("priority == 'quality' AND budget_available", target="veo")
    assert guard.source.startswith("priority") and guard.target == "veo"
    assert guard.evaluate({"priority": "quality"}) is True
    assert guard.evaluate({"priority": "speed"}) is False
    assert guard.evaluate({"priority": "quality"}, {"spend": "99.99"}) is False
    with pytest.raises(genroute.PolicyError) as info:
        demo.condition("priority == 'qualty'")
    assert info.value.diagnostics[0].code == "unknown-enum-value"
    assert "condition" in str(info.value)
    with pytest.raises(genroute.EvaluationError, match="division by zero"):
        demo.condition("monthly_spend / failures > 1").evaluate({})
    with pytest.raises(genroute.PolicyError):
        demo.condition("(" * 10_000)
