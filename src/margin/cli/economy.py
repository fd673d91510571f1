"""``margin economy run``: the end-to-end economy, siloed vs shared prices.

``margin economy run [--config FILE] [--ledger PATH] [--json] [--no-attribution]``

Runs both regimes on the same task stream (the built-in workload, or a JSON/YAML
:class:`~margin.economy.config.EconomyConfig`), prints a per-layer table and the
attribution of the welfare gap to layers; ``--ledger`` writes every decision of both
regimes (request ids prefixed ``siloed-`` / ``shared-``) to a SQLite ledger, atomically.

``--json`` prints exactly::

    {"config": {...EconomyConfig fields...},
     "siloed": REGIME, "shared": REGIME,
     "welfare_gain": float,                      # W(shared) − W(siloed), USD
     "attribution": {"routing": float, "agent": float, "serving": float,
                     "capital": float, "interaction": float},   # {} with --no-attribution
     "ledger": str | null, "records": {"siloed": int, "shared": int}}

    REGIME = {"regime": str,
              "layers": {LAYER: {"welfare", "cost", "latency", "risk", "regret",
                                 "decisions"}},      # LAYER in routing, agent, serving, capital
              "total": {same keys}, "success_rate": float, "calls": int,
              "rejected_background": int,
              "prices": [[mu_cost, lambda, rho], ...]}   # published per interval
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from margin.cli._common import guard, print_json, write_ledger
from margin.core.prices import InputError

if TYPE_CHECKING:
    from rich.console import Console

    from margin.economy.engine import EconomyResult
    from margin.ledger.records import LedgerRecord

__all__ = ["app", "print_economy"]

app = typer.Typer(
    help="The end-to-end economy: four layers on siloed vs shared prices (Sec. 1, 4).",
    no_args_is_help=True,
)


@app.callback()
def _economy() -> None:
    """The end-to-end economy."""


def print_economy(result: EconomyResult, console: Console | None = None) -> None:
    """Print the siloed-vs-shared table per layer, the shared regime's published price path
    and the attribution table."""
    from rich.console import Console
    from rich.table import Table

    from margin.economy.engine import LAYER_NAMES

    console = console if console is not None else Console()
    t = Table(title=f"Economy (seed {result.config.seed}): siloed vs shared prices")
    for col in ("layer", "regime"):
        t.add_column(col)
    for col in ("welfare $", "cost $", "latency s", "risk $", "regret $"):
        t.add_column(col, justify="right")
    for layer in (*LAYER_NAMES, "total"):
        for name, res in (("siloed", result.siloed), ("shared", result.shared)):
            rep = res.total if layer == "total" else res.layers[layer]
            t.add_row(
                layer if name == "siloed" else "",
                name,
                *(
                    f"{getattr(rep, k):,.2f}"
                    for k in ("welfare", "cost", "latency", "risk", "regret")
                ),
                end_section=name == "shared",
            )
    console.print(t)
    console.print(
        f"welfare gain of shared prices: [bold]{result.welfare_gain:,.2f}[/bold] USD; "
        f"success rate {result.siloed.success_rate:.1%} → {result.shared.success_rate:.1%}"
    )
    cfg = result.config
    pt = Table(
        title="Published price path (shared): duals of the cost budget, latency SLA and "
        "risk envelope per interval"
    )
    for col in ("interval", "µC", "λ = µL/(1+µC) $/s", "ρ = µR/(1+µC) $/$", "priced (> 0)"):
        pt.add_column(col, justify="right")
    for it, (mu_c, lam, rho) in enumerate(result.shared.prices):
        binding = [n for n, x in (("cost", mu_c), ("latency", lam), ("risk", rho)) if x > 0]
        pt.add_row(
            f"{it * cfg.interval_s:g}-{min((it + 1) * cfg.interval_s, cfg.horizon_s):g} s",
            f"{mu_c:.3f}",
            f"{lam:.4f}",
            f"{rho:.3f}",
            ", ".join(binding) or "-",
        )
    console.print(pt)
    if result.attribution:
        at = Table(title="Attribution (swap one layer to shared prices)")
        at.add_column("layer")
        at.add_column("Δ welfare $", justify="right")
        for k, v in result.attribution.items():
            at.add_row(k, f"{v:,.2f}")
        console.print(at)


@app.command("run")
def run(
    config: Annotated[
        Path | None, typer.Option("--config", help="EconomyConfig as JSON or YAML.")
    ] = None,
    ledger: Annotated[
        Path | None, typer.Option("--ledger", help="Write every decision to this SQLite file.")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the documented JSON.")] = False,
    attribution: Annotated[
        bool, typer.Option("--attribution/--no-attribution", help="Per-layer swap runs.")
    ] = True,
) -> None:
    """Run the economy on the built-in workload (or ``--config``) in both regimes."""
    with guard():
        from margin.economy.config import EconomyConfig, load_config
        from margin.economy.engine import run_economy

        cfg = load_config(config) if config is not None else EconomyConfig()
        if ledger is not None and not ledger.parent.exists():
            raise InputError(f"{ledger}: folder {ledger.parent} does not exist")
        siloed: list[LedgerRecord] = []
        shared: list[LedgerRecord] = []
        if as_json:
            result = run_economy(cfg, sink_siloed=siloed, sink_shared=shared, attribute=attribution)
        else:
            from rich.progress import Progress

            runs = 2 + (4 if attribution else 0)
            with Progress(transient=True) as bar:
                task = bar.add_task("economy", total=runs * cfg.n_intervals)

                def tick(name: str, done: int, total: int) -> None:
                    bar.update(task, advance=1, description=name)

                result = run_economy(
                    cfg,
                    sink_siloed=siloed,
                    sink_shared=shared,
                    attribute=attribution,
                    progress=tick,
                )
        if ledger is not None:
            write_ledger(ledger, [*siloed, *shared])
        if as_json:
            out: dict[str, Any] = {
                "config": result.config.as_dict(),
                **{k: v for k, v in result.as_dict().items() if k != "seed"},
                "ledger": str(ledger) if ledger is not None else None,
                "records": {"siloed": len(siloed), "shared": len(shared)},
            }
            print_json(out)
        else:
            print_economy(result)
            if ledger is not None:
                typer.echo(f"ledger: {ledger} ({len(siloed) + len(shared)} records)")
