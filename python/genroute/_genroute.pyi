"""Typed interface of the native module (checked against it by ``mypy.stubtest`` in the tests).

_Money is ``decimal.Decimal`` in and out, never ``float``: a float where money is expected raises
``TypeError``. Every class is immutable and safe to share between threads.
"""

import datetime
from collections.abc import Awaitable, Mapping
from decimal import Decimal
from os import PathLike
from typing import Any, Final, Literal, TypeAlias, final

__all__ = [
    "Attempt",
    "BackendTrace",
    "Budget",
    "BudgetExceeded",
    "ClauseTrace",
    "Condition",
    "DEMO_POLICY",
    "Decision",
    "Diagnostic",
    "EXAMPLE_POLICY",
    "Error",
    "EvaluationError",
    "Explanation",
    "Generation",
    "GenerationFailed",
    "Name",
    "NoBackendAvailable",
    "Policy",
    "PolicyError",
    "Request",
    "RequestError",
    "Router",
    "RuleTrace",
    "State",
    "StoreError",
    "__version__",
    "check",
]

__version__: Final[str]
DEMO_POLICY: Final[str]
"""``policies/demo.yaml``: the seed's four backends, simulated (no keys, no servers)."""
EXAMPLE_POLICY: Final[str]
"""``policies/videogen.yaml``: the same backends reached through their real APIs."""

_Money: TypeAlias = Decimal | str | int
"""A decimal with at most six places: ``Decimal("12.50")``, ``"12.50"`` or ``12``. Not a float."""
_RequestLike: TypeAlias = Request | Mapping[str, Any]
"""A ``Request``, or a dict with the JSON request's fields (``prompt``, ``priority``,
``duration``, ``aspect_ratio``, ``quality_threshold``, ``style``, ``negative_prompt``) and the
policy's ``request_fields``."""
_StateLike: TypeAlias = State | Mapping[str, Any] | None
"""A ``State``, a dict of its fields (``spend``, ``breakers``, ``failures``, ``now``), or
``None``: no spend, every breaker closed, the current time."""
_BreakerName: TypeAlias = Literal["closed", "open", "half_open"]

class Error(Exception):
    """The base of every error genroute raises."""

class PolicyError(Error):
    """A policy or condition that does not load."""

    diagnostics: list[Diagnostic]
    """Every problem, with its file, line and column."""

class RequestError(Error):
    """A request or state value that was refused."""

    field: str
    """The field: ``priority``, ``state.spend``, ``(body)`` for the request as a whole."""
    reason: str
    """What is wrong and what to give instead."""

class EvaluationError(Error):
    """A standalone condition that hit a runtime error (division by zero, an unset field)."""

class NoBackendAvailable(Error):
    """No backend is eligible for the request."""

    explanation: Explanation | None
    """Why, for every rule and backend (``None`` only if the ledger could not be read)."""

class BudgetExceeded(NoBackendAvailable):
    """No backend is eligible because the monthly budget stops them."""

class GenerationFailed(Error):
    """Every backend in the chain was tried; none produced a video."""

    generation: Generation | None
    """Every attempt, with its outcome and message."""

class StoreError(Error):
    """The ledger store failed or timed out (nothing was spent on a call that was not made)."""

    generation: Generation | None
    """The attempts made before the store failed, if any."""

def check(
    path: str | PathLike[str] | None = None,
    *,
    text: str | None = None,
    name: str | None = None,
    env: Mapping[str, str] | None = None,
) -> list[Diagnostic]:
    """Every error of an invalid policy, or every warning of a valid one; never raises for
    the policy's content. Give ``path`` or ``text``."""

@final
class Policy:
    """A loaded, checked policy: immutable, shareable between threads."""

    @staticmethod
    def from_file(path: str | PathLike[str], *, env: Mapping[str, str] | None = None) -> Policy:
        """Loads a policy file; ``env`` supplies feature flags (``None``: the process
        environment). Raises ``PolicyError`` with every diagnostic, or ``OSError``."""
    @staticmethod
    def from_yaml(text: str, *, name: str = "policy.yaml", env: Mapping[str, str] | None = None) -> Policy:
        """Loads a policy from YAML text; ``name`` is what diagnostics and explanations show."""
    @staticmethod
    def demo(*, env: Mapping[str, str] | None = None) -> Policy:
        """The built-in demo policy (``DEMO_POLICY``)."""
    @property
    def name(self) -> str: ...
    @property
    def backends(self) -> list[str]:
        """Backend names in preference order."""
    @property
    def rules(self) -> list[str]:
        """Rule names in order."""
    def check(self) -> list[Diagnostic]:
        """This policy's lint warnings."""
    def decide(self, request: _RequestLike, state: _StateLike = None) -> Decision: ...
    def explain(self, request: _RequestLike, state: _StateLike = None) -> Explanation: ...
    def names(self) -> list[Name]:
        """The names a condition in this policy can read."""
    def condition(self, source: str, target: str | None = None) -> Condition:
        """Compiles a condition; backend-scoped names refer to ``target``."""

@final
class Request:
    """A validated request, bound to the policy it was built for."""

    def __new__(cls, policy: Policy, fields: Mapping[str, Any] | None = None, /, **kwargs: Any) -> Request: ...
    @property
    def prompt(self) -> str: ...
    @property
    def negative_prompt(self) -> str | None: ...
    @property
    def priority(self) -> str: ...
    @property
    def aspect_ratio(self) -> str: ...
    @property
    def duration(self) -> Decimal: ...
    @property
    def quality_threshold(self) -> Decimal: ...
    @property
    def style(self) -> str | None: ...
    @property
    def fields(self) -> dict[str, Any]: ...
    def to_dict(self) -> dict[str, Any]: ...
    def to_json(self, *, pretty: bool = False) -> str: ...

@final
class State:
    """What a decision sees besides the request."""

    def __new__(
        cls,
        *,
        spend: _Money | None = None,
        breakers: Mapping[str, _BreakerName] | None = None,
        failures: int | None = None,
        now: datetime.datetime | str | None = None,
    ) -> State: ...
    @property
    def spend(self) -> Decimal: ...
    @property
    def breakers(self) -> dict[str, str]: ...
    @property
    def failures(self) -> int: ...
    @property
    def now(self) -> datetime.datetime | None: ...

@final
class Decision:
    """Which backend, which model, by which rule, at what cost, and what next."""

    @property
    def backend(self) -> str | None: ...
    @property
    def model(self) -> str | None: ...
    @property
    def rule(self) -> str | None: ...
    @property
    def cost_usd(self) -> Decimal | None: ...
    @property
    def fallbacks(self) -> list[str]: ...
    def to_dict(self) -> dict[str, Any]: ...
    def to_json(self, *, pretty: bool = False) -> str: ...
    def __eq__(self, other: object, /) -> bool: ...
    def __hash__(self) -> int: ...

@final
class Explanation:
    """A decision with every rule's and backend's reasons (``genroute explain``)."""

    @property
    def backend(self) -> str | None: ...
    @property
    def model(self) -> str | None: ...
    @property
    def rule(self) -> str | None: ...
    @property
    def cost_usd(self) -> Decimal | None: ...
    @property
    def fallbacks(self) -> list[str]: ...
    @property
    def summary(self) -> str: ...
    @property
    def request(self) -> dict[str, Any]: ...
    @property
    def context(self) -> dict[str, Any]: ...
    @property
    def rules(self) -> list[RuleTrace]: ...
    @property
    def backends(self) -> list[BackendTrace]: ...
    def to_text(self) -> str: ...
    def to_dict(self) -> dict[str, Any]: ...
    def to_json(self, *, pretty: bool = False) -> str: ...

@final
class RuleTrace:
    @property
    def name(self) -> str: ...
    @property
    def condition(self) -> str: ...
    @property
    def location(self) -> str: ...
    @property
    def backend(self) -> str: ...
    @property
    def model(self) -> str | None: ...
    @property
    def matched(self) -> bool: ...
    @property
    def error(self) -> str | None: ...
    @property
    def target_eligible(self) -> bool | None: ...
    @property
    def target_reasons(self) -> list[str]: ...
    @property
    def status(self) -> str: ...
    @property
    def clauses(self) -> list[ClauseTrace]: ...
    def to_dict(self) -> dict[str, Any]: ...

@final
class ClauseTrace:
    @property
    def text(self) -> str: ...
    @property
    def value(self) -> bool | None: ...
    @property
    def evaluated(self) -> bool: ...
    @property
    def error(self) -> str | None: ...
    @property
    def reads(self) -> dict[str, Any]: ...
    def to_dict(self) -> dict[str, Any]: ...

@final
class BackendTrace:
    @property
    def name(self) -> str: ...
    @property
    def eligible(self) -> bool: ...
    @property
    def reasons(self) -> list[str]: ...
    @property
    def role(self) -> str: ...
    @property
    def priority(self) -> Decimal: ...
    @property
    def cost_usd(self) -> Decimal: ...
    @property
    def quality(self) -> Decimal: ...
    @property
    def breaker(self) -> str: ...
    def to_dict(self) -> dict[str, Any]: ...

@final
class Diagnostic:
    """One problem in a policy file, with its place."""

    @property
    def severity(self) -> Literal["error", "warning"]: ...
    @property
    def code(self) -> str: ...
    @property
    def message(self) -> str: ...
    @property
    def label(self) -> str: ...
    @property
    def help(self) -> str | None: ...
    @property
    def file(self) -> str: ...
    @property
    def line(self) -> int | None: ...
    @property
    def column(self) -> int | None: ...
    def to_dict(self) -> dict[str, Any]: ...
    def to_json(self, *, pretty: bool = False) -> str: ...

@final
class Name:
    """A name a condition can read."""

    @property
    def name(self) -> str: ...
    @property
    def alias(self) -> str | None: ...
    @property
    def type(self) -> str: ...
    @property
    def doc(self) -> str: ...

@final
class Condition:
    """A condition compiled on its own against a policy's names."""

    @property
    def source(self) -> str: ...
    @property
    def target(self) -> str | None: ...
    def evaluate(self, request: _RequestLike, state: _StateLike = None) -> bool:
        """Raises ``EvaluationError`` on a runtime error: never a silent ``False``."""

@final
class Router:
    """Runs requests: decide, reserve, call, fall back, commit."""

    def __new__(
        cls,
        policy: Policy,
        store: str = "memory",
        *,
        env: Mapping[str, str] | None = None,
        videos_dir: str | PathLike[str] | None = None,
        store_timeout: float = 2.0,
    ) -> Router: ...
    @property
    def policy(self) -> Policy: ...
    def generate(self, request: _RequestLike) -> Awaitable[Generation]:
        """Runs on the Rust runtime; cancelling the awaiting task cancels it."""
    def generate_sync(self, request: _RequestLike) -> Generation:
        """Blocks with the GIL released."""
    def budget(self, month: str | None = None) -> Budget: ...
    def state(self) -> State: ...

@final
class Attempt:
    @property
    def backend(self) -> str: ...
    @property
    def model(self) -> str | None: ...
    @property
    def outcome(self) -> str: ...
    @property
    def latency_ms(self) -> int: ...
    @property
    def simulated_seconds(self) -> Decimal | None: ...
    @property
    def cost_usd(self) -> Decimal: ...
    @property
    def message(self) -> str | None: ...
    @property
    def in_doubt(self) -> bool: ...
    def to_dict(self) -> dict[str, Any]: ...

@final
class Generation:
    """What ``genroute generate --format json`` prints."""

    @property
    def request_id(self) -> str: ...
    @property
    def backend(self) -> str | None: ...
    @property
    def model(self) -> str | None: ...
    @property
    def video(self) -> str | None: ...
    @property
    def cost_usd(self) -> Decimal: ...
    @property
    def quality(self) -> Decimal | None: ...
    @property
    def attempts(self) -> list[Attempt]: ...
    @property
    def error(self) -> str | None: ...
    def to_dict(self) -> dict[str, Any]: ...
    def to_json(self, *, pretty: bool = False) -> str: ...

@final
class Budget:
    """A month's figures from the ledger (``genroute budget show``)."""

    @property
    def month(self) -> str: ...
    @property
    def spent_usd(self) -> Decimal: ...
    @property
    def committed_usd(self) -> Decimal: ...
    @property
    def in_doubt_usd(self) -> Decimal: ...
    @property
    def reserved_usd(self) -> Decimal: ...
    @property
    def budget_usd(self) -> Decimal: ...
    @property
    def remaining_usd(self) -> Decimal: ...
    @property
    def cost_threshold_usd(self) -> Decimal: ...
    @property
    def utilization_percent(self) -> Decimal: ...
    def to_dict(self) -> dict[str, Any]: ...
    def to_json(self, *, pretty: bool = False) -> str: ...
