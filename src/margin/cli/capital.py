"""CLI for the capital layer: ``margin cache replay`` and ``margin rl budget|simulate``.

``cache_app`` and ``rl_app`` are two typer apps; the main ``margin`` command mounts them
as ``cache`` and ``rl``. Bad input prints one line to stderr and exits with code 2.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from margin.core.prices import InputError

__all__ = ["cache_app", "rl_app"]

cache_app = typer.Typer(
    help="KV caches as priced inventory (Sec. 3.4, Eq. 10).", no_args_is_help=True
)
rl_app = typer.Typer(help="RL post-training as token investment (Eq. 11-12).", no_args_is_help=True)

_FORMATS = ("mooncake",)


def _fail(msg: str) -> None:
    typer.echo(f"error: {msg}", err=True)
    raise typer.Exit(code=2)


def _finite(x: float) -> float | None:
    return x if math.isfinite(x) else None


@cache_app.callback()
def _cache() -> None:
    """KV cache economics on Mooncake-format traces."""


@rl_app.callback()
def _rl() -> None:
    """RL token budgeting."""


@cache_app.command("replay")
def replay_cmd(
    trace: Annotated[Path, typer.Option("--trace", help="Mooncake JSONL trace file.")],
    capacity_blocks: Annotated[int, typer.Option("--capacity-blocks", help="Cache size.")],
    fmt: Annotated[str, typer.Option("--format", help="Trace format.")] = "mooncake",
    policy: Annotated[str, typer.Option("--policy", help="lru, lfu or priced.")] = "priced",
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Replay a trace through a cache policy and report hit rate by value and value saved.

    JSON: {"hit_rate", "hit_rate_by_value": {bucket: rate}, "value_saved", "evictions",
    "misuse_events", "depreciation"} with depreciation δ_S per minute.
    """
    from margin.capital.cache import CACHE_POLICIES, replay
    from margin.capital.trace import load_mooncake

    try:
        if fmt not in _FORMATS:
            raise InputError(f"--format: unknown trace format {fmt!r}; known: {list(_FORMATS)}")
        if policy not in CACHE_POLICIES:
            raise InputError(
                f"--policy: unknown policy {policy!r}; known: {sorted(CACHE_POLICIES)}"
            )
        if capacity_blocks < 1:
            raise InputError(f"--capacity-blocks: must be >= 1, got {capacity_blocks}")
        tr = load_mooncake(trace)
        report = replay(tr, policy, capacity_blocks)
    except InputError as e:
        _fail(str(e))
        return
    if as_json:
        typer.echo(json.dumps(report.as_json()))
        return
    console = Console()
    t = Table(title=f"{policy} cache, {capacity_blocks} blocks, {tr.n_requests} requests")
    t.add_column("metric")
    t.add_column("value", justify="right")
    t.add_row("token hit rate", f"{report.hit_rate:.2%}")
    for k, v in report.hit_rate_by_value.items():
        t.add_row(f"  hit rate {k}", f"{v:.2%}")
    for k, v in report.hit_rate_by_tenant.items():
        t.add_row(f"  hit rate tenant {k}", f"{v:.2%}")
    t.add_row("value saved (V·tokens)", f"{report.value_saved:.4g}")
    t.add_row("value saved per GB-hour", f"{report.value_saved_per_gb_hour:.4g}")
    t.add_row("evictions", str(report.evictions))
    t.add_row("misuse events", str(report.misuse_events))
    t.add_row("refused reuses", str(report.refused_reuses))
    d = report.depreciation
    t.add_row("δ_S per minute", f"{d.per_minute:.4g} (half-life {d.half_life_minutes:.3g} min)")
    t.add_row("δ_S per request", f"{d.per_request:.4g}")
    console.print(t)


def _load_config(path: Path | None) -> dict[str, Any]:
    if path is None:
        return {}
    if not path.is_file():
        raise InputError(f"--config: file {path} does not exist")
    text = path.read_text(encoding="utf-8")
    if path.suffix in (".yaml", ".yml"):
        import yaml

        try:
            data = yaml.safe_load(text)
        except yaml.YAMLError as e:
            raise InputError(f"{path}: not valid YAML ({e})") from None
    else:
        try:
            data = json.loads(text)
        except json.JSONDecodeError as e:
            raise InputError(f"{path} line {e.lineno}: not valid JSON ({e.msg})") from None
    if not isinstance(data, dict):
        raise InputError(f"{path}: expected a mapping at the top level")
    return data


@rl_app.command("budget")
def budget_cmd(
    config: Annotated[Path | None, typer.Option("--config", help="JSON or YAML model.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Allocate a per-step token budget across rollouts, verification and updates.

    JSON: {"budget", "allocation": {use: tokens}, "marginal_gain_per_token": {use: x},
    "gain", "steady_state_capability", "shadow_value", "optimal_spend": {use: tokens},
    "closed_form": {use: tokens} (Cobb-Douglas only)}.
    """
    from margin.capital.rl import budget_report, model_from_config

    try:
        model, budget = model_from_config(_load_config(config), str(config or "defaults"))
        out = budget_report(model, budget)
    except InputError as e:
        _fail(str(e))
        return
    if as_json:
        typer.echo(json.dumps(out))
        return
    t = Table(title=f"RL token budget B = {budget:g}")
    for c in ("use", "tokens", "∂g/∂x / κ", "Eq. 12 optimum"):
        t.add_column(c, justify="right")
    for use, tok in out["allocation"].items():
        t.add_row(
            use,
            f"{tok:.4g}",
            f"{out['marginal_gain_per_token'][use]:.4g}",
            f"{out['optimal_spend'][use]:.4g}",
        )
    Console().print(t)


@rl_app.command("simulate")
def simulate_cmd(
    policy: Annotated[
        list[str] | None, typer.Option("--policy", help="marginal or a fixed-* ratio policy.")
    ] = None,
    config: Annotated[Path | None, typer.Option("--config", help="JSON or YAML model.")] = None,
    steps: Annotated[int, typer.Option("--steps", help="Training steps.")] = 200,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Capability over steps per policy, and the staleness rule vs fixed bounds η.

    JSON: {"steps", "budget_per_step", "target", "policies": {name: {"capability": [...],
    "final", "tokens_to_target"}}, "staleness": {"drifts", "rule", "fixed": {eta: [...]},
    "threshold", "best_fixed_eta", "rule_dominates"}}. ``target`` is 90% of the best
    final capability; ``tokens_to_target`` is null when never reached.
    """
    from margin.capital.rl import (
        FIXED_RATIOS,
        model_from_config,
        simulate_capability,
        simulate_staleness,
        tokens_to_reach,
    )

    names = policy or ["marginal", *FIXED_RATIOS]
    try:
        if steps < 1:
            raise InputError(f"--steps: must be >= 1, got {steps}")
        known = {"marginal", *FIXED_RATIOS}
        for n in names:
            if n not in known:
                raise InputError(f"--policy: unknown policy {n!r}; known: {sorted(known)}")
        model, budget = model_from_config(_load_config(config), str(config or "defaults"))
        paths = {n: simulate_capability(model, n, budget, steps) for n in names}
    except InputError as e:
        _fail(str(e))
        return
    target = 0.9 * max(float(p[-1]) for p in paths.values())
    pol = {
        n: {
            "capability": [float(x) for x in p],
            "final": float(p[-1]),
            "tokens_to_target": _finite(tokens_to_reach(p, target, budget)),
        }
        for n, p in paths.items()
    }
    stale = simulate_staleness([0.05, 0.1, 0.2, 0.4, 0.8], [0, 1, 2, 4, 8, 16])
    stale["threshold"] = [_finite(x) for x in stale["threshold"]]
    out = {
        "steps": steps,
        "budget_per_step": budget,
        "target": target,
        "policies": pol,
        "staleness": stale,
    }
    if as_json:
        typer.echo(json.dumps(out))
        return
    t = Table(title=f"capability after {steps} steps, B = {budget:g} tokens/step")
    for c in ("policy", "final A", "tokens to 90% of best"):
        t.add_column(c, justify="right")
    for n, v in pol.items():
        ttt = v["tokens_to_target"]
        t.add_row(n, f"{v['final']:.4g}", "never" if ttt is None else f"{ttt:.4g}")
    Console().print(t)
