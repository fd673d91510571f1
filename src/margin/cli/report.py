"""``margin report``: the token-aware report of a ledger, as one offline HTML page."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from margin.cli._common import existing_ledger, guard, print_json, read_json

__all__ = ["app", "report"]

app = typer.Typer(
    help="The token-aware report (Sec. 4): one self-contained HTML page per ledger.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


@app.command()
def report(
    ledger: Annotated[Path, typer.Argument(help="Ledger database (SQLite).")],
    out: Annotated[Path, typer.Option("--out", "-o", help="HTML file to write.")] = Path(
        "report.html"
    ),
    comparison: Annotated[
        Path | None,
        typer.Option(
            "--comparison",
            help='JSON {regime: {metric: value}} (e.g. {"siloed": {...}, "shared": {...}}; '
            'optional per-layer rows under each regime\'s "layers").',
        ),
    ] = None,
    title: Annotated[str, typer.Option("--title", help="Page title.")] = "Token-aware report",
    max_requests: Annotated[
        int, typer.Option("--max-requests", help="Rows of the per-request table.", min=0)
    ] = 200,
    as_json: Annotated[bool, typer.Option("--json", help="Print machine-readable JSON.")] = False,
) -> None:
    """Write the token-aware report of LEDGER: per request the realized vector
    (V, ΔC, λ·ΔL, ρ·ΔR) and regret, per-layer and per-tenant breakdowns, the failure
    modes of Table 2 and, with --comparison, the regimes compared.

    --json prints {"out": PATH, "records": N, "requests": M, "findings": K, "bytes": B}
    (K: failure modes found).
    """
    from margin.diagnose.detectors import diagnose
    from margin.ledger.store import Ledger
    from margin.report.page import write_report

    with guard():
        cmp = read_json(comparison) if comparison is not None else None
        if cmp is not None:
            from margin.report.comparison import parse_comparison

            cmp = parse_comparison(cmp, where=str(comparison))
        with Ledger(existing_ledger(ledger)) as led:
            records = list(led.records())
        findings = diagnose(records)
        path = write_report(
            out,
            records,
            findings=findings,
            comparison=cmp,
            title=title,
            max_requests=max_requests,
        )
    summary = {
        "out": str(path),
        "records": len(records),
        "requests": len({r.request_id for r in records}),
        "findings": sum(1 for f in findings if f.count),
        "bytes": path.stat().st_size,
    }
    if as_json:
        print_json(summary)
        return
    from rich.console import Console
    from rich.markup import escape

    Console().print(
        f"wrote [bold]{escape(str(path))}[/bold]: {summary['records']:,} decisions, "
        f"{summary['requests']:,} requests, {summary['findings']} failure modes found "
        f"({summary['bytes']:,} bytes)",
        markup=True,
        highlight=False,
        soft_wrap=True,
    )
