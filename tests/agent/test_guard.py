"""The decorator / context-manager form of the gate."""

from __future__ import annotations

import pytest

from margin.agent.gate import GateDecision
from margin.agent.guard import ActionDenied, ConfirmationRequired, check, gated, guard
from margin.core.prices import InputError
from margin.ledger.records import LedgerRecord


def test_allow_runs_and_records() -> None:
    sink: list[LedgerRecord] = []
    calls: list[str] = []

    @gated(tool_name="Bash", tool_input=lambda cmd: {"command": cmd}, sink=sink)
    def shell(cmd: str) -> str:
        calls.append(cmd)
        return "ok"

    assert shell("pytest -q") == "ok"
    assert calls == ["pytest -q"]
    assert len(sink) == 1 and sink[0].layer == "agent" and sink[0].choice == "free"


def test_deny_raises_and_never_runs() -> None:
    ran: list[bool] = []

    @gated(action="destroy")
    def drop(name: str) -> None:
        ran.append(True)

    with pytest.raises(ActionDenied) as e:
        drop("users")
    assert ran == [] and e.value.decision.level == "forbid"
    assert "class=destroy" in str(e.value)


def test_ask_calls_back() -> None:
    seen: list[GateDecision] = []

    def reviewer(d: GateDecision) -> bool:
        seen.append(d)
        return d.action == "commit"

    @gated(tool_name="Bash", tool_input=lambda cmd: {"command": cmd}, on_ask=reviewer)
    def shell(cmd: str) -> str:
        return cmd

    assert shell("git commit -m x") == "git commit -m x"
    assert seen[-1].decision == "ask"
    with pytest.raises(ActionDenied, match="declined"):
        check("mcp__slack__post_message", {"text": "hi"}, on_ask=reviewer)


def test_ask_without_callback_and_unknown_tool_name() -> None:
    @gated()
    def send_email(to: str, body: str) -> None:  # unknown tool: schedule's unknown level
        raise AssertionError("must not run")

    with pytest.raises(ConfirmationRequired):
        send_email("a@b.c", "hi")


def test_context_manager() -> None:
    with guard("Edit", {"file_path": "src/a.py"}) as d:
        assert d.decision == "allow"
    with pytest.raises(ActionDenied), guard("Bash", {"command": "terraform destroy"}):
        raise AssertionError("body must not run")
    with pytest.raises(InputError, match="unknown action class"):
        check("x", action="teleport")
