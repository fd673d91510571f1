"""Gate any Python tool function the way ``margin gate`` gates Claude Code's tools.

:func:`gated` decorates a tool function, :func:`guard` is the context-manager form and
:func:`check` the plain call. Each prices the call with the autonomy schedule (Eq. 7 with
ρ_irr, see :mod:`margin.agent.schedule`): ``allow`` runs it, ``deny`` raises
:class:`ActionDenied`, ``ask`` calls ``on_ask(decision)`` and runs only if it returns
``True`` (no callback: :class:`ConfirmationRequired`). Every decision is appended to an
optional ``sink`` as a ``LedgerRecord(layer="agent")``.

Examples
--------
>>> from margin.agent.guard import gated, ActionDenied
>>> @gated(action="destroy")
... def drop_table(name: str) -> str:
...     return f"dropped {name}"
>>> try:
...     drop_table("users")
... except ActionDenied as e:
...     print(e.decision.decision, e.decision.action)
deny destroy
>>> @gated(tool_name="Bash", tool_input=lambda cmd: {"command": cmd}, on_ask=lambda d: True)
... def shell(cmd: str) -> str:
...     return f"ran {cmd}"
>>> shell("pytest -q"), shell("git commit -m fix")
('ran pytest -q', 'ran git commit -m fix')
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any, ParamSpec, TypeVar

from margin.agent.classify import Part
from margin.agent.gate import GateDecision, decide, decide_parts, record_decision
from margin.agent.schedule import AutonomySchedule, load_schedule
from margin.core.prices import InputError
from margin.ledger.records import RecordSink

__all__ = ["ActionDenied", "ConfirmationRequired", "check", "gated", "guard"]

P = ParamSpec("P")
R = TypeVar("R")

AskCallback = Callable[[GateDecision], bool]


class ActionDenied(PermissionError):
    """The schedule denies this action (or a human declined it); ``.decision`` says why."""

    def __init__(self, decision: GateDecision, message: str | None = None) -> None:
        super().__init__(message or decision.reason)
        self.decision = decision


class ConfirmationRequired(ActionDenied):
    """The schedule asks for a human confirmation and no ``on_ask`` callback was given."""


def check(
    tool_name: str,
    tool_input: Mapping[str, Any] | None = None,
    *,
    action: str | None = None,
    schedule: AutonomySchedule | None = None,
    on_ask: AskCallback | None = None,
    sink: RecordSink | None = None,
) -> GateDecision:
    """Price one call and enforce the decision; returns it when the call may proceed.

    ``action`` names the action class directly (skipping classification).

    Raises
    ------
    ActionDenied
        On ``deny``, or on ``ask`` when ``on_ask`` returns False.
    ConfirmationRequired
        On ``ask`` without a callback.
    """
    s = schedule if schedule is not None else load_schedule()
    payload = dict(tool_input or {})
    if action is not None:
        if action not in s.names:
            raise InputError(
                f"gated: unknown action class '{action}' (known: {', '.join(s.names)})"
            )
        decision = decide_parts(s, [Part(action, tool_name)], tool_name)
    else:
        decision = decide(tool_name, payload, s)
    if sink is not None:
        record_decision(
            decision,
            s,
            {"tool_name": tool_name, "tool_input": payload, "session_id": "python"},
            sink,
        )
    if decision.decision == "deny":
        raise ActionDenied(decision)
    if decision.decision == "ask":
        if on_ask is None:
            raise ConfirmationRequired(decision)
        if not on_ask(decision):
            raise ActionDenied(decision, f"declined by the human reviewer: {decision.reason}")
    return decision


@contextmanager
def guard(
    tool_name: str,
    tool_input: Mapping[str, Any] | None = None,
    *,
    action: str | None = None,
    schedule: AutonomySchedule | None = None,
    on_ask: AskCallback | None = None,
    sink: RecordSink | None = None,
) -> Iterator[GateDecision]:
    """Context manager: the body runs only if the call is allowed (or confirmed).

    Examples
    --------
    >>> with guard("Bash", {"command": "ls -la"}) as d:
    ...     print(d.decision, d.level)
    allow free
    """
    yield check(tool_name, tool_input, action=action, schedule=schedule, on_ask=on_ask, sink=sink)


def gated(
    tool_name: str | None = None,
    *,
    action: str | None = None,
    tool_input: Callable[..., Mapping[str, Any]] | None = None,
    schedule: AutonomySchedule | None = None,
    on_ask: AskCallback | None = None,
    sink: RecordSink | None = None,
) -> Callable[[Callable[P, R]], Callable[P, R]]:
    """Decorator: gate every call of a tool function.

    Parameters
    ----------
    tool_name : str, optional
        Tool name to classify (default: the function's name; unknown names get the
        schedule's unknown level, like MCP tools).
    action : str, optional
        Action class to price directly instead of classifying.
    tool_input : callable, optional
        Builds the tool input from the call's arguments (default: the bound arguments).
    schedule, on_ask, sink
        As in :func:`check`.
    """

    def wrap(fn: Callable[P, R]) -> Callable[P, R]:
        name = tool_name or fn.__name__
        sig = inspect.signature(fn)

        @functools.wraps(fn)
        def inner(*args: P.args, **kwargs: P.kwargs) -> R:
            if tool_input is not None:
                payload = dict(tool_input(*args, **kwargs))
            else:
                bound = sig.bind(*args, **kwargs)
                payload = {k: v for k, v in bound.arguments.items()}
            check(name, payload, action=action, schedule=schedule, on_ask=on_ask, sink=sink)
            return fn(*args, **kwargs)

        return inner

    return wrap
