"""Entry point of the ``margin`` command.

``margin gate`` is answered before typer, rich or numpy are imported: Claude Code runs
it before every tool call, so it must start in a few tens of milliseconds.
"""

from __future__ import annotations

import sys

__all__ = ["main"]


def main(argv: list[str] | None = None) -> None:
    """Run the ``margin`` command line with ``argv`` (default: ``sys.argv[1:]``)."""
    args = list(sys.argv[1:] if argv is None else argv)
    if args[:1] == ["gate"]:
        from margin.agent.gate import main as gate_main

        raise SystemExit(gate_main(args[1:]))
    from margin.cli.app import app

    app(args=args, prog_name="margin")
