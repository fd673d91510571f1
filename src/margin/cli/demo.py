"""``margin demo``, the main job: the worked example of Sec. 2, price discovery on real
routing data, and the end-to-end economy (siloed vs shared prices) with its ledger, the
failure-mode diagnostics and the token-aware HTML report.

The discovery run uses the RouterBench-format tables in ``../shared/data/routing/routerbench``
(RouterBench, withmartian/routerbench, via shuhao02/RouterDC; code MIT): every prompt is a
task whose options are the 11 models, with ex-ante quality ΔQ = the model's mean accuracy on
that benchmark (a per-task prior), ΔC = the prompt's logged cost in USD and
ΔR = 1 − ΔQ (the probability of a wrong answer; ρ is then USD per expected error).
The data carry no task values, so V is drawn per prompt from a log-normal with median
$0.02 (seeded): a stated assumption of the demo, not a measurement.
"""

from __future__ import annotations

import os
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
from rich.console import Console
from rich.progress import Progress
from rich.table import Table

from margin.core.allocation import allocate, crossover_value
from margin.core.discovery import Budgets, PriceController, TaskBatch, discover_prices
from margin.core.prices import InputError, Option, PriceVector
from margin.economy.config import EconomyConfig

__all__ = ["default_data_dir", "routerbench_batch", "run_demo"]

ROUTERBENCH_FILES = ("arc_challenge_train.csv", "mbpp_train.csv", "winograde_train.csv")


def default_data_dir() -> Path:
    """``$MARGIN_SHARED_DATA`` or ``../shared/data`` (the layout of a checkout)."""
    return Path(os.environ.get("MARGIN_SHARED_DATA", "../shared/data"))


def routerbench_batch(data_dir: Path, seed: int = 0) -> tuple[TaskBatch, list[str]]:
    """The RouterBench train tables as a :class:`TaskBatch` (see the module docstring)."""
    from margin.routing.data import concat_datasets, load_routerbench

    folder = data_dir / "routing" / "routerbench"
    paths = [folder / f for f in ROUTERBENCH_FILES]
    missing = [str(p) for p in paths if not p.is_file()]
    if missing:
        raise InputError(
            f"{missing[0]}: RouterBench data not found (pass --data-dir, or set MARGIN_SHARED_DATA)"
        )
    ds = concat_datasets([load_routerbench(p) for p in paths])
    tasks = np.asarray(ds.tasks)
    prior = np.empty_like(ds.quality)
    for t in np.unique(tasks):
        rows = tasks == t
        prior[rows] = ds.quality[rows].mean(axis=0)
    rng = np.random.default_rng(seed)
    value = rng.lognormal(np.log(0.02), 1.0, ds.n)
    batch = TaskBatch.from_arrays(
        value, prior, ds.cost, None, 1.0 - prior, option_names=list(ds.models)
    )
    return batch, list(ds.models)


def _worked_example(console: Console) -> dict[str, float]:
    cheap = Option("cheap", 0.7, 1.0, risk=0.05)
    frontier = Option("frontier", 0.9, 5.0, risk=0.01)
    t = Table(title="Sec. 2 worked example: Eq. 1 surplus V·ΔQ − ΔC − ρ·ΔR")
    for col in ("V", "ρ", "cheap", "frontier", "choice"):
        t.add_column(col, justify="right")
    for v, rho in ((10.0, 0.0), (100.0, 0.0), (15.0, 0.0), (15.0, 50.0)):
        a = allocate(PriceVector(v, risk_price=rho), [cheap, frontier])
        t.add_row(
            f"{v:g}",
            f"{rho:g}",
            f"{a.surplus['cheap']:.2f}",
            f"{a.surplus['frontier']:.2f}",
            str(a.choice),
        )
    console.print(t)
    v0 = crossover_value(cheap, frontier)
    v1 = crossover_value(cheap, frontier, PriceVector(0.0, risk_price=50.0))
    console.print(
        f"Crossover V* = (c_f − c_c)/(q_f − q_c) = [bold]{v0:g}[/]; with ρ = 50, "
        f"r_c = 0.05, r_f = 0.01 it falls to [bold]{v1:g}[/].\n"
    )
    return {"v_star": v0, "v_star_with_risk": v1}


def run_demo(
    console: Console,
    data_dir: Path,
    *,
    out_dir: Path | None = None,
    seed: int = 0,
    intervals: int = 400,
    economy: EconomyConfig | None = None,
) -> dict[str, Any]:
    """Print the worked example, price discovery and (with ``out_dir``) the economy.

    With ``out_dir`` the economy runs on ``economy`` (default: the built-in workload),
    its ledger is written to ``out_dir/ledger.db`` and diagnosed.
    """
    out: dict[str, Any] = {"worked_example": _worked_example(console)}
    out["discovery"] = _price_discovery(console, data_dir, seed, intervals)
    if out_dir is not None:
        out["economy"] = _economy(console, out_dir, economy or EconomyConfig(seed=seed))
    return out


def _price_discovery(console: Console, data_dir: Path, seed: int, intervals: int) -> dict[str, Any]:
    batch, models = routerbench_batch(data_dir, seed)
    free = discover_prices(batch)
    budgets = Budgets(cost=0.4 * free.usage["cost"], risk=0.9 * free.usage["risk"])
    lp = discover_prices(batch, budgets)
    t = Table(
        title=f"Price discovery (Eq. 3) on {batch.n} RouterBench prompts × {batch.m} models: "
        "cost budget 40% of unconstrained spend, risk budget 90% of its expected errors"
    )
    for col in ("", "unconstrained", "with budgets"):
        t.add_column(col, justify="right")
    t.add_row("welfare W = Σ(V·ΔQ − ΔC)·y", f"{free.welfare:.4f}", f"{lp.welfare:.4f}")
    t.add_row("spend (USD)", f"{free.usage['cost']:.4f}", f"{lp.usage['cost']:.4f}")
    t.add_row("expected errors", f"{free.usage['risk']:.1f}", f"{lp.usage['risk']:.1f}")
    t.add_row("µC (value of a budget dollar)", f"{free.mu_cost:.4g}", f"{lp.mu_cost:.4g}")
    t.add_row("µL (latency: unconstrained)", f"{free.mu_latency:.4g}", f"{lp.mu_latency:.4g}")
    t.add_row("ρ = µR/(1+µC), USD per error", f"{free.rho:.4g}", f"{lp.rho:.4g}")
    console.print(t)
    shares = Table(title="Share of prompts per model")
    shares.add_column("model")
    shares.add_column("unconstrained", justify="right")
    shares.add_column("with budgets", justify="right")
    s_free, s_lp = free.allocation.sum(axis=0) / batch.n, lp.allocation.sum(axis=0) / batch.n
    for k in np.argsort(-(s_free + s_lp)):
        if s_free[k] + s_lp[k] > 1e-3:
            shares.add_row(models[k], f"{s_free[k]:.1%}", f"{s_lp[k]:.1%}")
    shares.add_row("(not served)", f"{1 - s_free.sum():.1%}", f"{1 - s_lp.sum():.1%}")
    console.print(shares)

    size = 256
    frac = size / batch.n
    assert budgets.cost is not None and budgets.risk is not None
    ctl = PriceController(
        Budgets(cost=budgets.cost * frac, risk=budgets.risk * frac),
        eta0=1.0,
        # Scales from the data, not from the LP: a dollar, and the median task value per error.
        scale=(1.0, 1.0, float(np.median(batch.value))),
        burn_in=intervals // 4,
    )
    rng = np.random.default_rng(seed + 1)
    with Progress(console=console, transient=True) as progress:
        job = progress.add_task("online price controller", total=intervals)
        for _ in range(intervals):
            ctl.step(batch.subset(rng.choice(batch.n, size, replace=False)))
            progress.advance(job)
    avg = ctl.prices_avg
    c = Table(title=f"Online PriceController ({intervals} intervals of {size} prompts) vs LP")
    for col in ("price", "LP dual", "controller (Polyak average)"):
        c.add_column(col, justify="right")
    c.add_row("µC", f"{lp.mu_cost:.4g}", f"{avg.mu_cost:.4g}")
    c.add_row("µR", f"{lp.mu_risk:.4g}", f"{avg.mu_risk:.4g}")
    c.add_row("µL", f"{lp.mu_latency:.4g}", f"{avg.mu_latency:.4g}")
    console.print(c)
    return {
        "tasks": batch.n,
        "welfare": lp.welfare,
        "mu": list(lp.mu),
        "rho": lp.rho,
        "controller_mu": list(avg.mu),
    }


def _economy(console: Console, out_dir: Path, config: EconomyConfig) -> dict[str, Any]:
    from margin.cli._common import write_ledger
    from margin.cli.economy import print_economy
    from margin.diagnose import diagnose
    from margin.economy.engine import run_economy
    from margin.ledger.records import LedgerRecord
    from margin.report.page import write_report

    if not out_dir.is_dir():
        raise InputError(f"{out_dir}: output folder does not exist")
    siloed: list[LedgerRecord] = []
    shared: list[LedgerRecord] = []
    with Progress(console=console, transient=True) as progress:
        job = progress.add_task("economy", total=6 * config.n_intervals)

        def tick(name: str, done: int, total: int) -> None:
            progress.update(job, advance=1, description=f"economy: {name}")

        result = run_economy(config, sink_siloed=siloed, sink_shared=shared, progress=tick)
    print_economy(result, console)
    ledger = out_dir / "ledger.db"
    n = write_ledger(ledger, [*siloed, *shared])
    found = {
        regime: {f.mode: f for f in diagnose(recs)}
        for regime, recs in (("siloed", siloed), ("shared", shared))
    }
    t = Table(title="Failure modes of Table 2 found in each regime's ledger")
    t.add_column("mode")
    for regime in found:
        t.add_column(f"{regime}: records", justify="right")
        t.add_column(f"{regime}: loss $", justify="right")
    for mode in found["siloed"]:
        cells: list[str] = []
        for regime in found:
            f = found[regime][mode]
            cells += [str(f.count), f"{f.loss:,.2f}"]
        t.add_row(mode, *cells)
    console.print(t)
    page = out_dir / "report.html"
    write_report(
        page,
        [*siloed, *shared],
        findings=[
            replace(f, mode=f"{f.mode} ({regime})")
            for regime, per in found.items()
            for f in per.values()
        ],
        comparison=result.as_dict(),
        title=f"margin economy (seed {config.seed}): siloed vs shared prices",
    )
    console.print(f"ledger: {ledger} ({n} records) — try `margin diagnose {ledger}`")
    console.print(f"report: {page} (open it in a browser; it needs no network)")
    return {
        "welfare": {"siloed": result.siloed.total.welfare, "shared": result.shared.total.welfare},
        "attribution": dict(result.attribution),
        "findings": {regime: {m: f.count for m, f in per.items()} for regime, per in found.items()},
        "ledger": str(ledger),
        "report": str(page),
        "records": n,
    }
