"""``margin agent``: the autonomy schedule, the policy simulator and the real-data evidence.

``margin gate`` (the Claude Code hook) is not here: it is :func:`margin.agent.gate.main`,
dispatched before typer is imported so that it stays fast.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from margin.core.prices import InputError

app = typer.Typer(
    name="agent",
    help="Action layer (Sec. 3.2): autonomy schedule, step-policy simulator, evidence.",
    no_args_is_help=True,
    add_completion=False,
)

FORMATS = ("table", "json", "yaml", "claude-code", "openhands", "langgraph")


def _fail(message: str) -> None:
    sys.stderr.write(f"margin agent: {message}\n")
    raise typer.Exit(code=2)


def _write(text: str, output: Path | None) -> None:
    if output is None:
        sys.stdout.write(text)
        return
    from margin.agent.schedule import write_text_atomic

    write_text_atomic(os.fspath(output), text)


def _read_prices(path: Path) -> Any:
    from margin.core.prices import PriceVector

    try:
        text = path.read_text(encoding="utf-8")
    except OSError as e:
        raise InputError(f"{path}: cannot read prices ({e.strerror})") from None
    if path.suffix.lower() in (".yaml", ".yml"):
        import yaml

        try:
            data = yaml.safe_load(text)
        except yaml.YAMLError:
            raise InputError(f"{path}: invalid YAML") from None
    else:
        try:
            data = json.loads(text)
        except json.JSONDecodeError as e:
            raise InputError(f"{path}: line {e.lineno}: invalid JSON ({e.msg})") from None
    if isinstance(data, dict) and "prices" in data and isinstance(data["prices"], dict):
        data = data["prices"]
    return PriceVector.from_dict(data, str(path))


@app.command()
def schedule(
    prices: Annotated[
        Path | None,
        typer.Option("--prices", help="price vector (JSON/YAML: value, latency_price, …)"),
    ] = None,
    schedule_file: Annotated[
        Path | None, typer.Option("--schedule", help="schedule to start from (default: shipped)")
    ] = None,
    fmt: Annotated[str, typer.Option("--format", help=f"one of {', '.join(FORMATS)}")] = "table",
    output: Annotated[Path | None, typer.Option("--output", "-o", help="write here")] = None,
) -> None:
    """Derive the autonomy schedule (Eq. 7 with ρ_irr) and print or export it."""
    from margin.agent.schedule import load_schedule

    try:
        if fmt not in FORMATS:
            raise InputError(f"--format: unknown '{fmt}' (known: {', '.join(FORMATS)})")
        s = load_schedule(schedule_file)
        if prices is not None:
            s = s.with_prices(_read_prices(prices))
        if fmt != "table":
            _write(s.export(fmt), output)
            return
    except InputError as e:
        _fail(str(e))
    from rich.console import Console
    from rich.table import Table

    p = s.prices
    table = Table(
        title=f"Autonomy schedule at V={p.value:g} USD, λ={p.latency_price:g}/s, "
        f"ρ={p.risk_price:g}, ρ_irr={p.irreversible_risk_price:g}"
    )
    for col in ("class", "p_error", "loss USD", "risk", "ρΔR+ρ_irr·ΔR_irr", "free", "confirm"):
        table.add_column(col, justify="left" if col == "class" else "right")
    table.add_column("multi_party", justify="right")
    table.add_column("level")
    table.add_column("hook")
    for row in s.table_rows():
        sp = row["surplus"]
        table.add_row(
            row["class"],
            f"{row['p_error']:.3g}",
            f"{row['loss_usd']:.2f}",
            row["measure"],
            f"{row['risk_price_usd']:.2f}",
            f"{sp['free']:+.2f}",
            f"{sp['confirm']:+.2f}",
            f"{sp['multi_party']:+.2f}",
            row["level"],
            row["hook"],
        )
    table.add_row(
        "unknown", "", "", "", "", "", "", "", s.unknown_level, s.hook_decision("unknown")
    )
    if output is not None:
        import io

        console = Console(record=True, width=140, file=io.StringIO())
        console.print(table)
        _write(console.export_text(), output)
    else:
        Console().print(table)


@app.command()
def simulate(
    tasks: Annotated[int, typer.Option("--tasks", help="tasks per (V, ρ) cell")] = 300,
    policy: Annotated[
        list[str] | None, typer.Option("--policy", help="policy (repeatable; default: all)")
    ] = None,
    value: Annotated[
        list[float] | None, typer.Option("--value", help="task values V (repeatable)")
    ] = None,
    risk_price: Annotated[
        list[float] | None, typer.Option("--risk-price", help="risk prices ρ (repeatable)")
    ] = None,
    irreversible_risk_price: Annotated[float, typer.Option(help="ρ_irr")] = 2.0,
    seed: Annotated[int, typer.Option(help="random seed")] = 0,
    as_json: Annotated[bool, typer.Option("--json", help="print JSON")] = False,
) -> None:
    """Compare step policies on simulated "fix the failing test" tasks over a (V, ρ) grid.

    JSON: {"tasks": N, "irreversible_risk_price": x, "grid": [{"value", "risk_price",
    "policies": {name: {utility, cost_usd, success_rate, wrong_patch_rate,
    irreversible_loss_rate, irreversible_loss_usd, human_minutes, steps, verify_steps}},
    "best": name}]}.
    """
    from margin.agent.simulator import POLICIES, compare_policies, sample_tasks

    values = value or [5.0, 30.0, 300.0]
    rhos = risk_price or [0.0, 1.0, 10.0]
    names = policy or list(POLICIES)
    try:
        if tasks < 1:
            raise InputError(f"--tasks: must be >= 1, got {tasks}")
        for name in names:
            if name not in POLICIES:
                raise InputError(f"--policy: unknown '{name}' (known: {', '.join(POLICIES)})")
        grid: list[dict[str, Any]] = []
        cells = [(v, r) for v in values for r in rhos]
        from rich.progress import Progress

        with Progress(transient=True, disable=as_json or not sys.stderr.isatty()) as bar:
            job = bar.add_task("simulating", total=len(cells))
            for k, (v, r) in enumerate(cells):
                batch = sample_tasks(
                    tasks,
                    value=v,
                    risk_price=r,
                    irreversible_risk_price=irreversible_risk_price,
                    seed=seed + k,
                )
                res = compare_policies(batch, names)
                best = max(res, key=lambda n: res[n]["utility"])
                grid.append({"value": v, "risk_price": r, "policies": res, "best": best})
                bar.advance(job)
    except InputError as e:
        _fail(str(e))
    if as_json:
        payload = {"tasks": tasks, "irreversible_risk_price": irreversible_risk_price, "grid": grid}
        sys.stdout.write(json.dumps(payload, indent=2) + "\n")
        return
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"Policies on {tasks} tasks per cell (ρ_irr={irreversible_risk_price:g})")
    for col in ("V", "ρ", "policy", "utility", "cost USD", "success", "wrong patch", "irrev. loss"):
        table.add_column(col, justify="right")
    table.add_column("human min", justify="right")
    for cell in grid:
        for name, r in cell["policies"].items():
            mark = " *" if name == cell["best"] else ""
            table.add_row(
                f"{cell['value']:g}",
                f"{cell['risk_price']:g}",
                name + mark,
                f"{r['utility']:.2f}",
                f"{r['cost_usd']:.2f}",
                f"{r['success_rate']:.3f}",
                f"{r['wrong_patch_rate']:.3f}",
                f"{r['irreversible_loss_rate']:.3f}",
                f"{r['human_minutes']:.2f}",
            )
    Console().print(table)


@app.command()
def evidence(
    data: Annotated[
        Path, typer.Option("--data", help="folder with the shared agent/ CSV files")
    ] = Path("../shared/data/agent"),
    as_json: Annotated[bool, typer.Option("--json", help="print JSON")] = False,
) -> None:
    """Resolve rate vs cost, expensive failures, hard-cap cuts and Aider's retry value.

    JSON: {"swe_bench_pro": {model: {...}}, "swe_effi": {scaffold: {...}},
    "aider_polyglot": {...}, "aider_edit": {...}} (per-model Aider rows omitted).
    """
    from margin.agent.evidence import aider_retry_evidence, swe_effi_evidence, swe_pro_evidence

    try:
        pro = swe_pro_evidence(data / "swebench_pro_sweagent_gpt5_sonnet45_per_instance.csv")
        effi = swe_effi_evidence(data / "swe_effi_per_instance.csv")
        aider = {}
        for key, name in (("aider_polyglot", "polyglot"), ("aider_edit", "edit")):
            a = aider_retry_evidence(data / f"aider_{name}_leaderboard_flat.csv")
            a.pop("per_model")
            aider[key] = a
    except InputError as e:
        _fail(str(e))
    if as_json:
        sys.stdout.write(
            json.dumps({"swe_bench_pro": pro, "swe_effi": effi, **aider}, indent=2) + "\n"
        )
        return
    from rich.console import Console
    from rich.table import Table

    console = Console()
    t = Table(title="SWE-Bench Pro, SWE-agent (nilenso/swe-bench-pro-cost-token-time-analysis)")
    for col in ("model", "resolve", "USD resolved", "USD failed", "spend on failures"):
        t.add_column(col, justify="right")
    t.add_column("resolve by cost quintile", justify="left")
    t.add_column("p75 cap: resolved lost / spend saved", justify="left")
    for model, r in pro.items():
        cap = r["hard_caps"]["p75"]
        t.add_row(
            model,
            f"{r['resolve_rate']:.3f}",
            f"{r['cost_resolved_usd']:.2f}",
            f"{r['cost_failed_usd']:.2f}",
            f"{r['spend_on_failures']:.1%}",
            " ".join(f"{x:.2f}" for x in r["resolve_by_cost_quintile"]),
            f"{cap['resolved_lost']:.1%} / {cap['spend_saved']:.1%} (cap {cap['cap_usd']:.2f} USD)",
        )
    console.print(t)
    eff = Table(title="SWE-Effi (SWE-bench Verified): tokens of resolved vs failed tasks")
    for col in ("scaffold", "resolve", "tokens resolved", "tokens failed"):
        eff.add_column(col, justify="right")
    for scaffold, r in effi.items():
        eff.add_row(
            scaffold,
            f"{r['resolve_rate']:.3f}",
            f"{r['tokens_resolved']:,.0f}",
            f"{r['tokens_failed']:,.0f}",
        )
    console.print(eff)
    for key, a in aider.items():
        console.print(
            f"{key}: {a['models']} models, first try {a['mean_pass_rate_1']:.1f}% → one retry "
            f"with test output +{a['mean_gain_points']:.1f} points "
            f"(median +{a['median_gain_points']:.1f})"
        )
