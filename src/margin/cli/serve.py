"""``margin serve``: simulate a serving cluster on a trace and compare schedulers."""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from margin._io import atomic_write
from margin.core.prices import InputError

if TYPE_CHECKING:
    from margin.serving.simulator import ServingConfig
    from margin.serving.traces import Trace

app = typer.Typer(
    help="Supply layer: LLM-serving simulation with congestion prices (Sec. 3.3).",
    no_args_is_help=True,
)

SIMULATE_KEYS = (
    "requests",
    "completed",
    "rejected",
    "ttft",
    "tpot",
    "e2e",
    "throughput_tok_s",
    "slo_attainment",
    "events",
    "wall_s",
)


def _fail(e: InputError) -> typer.Exit:
    typer.echo(f"error: {e}", err=True)
    return typer.Exit(2)


def _clean(x: Any) -> Any:
    if isinstance(x, float):
        return x if math.isfinite(x) else None
    if isinstance(x, dict):
        return {k: _clean(v) for k, v in x.items()}
    if isinstance(x, list | tuple):
        return [_clean(v) for v in x]
    return x


def _load(
    trace: Path,
    fmt: str,
    config: Path | None,
    tenants: str,
    value_seconds: float,
    max_requests: int | None,
    preset: str = "default",
    spec_gamma: int | None = None,
    spec_alpha: float | None = None,
) -> tuple[Trace, ServingConfig]:
    import dataclasses

    from margin.serving.simulator import ServingConfig
    from margin.serving.traces import load_trace, tag_context_tenants

    if tenants not in ("context", "none"):
        raise InputError(f"option '--tenants' must be 'context' or 'none', got {tenants!r}")
    if not (math.isfinite(value_seconds) and value_seconds > 0):
        raise InputError(f"option '--value-seconds' must be > 0, got {value_seconds}")
    if max_requests is not None and max_requests < 1:
        raise InputError(f"option '--max-requests' must be >= 1, got {max_requests}")
    base = ServingConfig.preset(preset)
    cfg = ServingConfig.from_json(config, base=base) if config is not None else base
    spec: dict[str, Any] = {}
    if spec_gamma is not None:
        spec["spec_gamma"] = spec_gamma
    if spec_alpha is not None:
        spec["spec_alpha"] = spec_alpha
    if spec:
        try:
            cfg = dataclasses.replace(cfg, **spec)
        except InputError as e:
            raise InputError(str(e).replace("serving config: field", "option", 1)) from None
    t = load_trace(trace, fmt)
    if max_requests is not None:
        t = t.head(max_requests)
    if tenants == "context":
        t = tag_context_tenants(t)
    return t.with_tenants(t.tenant, t.tenants, value=value_seconds * t.latency_price), cfg


TraceOpt = Annotated[Path, typer.Option("--trace", help="Trace file (synthetic: a JSON spec).")]
FormatOpt = Annotated[str, typer.Option("--format", help="azure | mooncake | vidur | synthetic")]
ConfigOpt = Annotated[Path | None, typer.Option("--config", help="JSON of ServingConfig fields.")]
TenantsOpt = Annotated[
    str,
    typer.Option(
        "--tenants", help="'context': split short/long-context tenants at the median prompt."
    ),
]
ValueOpt = Annotated[
    float,
    typer.Option(
        "--value-seconds", help="Request value V as seconds of its own delay cost (V = s·λ)."
    ),
]
MaxOpt = Annotated[int | None, typer.Option("--max-requests", help="Use the first N requests.")]
PresetOpt = Annotated[
    str,
    typer.Option(
        "--preset",
        help="Named configuration: 'default' (4 replicas) or 'single-engine' (1 replica, "
        "the vllm-ltr evaluation setting); --config fields override it.",
    ),
]
SpecGammaOpt = Annotated[
    int | None,
    typer.Option(
        "--spec-gamma",
        help="Speculative decoding: draft tokens per step (0 = off). A request speculates "
        "only while its speedup at the current batch exceeds 1.",
    ),
]
SpecAlphaOpt = Annotated[
    float | None,
    typer.Option("--spec-alpha", help="Acceptance rate α of requests whose trace carries none."),
]


@app.command()
def simulate(
    trace: TraceOpt,
    fmt: FormatOpt = "azure",
    scheduler: Annotated[
        str, typer.Option("--scheduler", help="fcfs, priority, sjf, sjf-oracle, srpt, priced")
    ] = "fcfs",
    rate_scale: Annotated[
        float, typer.Option("--rate-scale", help="Multiply the arrival rate.")
    ] = 1.0,
    config: ConfigOpt = None,
    tenants: TenantsOpt = "context",
    value_seconds: ValueOpt = 60.0,
    max_requests: MaxOpt = None,
    preset: PresetOpt = "default",
    spec_gamma: SpecGammaOpt = None,
    spec_alpha: SpecAlphaOpt = None,
    ledger: Annotated[
        Path | None,
        typer.Option("--ledger", help="SQLite ledger to append the sampled shadow prices to."),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """Replay a trace through the simulated cluster under one scheduler."""
    from margin.serving.metrics import summarize
    from margin.serving.schedulers import make_scheduler
    from margin.serving.simulator import Simulator

    try:
        t, cfg = _load(
            trace,
            fmt,
            config,
            tenants,
            value_seconds,
            max_requests,
            preset,
            spec_gamma,
            spec_alpha,
        )
        t = t.scaled(rate_scale)
        sched = make_scheduler(scheduler)
        records: list[Any] = []
        res = Simulator(cfg, sink=records if ledger is not None else None).run(t, sched)
        if ledger is not None:
            from margin.ledger.store import Ledger

            with Ledger(ledger) as led:
                led.extend(records)
    except InputError as e:
        raise _fail(e) from None
    s = summarize(res)
    out = {k: s[k] for k in SIMULATE_KEYS}
    if as_json:
        typer.echo(json.dumps(_clean(out)))
        return
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"{scheduler} on {trace.name} (rate x{rate_scale:g})")
    table.add_column("metric")
    for c in ("mean", "p50", "p90", "p99"):
        table.add_column(c, justify="right")
    for m in ("ttft", "tpot", "e2e"):
        table.add_row(f"{m} (s)", *(f"{s[m][c]:.4g}" for c in ("mean", "p50", "p90", "p99")))
    Console().print(table)
    Console().print(
        f"requests {s['requests']}  completed {s['completed']}  rejected {s['rejected']}  "
        f"throughput {s['throughput_tok_s']:.1f} tok/s  SLO attainment {s['slo_attainment']:.3f}"
        f"  delay cost {s['delay_cost']:.3f}  prefix hit {s['prefix_hit_rate']:.3f}  "
        f"events {s['events']}  wall {s['wall_s']:.2f}s"
    )


def _atomic_png(fig: Any, path: Path) -> None:
    atomic_write(path, lambda tmp: fig.savefig(tmp, format="png", dpi=110, bbox_inches="tight"))


def plot_compare(rows: list[dict[str, Any]], out_dir: Path) -> list[Path]:
    """Write ``latency_vs_load.png`` and ``delay_cost_vs_load.png``; returns the paths."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out_dir.mkdir(parents=True, exist_ok=True)
    paths = []
    for metric, label, fname in (
        ("e2e_mean", "mean end-to-end latency (s)", "latency_vs_load.png"),
        ("delay_cost", "value-weighted delay cost per request", "delay_cost_vs_load.png"),
    ):
        fig, ax = plt.subplots(figsize=(6, 4))
        for name in dict.fromkeys(r["scheduler"] for r in rows):
            pts = sorted((r["load"], r[metric]) for r in rows if r["scheduler"] == name)
            ax.plot([p[0] for p in pts], [p[1] for p in pts], marker="o", label=name)
        ax.set_xlabel("utilization (arrival rate / FCFS saturation rate)")
        ax.set_ylabel(label)
        ax.set_yscale("log")
        ax.legend()
        ax.grid(alpha=0.3)
        path = out_dir / fname
        _atomic_png(fig, path)
        plt.close(fig)
        paths.append(path)
    return paths


@app.command()
def compare(
    trace: TraceOpt,
    fmt: FormatOpt = "azure",
    loads: Annotated[
        str,
        typer.Option(
            "--loads", help="Comma-separated utilizations (fractions of the FCFS saturation rate)."
        ),
    ] = "0.5,0.8,0.9",
    schedulers: Annotated[str, typer.Option("--schedulers")] = (
        "fcfs,priority,sjf,sjf-oracle,srpt,priced"
    ),
    config: ConfigOpt = None,
    tenants: TenantsOpt = "context",
    value_seconds: ValueOpt = 60.0,
    max_requests: MaxOpt = None,
    preset: PresetOpt = "default",
    spec_gamma: SpecGammaOpt = None,
    spec_alpha: SpecAlphaOpt = None,
    out: Annotated[Path, typer.Option("--out", help="Folder for the PNG plots.")] = Path(
        "serve-compare"
    ),
    as_json: Annotated[bool, typer.Option("--json", help="Print the rows as JSON.")] = False,
) -> None:
    """Run every scheduler on one trace over a load grid; print a table, write PNG plots."""
    from rich.progress import Progress

    from margin.serving.metrics import externality_fingerprint, saturation_rate, summarize
    from margin.serving.schedulers import SJF, PricedScheduler, make_scheduler
    from margin.serving.simulator import Simulator

    try:
        t, cfg = _load(
            trace,
            fmt,
            config,
            tenants,
            value_seconds,
            max_requests,
            preset,
            spec_gamma,
            spec_alpha,
        )
        grid = []
        for x in loads.split(","):
            try:
                v = float(x)
            except ValueError:
                raise InputError(f"option '--loads': not a number: {x!r}") from None
            if not 0 < v < 10:
                raise InputError(f"option '--loads': utilization must be in (0, 10), got {v}")
            grid.append(v)
        names = [s.strip() for s in schedulers.split(",") if s.strip()]
        for name in names:
            make_scheduler(name)
        if len(t) < 2:
            raise InputError(f"{trace}: need at least 2 requests to compare")
        sat = saturation_rate(t, cfg)
        rows: list[dict[str, Any]] = []
        with Progress(transient=True, disable=as_json or not sys.stderr.isatty()) as prog:
            task = prog.add_task("simulating", total=len(grid) * len(names))
            for load in grid:
                scaled = t.scaled(load * sat / t.rate)
                for name in names:
                    sched = make_scheduler(name)
                    res = Simulator(cfg).run(scaled, sched)
                    s = summarize(res)
                    fp = (
                        externality_fingerprint(res)
                        if "short-context" in t.tenants
                        else {"corr": math.nan}
                    )
                    tau = (
                        sched.kendall_tau_ if isinstance(sched, SJF | PricedScheduler) else math.nan
                    )
                    rows.append(
                        {
                            "scheduler": name,
                            "load": load,
                            "rate_req_s": load * sat,
                            "completed": s["completed"],
                            "rejected": s["rejected"],
                            "e2e_mean": s["e2e"]["mean"],
                            "e2e_p99": s["e2e"]["p99"],
                            "ttft_mean": s["ttft"]["mean"],
                            "tpot_mean": s["tpot"]["mean"],
                            "delay_cost": s["delay_cost"],
                            "slo_attainment": s["slo_attainment"],
                            "goodput_req_s": s["goodput_req_s"],
                            "fingerprint_corr": fp["corr"],
                            "fingerprint_slope": fp.get("slope_s_per_mtok", math.nan),
                            "kendall_tau": tau,
                            "wall_s": s["wall_s"],
                        }
                    )
                    prog.advance(task)
        plots = plot_compare(rows, out)
    except InputError as e:
        raise _fail(e) from None
    if as_json:
        typer.echo(
            json.dumps(
                _clean({"saturation_req_s": sat, "rows": rows, "plots": [str(p) for p in plots]})
            )
        )
        return
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"schedulers on {trace.name} (saturation {sat:.2f} req/s)")
    cols = (
        ("load", "load"),
        ("scheduler", "sched"),
        ("e2e_mean", "e2e"),
        ("e2e_p99", "e2e p99"),
        ("ttft_mean", "ttft"),
        ("tpot_mean", "tpot"),
        ("delay_cost", "cost"),
        ("slo_attainment", "slo"),
        ("rejected", "rej"),
        ("fingerprint_slope", "fp s/Mtok"),
        ("kendall_tau", "tau"),
    )
    for _, head in cols:
        table.add_column(head, justify="right")
    for r in rows:
        table.add_row(*(f"{r[c]:.3g}" if isinstance(r[c], float) else str(r[c]) for c, _ in cols))
    Console().print(table)
    for p in plots:
        Console().print(f"wrote {p}")
