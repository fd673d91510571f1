"""``margin route``: fit the Eq. 4 router, choose models for prompts, compare with peers.

* ``route fit --train FILE... --out MODEL`` fits :class:`~margin.routing.MarginalRouter`
  on RouterBench-format or generic tables and writes a versioned model file.
* ``route choose --model MODEL --input FILE --value V [--latency-price L]
  [--risk-price R] [--json]`` prints ``{"choices": [{"sample_id": ID, "model": NAME},
  ...]}``, one per usable input row (a row's own ``value`` column overrides V).
* ``route compare --train FILE... [--test FILE...] [--holdout 0.3] [--seed 0]
  --values 0.001,0.01,0.1,1,10 [--json] [--plots DIR]`` fits every router and peer and
  prints the table of :func:`margin.routing.compare`.

How the held-out test set is formed by ``compare``: without ``--test``, the ``--train``
tables are pooled and split by task (stratified) with ``--holdout`` and ``--seed``. With
``--test`` files that are not ``--train`` files, those are the test set. A file given as
both is split the same way, its held-out part going to test. Test rows whose prompt also
occurs in training are removed (counted as ``leaked``).

Every command reads the formats of :func:`margin.routing.data.load_any`: ``--format auto``
(the default) detects RouterBench and generic CSVs, RouteLLM's MMLU (a ``mmlu_*.csv`` file
or the ``mmlu_responses`` folder), GSM8K (``gsm8k_responses.csv`` or its folder) and
MT-Bench (the folder with ``question.jsonl`` and ``judgements.jsonl``), and a RouterArena
folder; ``--format NAME`` forces one. ``--contaminated FILE`` drops RouteLLM's
contaminated prompts. An unknown format is an error (exit 2).

Bad input prints one line to stderr and exits with code 2.
"""

from __future__ import annotations

import functools
import math
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from margin.cli._common import atomic_write, guard, print_json
from margin.core.prices import InputError

__all__ = ["app"]

app = typer.Typer(
    help="The demand layer: routing as screening (Sec. 3.1, Eq. 4).",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

console = Console()
err_console = Console(stderr=True)

JsonFlag = Annotated[bool, typer.Option("--json", help="Print machine-readable JSON.")]


FormatOpt = Annotated[
    str,
    typer.Option(
        "--format",
        help="Data format: auto (detected from the path and header), routerbench, generic, "
        "routellm-mmlu, routellm-gsm8k, routellm-mt-bench, routerarena.",
    ),
]
ContaminatedOpt = Annotated[
    Path | None,
    typer.Option(
        "--contaminated",
        help="RouteLLM contaminated_prompts.jsonl: drop those prompts (RouteLLM data only).",
    ),
]


def _reader(fmt: str, contaminated: Path | None) -> Any:
    """``path -> RoutingDataset`` for ``--format``/``--contaminated`` (checked up front)."""
    from margin.routing.data import DATA_FORMATS, load_any

    if fmt not in DATA_FORMATS:
        raise InputError(f"--format: unknown format '{fmt}' (known: {', '.join(DATA_FORMATS)})")

    def read(path: Path, require_models: bool = True) -> Any:
        return load_any(path, fmt, require_models=require_models, contaminated=contaminated)

    return read


def _load(paths: list[Path], fmt: str = "auto", contaminated: Path | None = None) -> Any:
    from margin.routing.data import concat_datasets

    if not paths:
        raise InputError("--train: at least one file is required")
    read = _reader(fmt, contaminated)
    return concat_datasets([read(p) for p in paths])


def _values(text: str) -> list[float]:
    out = []
    for part in text.split(","):
        part = part.strip()
        if not part:
            continue
        try:
            v = float(part)
        except ValueError:
            raise InputError(f"--values: '{part}' is not a number") from None
        if not math.isfinite(v) or v < 0:
            raise InputError(f"--values: '{part}' must be finite and >= 0")
        out.append(v)
    if not out:
        raise InputError("--values: give at least one value")
    return out


def _price(name: str, x: float) -> float:
    if not math.isfinite(x) or x < 0:
        raise InputError(f"{name}: must be finite and >= 0, got {x}")
    return float(x)


@app.command()
def fit(
    train: Annotated[list[Path], typer.Option("--train", help="Training table(s).")],
    out: Annotated[Path, typer.Option("--out", help="Where to write the model file.")],
    seed: Annotated[int, typer.Option(help="Random seed.")] = 0,
    fmt: FormatOpt = "auto",
    contaminated: ContaminatedOpt = None,
    as_json: JsonFlag = False,
) -> None:
    """Fit the risk-adjusted router of Eq. 4 on labeled tables and save it."""
    from margin.routing.persist import save_router
    from margin.routing.router import MarginalRouter

    with guard():
        data = _load(train, fmt, contaminated)
        router = MarginalRouter(seed=seed).fit(data)
        meta = {
            "train": [str(p) for p in train],
            "rows": data.n,
            "dropped": data.dropped,
            "models": list(data.models),
        }
        save_router(router, out, meta=meta)  # atomic: temp file + os.replace
    summary = {
        "model_file": str(out),
        "rows": data.n,
        "dropped": data.dropped,
        "models": list(data.models),
        "reports": [r.summary() for r in data.reports],
        "shrinkage_weight": getattr(router.quality_, "weight_", None),
    }
    if as_json:
        print_json(summary)
        return
    for r in data.reports:
        console.print(r.summary())
    console.print(f"fitted on {data.n} rows x {data.m} models -> {out}")


@app.command()
def choose(
    model: Annotated[Path, typer.Option("--model", help="Model file from `route fit`.")],
    input_: Annotated[Path, typer.Option("--input", help="Table of prompts to route.")],
    value: Annotated[float, typer.Option("--value", help="Task value V in USD.")],
    latency_price: Annotated[float, typer.Option("--latency-price", help="λ, USD/s.")] = 0.0,
    risk_price: Annotated[float, typer.Option("--risk-price", help="ρ, USD/risk unit.")] = 0.0,
    ledger: Annotated[
        Path | None, typer.Option("--ledger", help="Append decisions to this ledger.")
    ] = None,
    fmt: FormatOpt = "auto",
    as_json: JsonFlag = False,
) -> None:
    """Choose a model for every usable row of INPUT (Eq. 4)."""
    from margin.routing.persist import load_router
    from margin.routing.router import MarginalRouter

    with guard():
        v = _price("--value", value)
        lam = _price("--latency-price", latency_price)
        rho = _price("--risk-price", risk_price)
        read = _reader(fmt, None)
        router, _ = load_router(model)
        if not isinstance(router, MarginalRouter):
            raise InputError(f"{model}: not a model written by `route fit`")
        data = read(input_, require_models=False)
        sink: list[Any] | None = [] if ledger is not None else None
        routing = router.route(data, v, latency_price=lam, risk_price=rho, sink=sink)
        if ledger is not None and sink is not None:
            from margin.ledger.store import Ledger

            with Ledger(ledger) as led:
                led.extend(sink)
    names = routing.names()
    if as_json:
        print_json(
            {
                "choices": [
                    {"sample_id": sid, "model": name}
                    for sid, name in zip(data.sample_ids, names, strict=True)
                ]
            }
        )
        return
    table = Table(title=f"route choose: {data.n} prompts at V = {v:g}")
    table.add_column("sample_id")
    table.add_column("model")
    for sid, name in zip(data.sample_ids, names, strict=True):
        table.add_row(sid, name)
    console.print(table)
    for r in data.reports:
        if r.dropped:
            err_console.print(r.summary())


def _split(
    train: list[Path],
    test: list[Path],
    holdout: float,
    seed: int,
    fmt: str = "auto",
    contaminated: Path | None = None,
) -> tuple[Any, Any, dict[str, Any]]:
    from margin.routing.data import concat_datasets, train_test_split

    if not train:
        raise InputError("--train: at least one file is required")
    if not 0.0 < holdout < 1.0:
        raise InputError(f"--holdout: must be in (0, 1), got {holdout}")
    read = _reader(fmt, contaminated)
    tr_keys = {p.resolve() for p in train}
    te_keys = {p.resolve() for p in test}
    tr_parts, te_parts = [], []
    if not test:
        pooled = concat_datasets([read(p) for p in train])
        a, b = train_test_split(pooled, holdout, seed)
        tr_parts, te_parts = [a], [b]
        how = f"pooled --train files, stratified by task, {holdout:.0%} held out, seed {seed}"
    else:
        for p in train:
            d = read(p)
            if p.resolve() in te_keys:
                a, b = train_test_split(d, holdout, seed)
                tr_parts.append(a)
                te_parts.append(b)
            else:
                tr_parts.append(d)
        te_parts += [read(p) for p in test if p.resolve() not in tr_keys]
        how = (
            "--test files; files also in --train split by task with "
            f"{holdout:.0%} held out, seed {seed}"
        )
    tr = concat_datasets(tr_parts)
    te = concat_datasets(te_parts).select_models(tr.models)
    seen = set(tr.prompts)
    keep = [k for k, p in enumerate(te.prompts) if p not in seen]
    leaked = te.n - len(keep)
    te = te.subset(keep)
    if te.n == 0:
        raise InputError("compare: no held-out test rows left")
    info = {
        "how": how,
        "train_rows": tr.n,
        "test_rows": te.n,
        "leaked": leaked,
        "dropped": tr.dropped if not test else tr.dropped + te.dropped,
        "reports": sorted({r.summary() for r in (*tr.reports, *te.reports)}),
    }
    return tr, te, info


@app.command()
def compare(
    train: Annotated[list[Path], typer.Option("--train", help="Training table(s).")],
    test: Annotated[
        list[Path] | None, typer.Option("--test", help="Test table(s); see module help.")
    ] = None,
    values: Annotated[str, typer.Option(help="Comma-separated task values V (USD).")] = (
        "0.001,0.01,0.1,1,10"
    ),
    holdout: Annotated[float, typer.Option(help="Held-out share when splitting.")] = 0.3,
    seed: Annotated[int, typer.Option(help="Split and router seed.")] = 0,
    routers: Annotated[
        str | None, typer.Option(help="Comma-separated router names (default: all).")
    ] = None,
    plots: Annotated[Path | None, typer.Option("--plots", help="Write PNG plots here.")] = None,
    fmt: FormatOpt = "auto",
    contaminated: ContaminatedOpt = None,
    as_json: JsonFlag = False,
) -> None:
    """Our router and every peer on held-out rows: utility, regret, gap closed, AIQ."""
    from rich.progress import Progress

    from margin.routing.evaluate import (
        compare as compare_routers,
        plot_frontier,
        plot_regret_by_tier,
    )
    from margin.routing.peers import ROUTERS, make_router

    with guard():
        vals = _values(values)
        names = list(ROUTERS) if routers is None else [x.strip() for x in routers.split(",")]
        for name in names:
            if name not in ROUTERS:
                raise InputError(f"--routers: unknown router '{name}' (known: {list(ROUTERS)})")
        if plots is not None and plots.exists() and not plots.is_dir():
            raise InputError(f"--plots: {plots} is not a folder")
        tr, te, info = _split(train, list(test or []), holdout, seed, fmt, contaminated)
        fitted = {}
        with Progress(console=err_console, transient=True, disable=as_json) as bar:
            task = bar.add_task("fitting routers", total=len(names))
            for name in names:
                params = {"seed": seed} if name in ("marginal", "random") else {}
                fitted[name] = make_router(name, **params).fit(tr)
                bar.advance(task)
        result = compare_routers(fitted, te, vals, seed=seed, split=info)
        written = []
        if plots is not None:
            plots.mkdir(parents=True, exist_ok=True)
            for fname, fn in (
                ("frontier.png", plot_frontier),
                ("regret_by_tier.png", plot_regret_by_tier),
            ):
                target = plots / fname
                atomic_write(target, functools.partial(_png, fn, result))
                written.append(str(target))
    if as_json:
        out = result.as_dict()
        out["plots"] = written
        print_json(out)
        return
    console.print(f"[bold]held-out test[/bold]: {info['how']}")
    console.print(
        f"train {info['train_rows']} rows, test {info['test_rows']} rows "
        f"({info['leaked']} test prompts seen in training removed)"
    )
    for line in info["reports"]:
        console.print(f"  {line}")
    table = Table(title="Mean utility per prompt (USD) and gap closed vs best fixed → oracle")
    table.add_column("router")
    for v in vals:
        table.add_column(f"V={v:g}", justify="right")
    table.add_column("mean gap", justify="right")
    table.add_column("AIQ", justify="right")
    gaps = result.mean_gap_closed()
    for name in result.routers():
        cells = []
        for v in vals:
            s = result.score(name, v)
            g = "" if math.isnan(s.gap_closed) else f" ({s.gap_closed:+.1%})"
            cells.append(f"{s.utility:.4g}{g}")
        mg = gaps[name]
        table.add_row(
            name, *cells, "" if math.isnan(mg) else f"{mg:+.1%}", f"{result.aiq[name]:.4f}"
        )
    console.print(table)
    console.print(
        "best fixed model (on the test rows): "
        + ", ".join(f"V={v:g}: {m}" for v, m in result.best_fixed.items())
    )
    for p in written:
        console.print(f"wrote {p}")


def _png(fn: Any, result: Any, tmp: Path) -> None:
    with tmp.open("wb") as fh:
        fn(result, fh)
