"""``margin gate``: a Claude Code PreToolUse hook that prices every tool call (Eq. 7).

Claude Code runs the hook before each tool call and passes one JSON object on stdin with
``session_id``, ``transcript_path``, ``cwd``, ``permission_mode``, ``hook_event_name``
(``"PreToolUse"``), ``tool_name``, ``tool_input`` and ``tool_use_id``. The hook answers on
stdout, exit code 0, with::

    {"hookSpecificOutput": {"hookEventName": "PreToolUse",
                            "permissionDecision": "allow" | "ask" | "deny",
                            "permissionDecisionReason": "…"}}

and exit code 2 blocks the call with stderr shown to Claude (Claude Code hooks reference,
https://code.claude.com/docs/en/hooks#pretooluse-input and
#pretooluse-decision-control). The gate classifies the call
(:mod:`margin.agent.classify`), prices every part with the autonomy schedule
(:mod:`margin.agent.schedule`, Eq. 7 with ρ_irr) and lets the riskiest part decide; the
reason is the price arithmetic in one line. It fails closed: empty stdin, malformed JSON,
a missing or empty ``tool_name``, a missing ``tool_input``, an unreadable schedule or an
unwritable ledger exit with code 2 and one line on stderr.

Persistence: ``--ledger PATH`` (default ``$MARGIN_LEDGER``) appends one
``LedgerRecord(layer="agent")`` per decision to that SQLite ledger; with neither set,
nothing is written. Only the standard library is imported unless a ledger is set.

Install (``.claude/settings.json``)::

    {"hooks": {"PreToolUse": [{"matcher": "*",
        "hooks": [{"type": "command", "command": "margin gate"}]}]}}
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Mapping
from dataclasses import dataclass

from margin.agent.classify import Part, classify_tool_call
from margin.agent.schedule import UNKNOWN_CLASS, ActionPrice, AutonomySchedule, load_schedule
from margin.core.prices import InputError

# Not `typing.TYPE_CHECKING`: importing typing costs ~9 ms of `margin gate`'s start-up.
TYPE_CHECKING = False
if TYPE_CHECKING:
    import argparse
    from typing import Any

__all__ = ["GateDecision", "decide", "main", "record_decision"]

_MAX_TEXT = 160


@dataclass(frozen=True, slots=True)
class GateDecision:
    """The gate's answer for one tool call.

    Attributes
    ----------
    decision : str
        ``allow``, ``ask`` or ``deny`` (Claude Code's ``permissionDecision``).
    level : str
        The confirmation level of the deciding part (free/confirm/multi_party/forbid).
    action : str
        Its action class (``unknown`` when unrecognized).
    part : str
        The text of the deciding part (e.g. ``rm -rf build``).
    reason : str
        The price arithmetic in one line.
    parts : tuple of Part
        Every classified part of the call.
    price : ActionPrice or None
        The Eq. 7 pricing of the deciding class (``None`` for ``unknown``).
    """

    decision: str
    level: str
    action: str
    part: str
    reason: str
    parts: tuple[Part, ...]
    price: ActionPrice | None

    def hook_output(self) -> dict[str, Any]:
        """The PreToolUse ``hookSpecificOutput`` object."""
        return {
            "hookSpecificOutput": {
                "hookEventName": "PreToolUse",
                "permissionDecision": self.decision,
                "permissionDecisionReason": self.reason,
            }
        }


def _short(text: str) -> str:
    one = " ".join(text.split())
    return one if len(one) <= _MAX_TEXT else one[: _MAX_TEXT - 1] + "…"


def _severity(schedule: AutonomySchedule, part: Part) -> tuple[int, float]:
    level = schedule.level(part.action)
    if part.action == UNKNOWN_CLASS:
        return schedule.rank(level), 0.0
    pr = schedule.price(part.action)
    p = schedule.prices
    return schedule.rank(
        level
    ), p.risk_price * pr.risk + p.irreversible_risk_price * pr.irreversible_risk


def decide_parts(schedule: AutonomySchedule, parts: list[Part], tool_name: str) -> GateDecision:
    """Price every part; the strictest level (then the highest risk price) decides."""
    unknown_known = [
        p for p in parts if p.action != UNKNOWN_CLASS and p.action not in schedule.names
    ]
    if unknown_known:
        # a class the schedule does not define is treated as unknown, never as free
        parts = [Part(UNKNOWN_CLASS, p.text) if p in unknown_known else p for p in parts]
    worst = max(parts, key=lambda p: _severity(schedule, p))
    level = schedule.level(worst.action)
    decision = schedule.hook_decisions[level]
    text = worst.text.removeprefix(tool_name).strip()
    what = f"{tool_name} `{_short(text)}`" if text else tool_name
    if worst.action == UNKNOWN_CLASS:
        price = None
        body = (
            f"class=unknown (no price for this tool or program) → schedule's unknown level {level}"
        )
    else:
        price = schedule.price(worst.action)
        body = price.explain()
    tail = ""
    if level == "multi_party" and decision == "deny":
        tail = f" (needs {schedule.oversight.reviewers}-party sign-off outside the agent)"
    n = len(parts)
    scope = f" [riskiest of {n} parts]" if n > 1 else ""
    reason = f"margin: {what}{scope} → {body}{tail} → {decision}"
    return GateDecision(decision, level, worst.action, worst.text, reason, tuple(parts), price)


def decide(
    tool_name: str, tool_input: Mapping[str, Any], schedule: AutonomySchedule | None = None
) -> GateDecision:
    """Classify and price one tool call.

    Examples
    --------
    >>> decide("Read", {"file_path": "/repo/README.md"}).decision
    'allow'
    >>> d = decide("Bash", {"command": "cd build && rm -rf out"})
    >>> d.decision, d.action, d.part
    ('deny', 'destroy', 'rm -rf out')
    >>> decide("mcp__github__create_issue", {"title": "bug"}).decision
    'ask'
    """
    s = schedule if schedule is not None else load_schedule()
    parts = classify_tool_call(tool_name, tool_input, s.tools)
    return decide_parts(s, parts, tool_name)


def record_decision(
    result: GateDecision,
    schedule: AutonomySchedule,
    payload: Mapping[str, Any],
    sink: Any,
) -> None:
    """Append the decision to ``sink`` as a ``LedgerRecord(layer="agent")``."""
    from margin.core.prices import Option
    from margin.ledger.records import LedgerRecord

    if result.price is not None:
        options = result.price.options
    else:
        options = (Option(result.level, 0.0, 0.0),)
    tool_input = payload.get("tool_input")
    detail = ""
    if isinstance(tool_input, Mapping):
        for key in ("command", "file_path", "notebook_path", "path", "url", "pattern"):
            if isinstance(tool_input.get(key), str):
                detail = _short(str(tool_input[key]))
                break
    session = payload.get("session_id")
    record = LedgerRecord(
        request_id=session if isinstance(session, str) and session else "margin-gate",
        layer="agent",
        choice=result.level,
        options=options,
        prices=schedule.prices,
        attributes={
            "tool_name": payload.get("tool_name"),
            "tool_use_id": payload.get("tool_use_id"),
            "cwd": payload.get("cwd"),
            "input": detail,
            "action_class": result.action,
            "part": _short(result.part),
            "parts": [[p.action, _short(p.text)] for p in result.parts],
            "decision": result.decision,
            "reason": result.reason,
        },
    )
    sink.append(record)


def _fail(message: str) -> int:
    sys.stderr.write(f"margin gate: {message}\n")
    return 2


def _read_payload(text: str) -> dict[str, Any]:
    if not text.strip():
        raise InputError("empty stdin: expected the PreToolUse hook JSON object")
    try:
        payload = json.loads(text)
    except json.JSONDecodeError as e:
        raise InputError(
            f"malformed hook JSON on stdin (line {e.lineno}, column {e.colno}: {e.msg})"
        ) from None
    if not isinstance(payload, dict):
        raise InputError(f"hook JSON must be an object, got {type(payload).__name__}")
    name = payload.get("tool_name")
    if not isinstance(name, str) or not name.strip():
        raise InputError("hook JSON: field 'tool_name' is missing or empty")
    if "tool_input" not in payload:
        raise InputError("hook JSON: field 'tool_input' is missing")
    if not isinstance(payload["tool_input"], dict):
        raise InputError("hook JSON: field 'tool_input' must be an object")
    event = payload.get("hook_event_name", "PreToolUse")
    if event != "PreToolUse":
        raise InputError(f"hook JSON: hook_event_name is {event!r}; margin gate answers PreToolUse")
    return payload


def _parser() -> argparse.ArgumentParser:
    import argparse

    p = argparse.ArgumentParser(
        prog="margin gate",
        description="Claude Code PreToolUse hook: price the tool call on stdin and answer "
        "allow/ask/deny (exit 2 on unreadable input).",
    )
    p.add_argument(
        "--schedule", metavar="FILE", help="autonomy schedule (.json/.yaml); default: shipped"
    )
    p.add_argument(
        "--ledger",
        metavar="PATH",
        default=None,
        help="SQLite ledger to append each decision to (default: $MARGIN_LEDGER; unset: none)",
    )
    return p


def _fast_options(argv: list[str]) -> dict[str, str] | None:
    """``--schedule X`` / ``--ledger X`` (or ``=X``) without argparse; ``None`` otherwise.

    The hook runs before every tool call, so the common invocations skip importing
    argparse's machinery; anything else (``--help``, a typo) goes to :func:`_parser`.
    """
    out: dict[str, str] = {}
    i = 0
    while i < len(argv):
        arg = argv[i]
        key, eq, value = arg.partition("=")
        if key not in ("--schedule", "--ledger") or key[2:] in out:
            return None
        if not eq:
            if i + 1 >= len(argv) or argv[i + 1].startswith("-"):
                return None
            value = argv[i + 1]
            i += 1
        if not value:
            return None
        out[key[2:]] = value
        i += 1
    return out


def main(argv: list[str] | None = None) -> int:
    """Run the hook: read stdin, print the decision JSON, return the exit code (0 or 2)."""
    raw = sys.argv[1:] if argv is None else list(argv)
    fast = _fast_options(raw)
    if fast is not None:
        schedule_path, ledger = fast.get("schedule"), fast.get("ledger")
    else:
        args = _parser().parse_args(raw)
        schedule_path, ledger = args.schedule, args.ledger
    try:
        payload = _read_payload(sys.stdin.read())
        schedule = load_schedule(schedule_path)
        result = decide(payload["tool_name"], payload["tool_input"], schedule)
    except InputError as e:
        return _fail(str(e))
    if ledger is None:
        ledger = os.environ.get("MARGIN_LEDGER") or None
    if ledger:
        try:
            from margin.ledger.store import Ledger

            with Ledger(ledger) as led:
                record_decision(result, schedule, payload, led)
        except Exception as e:  # fail closed: an unrecorded decision is not taken
            return _fail(f"cannot append to ledger {ledger}: {e}")
    sys.stdout.write(json.dumps(result.hook_output(), ensure_ascii=False) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
