"""Shared helpers: where the repository's files are, and a YAML loader that reads numbers as
Decimal (the policy test files hold money such as ``spend: 99.98``, and genroute takes money as
Decimal only)."""

from __future__ import annotations

import decimal
import pathlib
from typing import Any

import pytest
import yaml

REPO = pathlib.Path(__file__).resolve().parents[2]
POLICIES = REPO / "policies"
SNAPSHOTS = REPO / "snapshots"
# tests/common/mod.rs: the instant the CLI's golden tests decide at.
NOW = "2026-11-10T12:00:00Z"
# tests/cli.rs: the environment the CLI's golden tests give the shipped policy.
CLI_ENV = {"VERTEX_ACCESS_TOKEN": "test-token", "PIXVERSE_API_KEY": "test-key"}


class DecimalLoader(yaml.SafeLoader):
    """YAML with floats as Decimal, read from their text (never through a float)."""


def _decimal(loader: yaml.SafeLoader, node: yaml.Node) -> decimal.Decimal:
    return decimal.Decimal(loader.construct_scalar(node))  # type: ignore[arg-type]


DecimalLoader.add_constructor("tag:yaml.org,2002:float", _decimal)


def load_yaml(path: pathlib.Path) -> Any:
    return yaml.load(path.read_text(), Loader=DecimalLoader)


def snapshot(name: str) -> str:
    """The content of an insta snapshot (after its header)."""
    text = (SNAPSHOTS / f"{name}.snap").read_text()
    return text.split("---\n", 2)[2]


@pytest.fixture(scope="session")
def demo():  # type: ignore[no-untyped-def]
    import genroute

    return genroute.Policy.demo()


@pytest.fixture(scope="session")
def videogen():  # type: ignore[no-untyped-def]
    import genroute

    return genroute.Policy.from_yaml(
        (POLICIES / "videogen.yaml").read_text(), name="policies/videogen.yaml", env=CLI_ENV
    )
