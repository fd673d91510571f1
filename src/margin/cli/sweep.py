"""``margin sweep``: a grid of economies on a process pool or Ray, gathered into Parquet.

``margin sweep --config FILE --out results.parquet [--backend process|ray|serial]
[--workers N] [--json]``

FILE is a sweep spec (JSON or YAML, see :mod:`margin.economy.sweep`): ``base`` config
fields, ``grid`` axes (field: [values]), ``regimes``, ``regret``, ``max_jobs``. One
row per (grid point × regime) is written to ``--out`` atomically (a temporary file
beside it, renamed into place when complete). ``--backend ray`` needs ``margin[ray]``;
it starts a local Ray instance, or joins the cluster named by ``RAY_ADDRESS``.

``--json`` prints exactly::

    {"jobs": int, "rows": int, "out": str, "backend": str, "wall_s": float,
     "summary": {"welfare_by_regime": {REGIME: float},          # mean total welfare, USD
                 "first_axis": str | null,                     # first grid axis but seed
                 "welfare_by_axis": [{"value", "regime", "welfare"}],
                 "gain_by_seed": [{"seed", "gain", "points", "shared_wins"}]}}
                 # gain: mean W(shared) − W(siloed) over the seed's grid points

The command function :func:`sweep` is plain (undecorated); ``app`` is a one-command
Typer app wrapping it (``margin`` mounts it with ``app.command("sweep")(sweep)``).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from margin.cli._common import atomic_write, guard, print_json
from margin.core.prices import InputError

if TYPE_CHECKING:
    from rich.console import Console

__all__ = ["app", "print_summary", "sweep"]


def print_summary(summary: dict[str, Any], console: Console | None = None) -> None:
    """Rich tables of :func:`margin.economy.sweep.summarize_sweep`'s summary."""
    from rich.console import Console
    from rich.table import Table

    console = console if console is not None else Console()
    t = Table(title="Mean total welfare by regime")
    t.add_column("regime")
    t.add_column("welfare $", justify="right")
    for r, w in summary["welfare_by_regime"].items():
        t.add_row(r, f"{w:,.2f}")
    console.print(t)
    axis = summary["first_axis"]
    if axis is not None:
        regimes = list(summary["welfare_by_regime"])
        a = Table(title=f"Mean total welfare by {axis}")
        a.add_column(axis, justify="right")
        for r in regimes:
            a.add_column(f"{r} $", justify="right")
        cells: dict[Any, dict[str, float]] = {}
        for row in summary["welfare_by_axis"]:
            cells.setdefault(row["value"], {})[row["regime"]] = row["welfare"]
        for v, by in cells.items():
            a.add_row(
                f"{v:g}" if isinstance(v, float) else str(v), *(f"{by[r]:,.2f}" for r in regimes)
            )
        console.print(a)
    if summary["gain_by_seed"]:
        g = Table(title="Shared − siloed welfare gain per seed")
        for col in ("seed", "gain $", "grid points", "shared wins"):
            g.add_column(col, justify="right")
        for row in summary["gain_by_seed"]:
            g.add_row(
                str(row["seed"]),
                f"{row['gain']:,.2f}",
                str(row["points"]),
                str(row["shared_wins"]),
            )
        console.print(g)


def sweep(
    config: Annotated[
        Path, typer.Option("--config", help="Sweep spec (JSON or YAML): base, grid, regimes.")
    ],
    out: Annotated[Path, typer.Option("--out", help="Parquet file for the results.")] = Path(
        "sweep.parquet"
    ),
    backend: Annotated[
        str, typer.Option("--backend", help="process (default), ray or serial.")
    ] = "process",
    workers: Annotated[
        int | None, typer.Option("--workers", help="Parallel workers (default: all CPUs).")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the documented JSON.")] = False,
) -> None:
    """Run a grid of economies (price vectors × policies × seeds) into one Parquet file."""
    with guard():
        from margin.economy.sweep import BACKENDS, load_sweep, run_sweep, summarize_sweep

        if backend not in BACKENDS:
            raise InputError(
                f"--backend: unknown backend {backend!r} (choose from {', '.join(BACKENDS)})"
            )
        if workers is not None and workers < 1:
            raise InputError(f"--workers must be >= 1, got {workers}")
        if out.is_dir():
            raise InputError(f"{out}: is a directory, not a Parquet file")
        if not out.parent.exists():
            raise InputError(f"{out}: folder {out.parent} does not exist")
        spec = load_sweep(config)
        t0 = time.perf_counter()
        if as_json:
            table = run_sweep(spec, backend=backend, workers=workers)
        else:
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeElapsedColumn

            with Progress(
                "[progress.description]{task.description}",
                BarColumn(),
                MofNCompleteColumn(),
                TimeElapsedColumn(),
                transient=True,
            ) as bar:
                task = bar.add_task(f"sweep ({backend})", total=spec.n_jobs)

                def tick(done: int, total: int) -> None:
                    bar.update(task, completed=done)

                table = run_sweep(spec, backend=backend, workers=workers, progress=tick)
        wall = time.perf_counter() - t0

        def write(tmp: Path) -> None:
            import pyarrow.parquet as pq

            pq.write_table(table, tmp)

        atomic_write(out, write)
        summary = summarize_sweep(table)
    if as_json:
        print_json(
            {
                "jobs": spec.n_jobs,
                "rows": table.num_rows,
                "out": str(out),
                "backend": backend,
                "wall_s": round(wall, 3),
                "summary": summary,
            }
        )
    else:
        print_summary(summary)
        typer.echo(f"{table.num_rows} rows ({backend}, {wall:.1f} s) → {out}")


app = typer.Typer(
    help="Run a grid of economies (price vectors × policies × seeds) into Parquet.",
    add_completion=False,
)
app.command("sweep")(sweep)
