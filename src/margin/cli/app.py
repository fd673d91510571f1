"""The ``margin`` command: core commands plus one sub-command group per layer."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from margin.cli._common import existing_ledger, guard, print_json, read_json
from margin.core.prices import InputError

app = typer.Typer(
    name="margin",
    help="Run agentic AI systems as marginal token allocation economies (one price vector, "
    "four layers: routing, agent, serving, capital).",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
prices_app = typer.Typer(help="Price discovery: the dual prices of shared budgets (Eq. 3).")
ledger_app = typer.Typer(help="The token-aware ledger: summaries and Parquet export.")
app.add_typer(prices_app, name="prices")
app.add_typer(ledger_app, name="ledger")


def _mount_layers() -> None:
    from margin.cli.agent import app as agent_app
    from margin.cli.capital import cache_app, rl_app
    from margin.cli.economy import app as economy_app
    from margin.cli.predictions import app as predictions_app
    from margin.cli.report import report
    from margin.cli.route import app as route_app
    from margin.cli.serve import app as serve_app
    from margin.cli.sweep import sweep

    app.add_typer(route_app, name="route", help="Risk-adjusted routing (Eq. 4), peers, menu.")
    app.add_typer(serve_app, name="serve", help="Serving simulator with congestion prices.")
    app.add_typer(economy_app, name="economy", help="The four layers end to end: siloed vs shared.")
    app.add_typer(predictions_app, name="predictions", help="The three predictions of Sec. 4.")
    app.command("report", help=report.__doc__)(report)
    app.command("sweep", help=sweep.__doc__)(sweep)

    app.add_typer(agent_app, name="agent", help="Autonomy schedule, agent simulator, evidence.")

    app.add_typer(cache_app, name="cache", help="KV caches as priced inventory (Eq. 10).")
    app.add_typer(rl_app, name="rl", help="RL post-training as token investment (Eq. 11/12).")


_mount_layers()

console = Console()

JsonFlag = Annotated[bool, typer.Option("--json", help="Print machine-readable JSON.")]
FileArg = Annotated[Path, typer.Argument(help="Input JSON file.")]


def _fmt(x: float) -> str:
    return f"{x:,.6g}"


@app.command()
def allocate(file: FileArg, as_json: JsonFlag = False) -> None:
    """Apply Eq. 1 to one request: argmax_i V·ΔQ_i − ΔC_i − λ·ΔL_i − ρ·ΔR_i.

    FILE is {"value": V, "latency_price": λ, "risk_price": ρ, "options": [{"name",
    "quality", "cost", "latency", "risk"}]} (latency, risk and both prices optional).
    """
    from margin.core.allocation import allocate as allocate_rule
    from margin.core.prices import Option, PriceVector

    with guard():
        data = read_json(file)
        if not isinstance(data, dict):
            raise InputError(f"{file}: expected a JSON object at the top level")
        prices = PriceVector.from_dict(data, where=str(file), ignore=("options",))
        raw = data.get("options")
        if not isinstance(raw, list) or not raw:
            raise InputError(f"{file}: field 'options' must be a non-empty list")
        options = [Option.from_dict(o, where=f"{file}: options[{k}]") for k, o in enumerate(raw)]
        result = allocate_rule(prices, options)
    if as_json:
        print_json({"choice": result.choice, "surplus": result.surplus})
        return
    table = Table(
        title=f"Eq. 1 at V={_fmt(prices.value)}, λ={_fmt(prices.latency_price)}, "
        f"ρ={_fmt(prices.risk_price)}"
    )
    for col in ("option", "V·ΔQ", "ΔC", "λ·ΔL", "ρ·ΔR", "surplus", ""):
        table.add_column(col, justify="right" if col not in ("option", "") else "left")
    for o in options:
        table.add_row(
            o.name,
            _fmt(prices.value * o.quality),
            _fmt(o.cost),
            _fmt(prices.latency_price * o.latency),
            _fmt(prices.risk_price * o.risk),
            _fmt(result.surplus[o.name]),
            "← choice" if o.name == result.choice else "",
        )
    console.print(table)


@prices_app.command("discover")
def prices_discover(file: FileArg, as_json: JsonFlag = False) -> None:
    """Solve the relaxed primal of Eq. 3 with HiGHS and print the dual prices.

    FILE is {"tasks": [{"id", "value", "options": [...]}], "budgets": {"cost": C,
    "latency": L, "risk": R}}; an absent budget is unconstrained.
    """
    from margin.core.discovery import discover_prices, load_discovery_problem

    with guard():
        data = read_json(file)
        tasks, budgets = load_discovery_problem(data, where=str(file))
        result = discover_prices(tasks, budgets)
    if as_json:
        print_json(result.to_json())
        return
    _print_discovery(result.to_json())


def _print_discovery(out: dict[str, Any]) -> None:
    t = Table(title="Dual prices of the shared budgets (Eq. 3)")
    t.add_column("budget")
    t.add_column("dual µ", justify="right")
    for k, v in out["prices"].items():
        t.add_row(k, _fmt(v))
    t.add_row("λ = µL/(1+µC)", _fmt(out["lambda"]))
    t.add_row("ρ = µR/(1+µC)", _fmt(out["rho"]))
    t.add_row("welfare W", _fmt(out["welfare"]))
    console.print(t)
    alloc: dict[str, dict[str, float]] = out["allocation"]
    shares: dict[str, float] = {}
    for per_task in alloc.values():
        for name, share in per_task.items():
            shares[name] = shares.get(name, 0.0) + share
    n = max(len(alloc), 1)
    a = Table(title=f"Allocation over {len(alloc)} tasks (share of tasks per option)")
    a.add_column("option")
    a.add_column("share", justify="right")
    for name, total in sorted(shares.items(), key=lambda kv: -kv[1]):
        a.add_row(name, f"{total / n:.1%}")
    a.add_row("(not served)", f"{max(0.0, 1 - sum(shares.values()) / n):.1%}")
    console.print(a)


@ledger_app.command("summary")
def ledger_summary(
    db: Annotated[Path, typer.Argument(help="Ledger database (SQLite).")],
    as_json: JsonFlag = False,
) -> None:
    """Records, money, tokens and regret per layer and tenant."""
    from margin.ledger.store import Ledger

    with guard(), Ledger(existing_ledger(db)) as led:
        summary = led.summary()
    if as_json:
        print_json(summary)
        return
    t = Table(title=f"Ledger {db}")
    t.add_column("metric")
    t.add_column("value", justify="right")
    for key, value in summary.items():
        if isinstance(value, dict):
            for sub, v in value.items():
                t.add_row(f"{key}.{sub}", str(v))
        else:
            t.add_row(key, str(value))
    console.print(t)


@ledger_app.command("export")
def ledger_export(
    db: Annotated[Path, typer.Argument(help="Ledger database (SQLite).")],
    out: Annotated[Path, typer.Argument(help="Output Parquet file.")],
) -> None:
    """Export every record to Parquet (written atomically), for DuckDB or pandas."""
    from margin.ledger.analytics import export_parquet

    with guard():
        rows = export_parquet(existing_ledger(db), out)
    console.print(f"wrote {rows} records to {out}")


@ledger_app.command("import-otel")
def ledger_import_otel(
    spans: Annotated[
        Path, typer.Argument(help="OpenTelemetry GenAI spans (OTLP/JSON or JSON lines).")
    ],
    db: Annotated[Path, typer.Argument(help="Ledger database to append to (created if absent).")],
    builtin_prices: Annotated[
        bool,
        typer.Option("--builtin-prices/--no-prices", help="Price usage with the built-in table."),
    ] = True,
    price_table: Annotated[
        Path | None, typer.Option("--price-table", help="A LiteLLM model_prices JSON file.")
    ] = None,
    tenant_attribute: Annotated[
        str, typer.Option(help="Span attribute naming the tenant.")
    ] = "tenant.id",
    alternatives: Annotated[
        Path | None,
        typer.Option(
            "--alternatives",
            help='JSON {"model": expected quality} of the models that could have answered; '
            "with --value, lets `margin diagnose` test Eq. 1 on your calls.",
        ),
    ] = None,
    value: Annotated[
        float | None, typer.Option("--value", help="Task value V (USD) of these calls.")
    ] = None,
) -> None:
    """Import OpenTelemetry GenAI spans as ledger records (one per span, one transaction)."""
    from margin.core.prices import PriceVector
    from margin.ledger.importers import records_from_otel_spans
    from margin.ledger.pricing import PriceTable
    from margin.ledger.store import Ledger

    with guard():
        if not spans.is_file():
            raise InputError(f"{spans}: no such spans file")
        table = (
            PriceTable.load(price_table)
            if price_table is not None
            else (PriceTable.builtin() if builtin_prices else None)
        )
        alt = None
        if alternatives is not None:
            alt = read_json(alternatives)
            if not isinstance(alt, dict):
                raise InputError(f"{alternatives}: expected a JSON object of model → quality")
        records = records_from_otel_spans(
            spans,
            prices=table,
            tenant_attribute=tenant_attribute,
            alternatives=alt,
            price_vector=PriceVector(value) if value is not None else None,
        )
        with Ledger(db) as led:
            n = led.extend(records)
    console.print(f"imported {n} spans into {db}")


@app.command()
def diagnose(
    ledger: Annotated[Path, typer.Argument(help="Ledger database (SQLite).")],
    as_json: JsonFlag = False,
    mode: Annotated[
        list[str] | None, typer.Option("--mode", help="Only these failure modes (repeatable).")
    ] = None,
) -> None:
    """Find the failure modes of Table 2 in a ledger: the records, evidence and loss."""
    from margin.diagnose import diagnose as run_diagnose
    from margin.ledger.store import Ledger

    with guard(), Ledger(existing_ledger(ledger)) as led:
        findings = run_diagnose(led.records(), modes=mode)
    if as_json:
        print_json({"findings": [f.to_json() for f in findings]})
        return
    t = Table(title=f"Failure modes in {ledger} (Table 2)")
    t.add_column("mode")
    t.add_column("records", justify="right")
    t.add_column("loss (USD)", justify="right")
    t.add_column("inequality tested")
    for f in findings:
        t.add_row(f.mode, str(f.count), _fmt(f.loss), f.inequality)
    console.print(t)


@app.command()
def demo(
    data_dir: Annotated[
        Path | None,
        typer.Option(
            help="Folder of the shared data (default: $MARGIN_SHARED_DATA or ../shared/data)."
        ),
    ] = None,
    seed: Annotated[int, typer.Option(help="Random seed of the task values and the stream.")] = 0,
    out: Annotated[
        Path,
        typer.Option(help="Folder for ledger.db and report.html; created if absent."),
    ] = Path("out"),
) -> None:
    """The main job: the Sec. 2 worked example, price discovery on real routing data, and
    the end-to-end economy (siloed vs shared prices) with its ledger, diagnostics and report."""
    from margin.cli.demo import default_data_dir, run_demo

    with guard():
        if out.exists() and not out.is_dir():
            raise InputError(f"{out}: exists and is not a folder")
        out.mkdir(parents=True, exist_ok=True)
        run_demo(
            console,
            data_dir if data_dir is not None else default_data_dir(),
            out_dir=out,
            seed=seed,
        )


@app.command(
    context_settings={"allow_extra_args": True, "ignore_unknown_options": True},
    add_help_option=False,
)
def gate(ctx: typer.Context) -> None:
    """Claude Code PreToolUse hook: price a tool call, answer allow / ask / deny.

    Reads the hook JSON on stdin; options: --schedule FILE, --ledger PATH. (The ``margin``
    command answers ``margin gate`` before loading this CLI, to start fast.)
    """
    from margin.agent.gate import main as gate_main

    raise typer.Exit(gate_main(list(ctx.args)))


__all__ = ["app"]
