"""``margin predictions run``: the three falsifiable predictions of Sec. 4 on real data.

``margin predictions run --out DIR [--data-dir DIR] [--quick] [--seed N] [--json]``

Runs :func:`margin.economy.predictions.run_predictions` and writes
``prediction1_verifier.png``, ``prediction2_router_regret.png`` and
``prediction3_externality.png`` into ``--out`` (each atomically). Prints a table of the
headline numbers, or with ``--json`` exactly::

    {"quick": bool, "seed": int, "data_dir": str,
     "headline": {
       "verifier": {"optimal_budget_low": int, "optimal_budget_high": int,
                    "risk_at_zero_high": float, "risk_at_optimum_high": float,
                    "shortfall_high_at_low_budget_usd": float, "shortfall_z": float},
       "router_regret": {"top_tier": str, "top_tier_request_share": float,
                         "cost_min_top_tier_regret_usd": float,
                         "eq4_top_tier_regret_usd": float,
                         "cost_min_top_tier_regret_share": float,
                         "economy_siloed_top_regret_usd": float | null,   # null with
                         "economy_shared_top_regret_usd": float | null},  # --quick
       "externality": {"fcfs_slope_s_per_mtok": float, "priced_slope_s_per_mtok": float,
                       "fcfs_corr": float, "priced_corr": float,
                       "fcfs_short_ttft_mean_s": float, "priced_short_ttft_mean_s": float}},
     "verifier": {...}, "router_regret": {...}, "externality": {...},   # full results
     "plots": {"verifier": path, "router_regret": path, "externality": path}}

``--out`` is created when missing. Bad input (missing data folder or file, ``--out`` a
file) prints one line on stderr and exits with code 2.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Any

import typer

from margin.cli._common import guard, print_json
from margin.core.prices import InputError

__all__ = ["app"]

app = typer.Typer(
    help="The three predictions of Sec. 4 as reproducible experiments with plots.",
    no_args_is_help=True,
)


@app.callback()
def _predictions() -> None:
    """The three predictions of Sec. 4."""


def _print(result: dict[str, Any]) -> None:
    from rich.console import Console
    from rich.table import Table

    h = result["headline"]
    t = Table(
        title="Sec. 4 predictions on the shared data" + (" (quick)" if result["quick"] else "")
    )
    t.add_column("prediction")
    t.add_column("figure")
    t.add_column("value", justify="right")
    v, r, e = h["verifier"], h["router_regret"], h["externality"]
    rows = [
        ("1 verifier budget", "T_v* low-risk / high-risk (steps)",
         f"{v['optimal_budget_low']} / {v['optimal_budget_high']}"),
        ("", "realized risk (high-risk), T_v = 0 → T_v*",
         f"{v['risk_at_zero_high']:.1%} → {v['risk_at_optimum_high']:.2%}"),
        ("", "shortfall at low-risk T_v* on high-risk tasks",
         f"{v['shortfall_high_at_low_budget_usd']:.2f} USD/task (z {v['shortfall_z']:.1f})"),
        ("2 router regret", f"top V tier ({r['top_tier']}) share of requests",
         f"{r['top_tier_request_share']:.1%}"),
        ("", "mean regret there: cost-min vs Eq. 4",
         f"{r['cost_min_top_tier_regret_usd']:.3f} vs {r['eq4_top_tier_regret_usd']:.3f} USD"),
        ("", "cost-min regret from the top tier", f"{r['cost_min_top_tier_regret_share']:.1%}"),
        *(
            [("", "economy ledger, top 10% of V: siloed vs shared",
              f"{r['economy_siloed_top_regret_usd']:.2f} vs "
              f"{r['economy_shared_top_regret_usd']:.2f} USD")]
            if r["economy_siloed_top_regret_usd"] is not None else []
        ),
        ("3 externality", "slope FCFS vs priced (s TTFT per Mtok)",
         f"{e['fcfs_slope_s_per_mtok']:.2f} vs {e['priced_slope_s_per_mtok']:.2f}"),
        ("", "correlation FCFS vs priced", f"{e['fcfs_corr']:.2f} vs {e['priced_corr']:.2f}"),
        ("", "short tenants' mean TTFT FCFS vs priced",
         f"{e['fcfs_short_ttft_mean_s']:.2f} vs {e['priced_short_ttft_mean_s']:.2f} s"),
    ]  # fmt: skip
    for row in rows:
        t.add_row(*row)
    console = Console()
    console.print(t)
    for name, path in result["plots"].items():
        console.print(f"{name}: {path}")


@app.command("run")
def run(
    out: Annotated[Path, typer.Option("--out", help="Folder for the three PNG plots.")],
    data_dir: Annotated[
        Path | None,
        typer.Option(
            "--data-dir",
            help="Folder of the shared data (default: $MARGIN_SHARED_DATA or ../shared/data).",
        ),
    ] = None,
    quick: Annotated[
        bool, typer.Option("--quick", help="Smaller experiments (seconds, not minutes).")
    ] = False,
    seed: Annotated[int, typer.Option("--seed", help="Random seed.")] = 0,
    as_json: Annotated[bool, typer.Option("--json", help="Print the documented JSON.")] = False,
) -> None:
    """Run the three predictions, write their plots into --out, print the headline numbers."""
    with guard():
        from margin.economy.predictions import run_predictions

        default = Path(os.environ.get("MARGIN_SHARED_DATA", "../shared/data"))
        root = data_dir if data_dir is not None else default
        if not root.is_dir():
            raise InputError(f"--data-dir: folder {root} does not exist")
        if out.exists() and not out.is_dir():
            raise InputError(f"--out: {out} is a file, not a folder")
        out.mkdir(parents=True, exist_ok=True)
        if as_json:
            result = run_predictions(root, out, quick=quick, seed=seed)
        else:
            from rich.progress import Progress

            with Progress(transient=True) as bar:
                task = bar.add_task("verifier budget", total=3)
                label = {"verifier": "router regret", "router_regret": "externality"}

                def tick(name: str) -> None:
                    bar.update(task, advance=1, description=label.get(name, "done"))

                result = run_predictions(root, out, quick=quick, seed=seed, progress=tick)
    if as_json:
        print_json(result)
    else:
        _print(result)
