"""Judging routers by regret against Eq. 4's ex-post optimum (Sec. 3.1, "Position").

For a router's decisions on labeled prompts at task value V (and prices λ, ρ):

* realized utility ``u_k = V_k·Q_k,m − Σ_called C_k − λ·L_k,m − ρ·(1 − Q_k,m)·K_k``;
* regret ``max_m' u_k(m') − u_k(m)`` against the ex-post optimal model;
* gap closed ``(U − U_best_fixed)/(U_oracle − U_best_fixed)`` where U_best_fixed is the
  best single model *on the evaluated rows* (the hardest fixed benchmark);
* RouterBench's non-decreasing convex hull and AIQ (arXiv 2403.12031, Sec. 3.2);
* RouteLLM's PGR, APGR and CPT for two-model data (arXiv 2406.18665, Sec. 5).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np
import numpy.typing as npt

from margin.core.allocation import surplus_matrix
from margin.core.prices import InputError
from margin.routing.data import RoutingDataset
from margin.routing.router import Router, Routing

__all__ = [
    "CompareResult",
    "RouterScore",
    "aiq",
    "apgr",
    "compare",
    "convex_hull",
    "cpt",
    "gap_closed",
    "pgr",
    "plot_frontier",
    "plot_regret_by_tier",
    "realized_utility",
    "regret",
]

FloatArray = npt.NDArray[np.float64]

#: The value grid (USD) of the compare table.
DEFAULT_VALUES: tuple[float, ...] = (0.001, 0.01, 0.1, 1.0, 10.0)


def _v(value: npt.ArrayLike, n: int) -> FloatArray:
    v = np.asarray(value, dtype=np.float64)
    out: FloatArray = np.full(n, float(v)) if v.ndim == 0 else v
    if out.shape != (n,):
        raise InputError(f"value: must be a scalar or have shape ({n},)")
    return out


def _utility_matrix(
    data: RoutingDataset,
    value: npt.ArrayLike,
    latency_price: float = 0.0,
    risk_price: float = 0.0,
    consequence: npt.ArrayLike | None = None,
) -> FloatArray:
    # Eq. 4 realized: the Eq. 1 surplus with risk = P(wrong)·consequence = (1 − Q)·k.
    k = np.ones(data.n) if consequence is None else _v(consequence, data.n)
    return surplus_matrix(
        _v(value, data.n),
        data.quality,
        data.cost,
        data.latency,
        (1.0 - data.quality) * k[:, None],
        latency_price=latency_price,
        risk_price=risk_price,
    )


def realized_utility(
    data: RoutingDataset,
    routing: Routing,
    value: npt.ArrayLike,
    *,
    latency_price: float = 0.0,
    risk_price: float = 0.0,
    consequence: npt.ArrayLike | None = None,
) -> FloatArray:
    """Per-prompt realized utility of the decisions (every called model is paid for).

    Examples
    --------
    >>> d = RoutingDataset.from_arrays(["a", "b"], ["x", "y"], [[1, 0], [0, 1]],
    ...                                [[1.0, 2.0], [1.0, 2.0]])
    >>> realized_utility(d, Routing(d.models, np.array([0, 0])), 10.0).tolist()
    [9.0, -1.0]
    """
    if not data.labeled:
        raise InputError("evaluation needs realized quality and cost for every row")
    u = _utility_matrix(data, value, latency_price, risk_price, consequence)
    rows = np.arange(data.n)
    chosen = u[rows, routing.choice]
    if routing.called is not None:
        own = data.cost[rows, routing.choice]
        chosen = chosen + own - routing.paid(data.cost)
    out: FloatArray = chosen
    return out


def regret(
    data: RoutingDataset,
    routing: Routing,
    value: npt.ArrayLike,
    *,
    latency_price: float = 0.0,
    risk_price: float = 0.0,
    consequence: npt.ArrayLike | None = None,
) -> FloatArray:
    """Per-prompt regret ``max_m u_k(m) − u_k(choice)`` (≥ 0 up to cascade costs).

    Examples
    --------
    >>> d = RoutingDataset.from_arrays(["a", "b"], ["x", "y"], [[1, 0], [0, 1]],
    ...                                [[1.0, 2.0], [1.0, 2.0]])
    >>> regret(d, Routing(d.models, np.array([0, 0])), 10.0).tolist()
    [0.0, 9.0]
    """
    u = _utility_matrix(data, value, latency_price, risk_price, consequence)
    out: FloatArray = u.max(axis=1) - realized_utility(
        data,
        routing,
        value,
        latency_price=latency_price,
        risk_price=risk_price,
        consequence=consequence,
    )
    return out


def gap_closed(u: float, u_best_fixed: float, u_oracle: float) -> float:
    """``(U − U_best_fixed)/(U_oracle − U_best_fixed)``; NaN when the oracle gap is zero.

    Examples
    --------
    >>> gap_closed(3.0, 2.0, 6.0), gap_closed(1.0, 2.0, 6.0)
    (0.25, -0.25)
    """
    den = u_oracle - u_best_fixed
    scale = 1e-12 * max(1.0, abs(u_oracle), abs(u_best_fixed))
    if den <= scale:
        return math.nan
    if abs(u - u_best_fixed) <= scale:
        return 0.0  # equal up to float summation order
    return (u - u_best_fixed) / den


def convex_hull(cost: npt.ArrayLike, quality: npt.ArrayLike) -> tuple[FloatArray, FloatArray]:
    """RouterBench's non-decreasing convex hull of (cost, quality) points.

    Dominated points (no higher quality than a cheaper or equal-cost point) are removed,
    then the upper concave envelope of the rest is kept: the best quality reachable at
    each budget by mixing two routers' operating points.

    Examples
    --------
    >>> c, q = convex_hull([1, 2, 3, 4, 2.5], [0.5, 0.6, 0.9, 0.8, 0.5])
    >>> c.tolist(), q.tolist()
    ([1.0, 3.0], [0.5, 0.9])
    """
    c = np.asarray(cost, dtype=np.float64).ravel()
    q = np.asarray(quality, dtype=np.float64).ravel()
    if c.shape != q.shape or c.size == 0:
        raise InputError("convex_hull: cost and quality must be non-empty and alike")
    order = np.lexsort((-q, c))
    pts: list[tuple[float, float]] = []
    for i in order:
        if not pts or q[i] > pts[-1][1]:
            pts.append((float(c[i]), float(q[i])))
    hull: list[tuple[float, float]] = []
    for p in pts:
        while len(hull) >= 2:
            (x1, y1), (x2, y2) = hull[-2], hull[-1]
            # drop the middle point when it lies on or below the chord (not concave)
            if (y2 - y1) * (p[0] - x1) <= (p[1] - y1) * (x2 - x1):
                hull.pop()
            else:
                break
        hull.append(p)
    return np.array([h[0] for h in hull]), np.array([h[1] for h in hull])


def aiq(
    cost: npt.ArrayLike,
    quality: npt.ArrayLike,
    c_min: float | None = None,
    c_max: float | None = None,
) -> float:
    """Average improvement in quality (RouterBench): ``1/(c_max − c_min)·∫ R̃(c) dc`` over
    [c_min, c_max], with R̃ the non-decreasing convex hull, flat after its last point and
    zero before its first (a router cannot operate below its cheapest point). Defaults to
    the hull's own cost range (then AIQ is the hull's mean height).

    Examples
    --------
    >>> aiq([0.0, 1.0], [0.0, 1.0])
    0.5
    >>> aiq([1.0], [0.8], c_min=0.0, c_max=2.0)
    0.4
    """
    hc, hq = convex_hull(cost, quality)
    lo = float(hc[0]) if c_min is None else float(c_min)
    hi = float(hc[-1]) if c_max is None else float(c_max)
    if hi <= lo:
        return float(hq[-1]) if lo >= hc[0] else 0.0
    first = float(hc[0])
    grid = np.unique(np.concatenate([[lo, hi], hc[(hc > lo) & (hc < hi)]]))
    a, b = grid[:-1], grid[1:]
    # R is linear between breakpoints; use the right limit at a and the left limit at b
    ya = np.where(a >= first, np.interp(a, hc, hq), 0.0)
    yb = np.where(b > first, np.interp(b, hc, hq), 0.0)
    return float(np.sum(0.5 * (ya + yb) * (b - a)) / (hi - lo))


def pgr(q_router: float, q_weak: float, q_strong: float) -> float:
    """Performance gap recovered (RouteLLM): ``(q_router − q_weak)/(q_strong − q_weak)``.

    Examples
    --------
    >>> pgr(0.75, 0.6, 0.9)
    0.5
    """
    den = q_strong - q_weak
    if den == 0:
        return math.nan
    return (q_router - q_weak) / den


def apgr(strong_share: npt.ArrayLike, pgrs: npt.ArrayLike) -> float:
    """Average PGR (RouteLLM): the area under PGR as a function of the share of strong-model
    calls on [0, 1] (trapezoids; the curve is completed with (0, 0) and (1, 1), the all-weak
    and all-strong routers, and made non-decreasing by a running maximum).

    Examples
    --------
    >>> apgr([0.5], [0.5])
    0.5
    >>> apgr([0.2], [0.8])
    0.8
    """
    s, p = _pgr_curve(strong_share, pgrs)
    return float(np.sum(0.5 * (p[1:] + p[:-1]) * np.diff(s)))


def _pgr_curve(strong_share: npt.ArrayLike, pgrs: npt.ArrayLike) -> tuple[FloatArray, FloatArray]:
    s = np.concatenate([[0.0], np.asarray(strong_share, dtype=np.float64).ravel(), [1.0]])
    p = np.concatenate([[0.0], np.asarray(pgrs, dtype=np.float64).ravel(), [1.0]])
    if s.shape != p.shape or np.any((s < 0) | (s > 1)) or np.any(~np.isfinite(p)):
        raise InputError("apgr/cpt: shares must be in [0, 1] and PGRs finite, alike in shape")
    order = np.lexsort((p, s))
    s, p = s[order], np.maximum.accumulate(p[order])
    return s, p


def cpt(strong_share: npt.ArrayLike, pgrs: npt.ArrayLike, target: float) -> float:
    """Call-performance threshold (RouteLLM): the smallest share of strong calls at which
    the (running-maximum) PGR curve reaches ``target``, by linear interpolation.

    Examples
    --------
    >>> cpt([0.2, 0.4], [0.3, 0.9], 0.6)
    0.3
    """
    s, p = _pgr_curve(strong_share, pgrs)
    hit = np.flatnonzero(p >= target)
    if hit.size == 0:
        return 1.0
    i = int(hit[0])
    if i == 0:
        return float(s[0])
    s0, s1, p0, p1 = s[i - 1], s[i], p[i - 1], p[i]
    return float(s0 + (target - p0) / (p1 - p0) * (s1 - s0)) if p1 > p0 else float(s1)


@dataclass(frozen=True)
class RouterScore:
    """One row of the compare table: a router at one value V."""

    router: str
    value: float
    utility: float
    regret: float
    quality: float
    cost: float
    gap_closed: float

    def as_dict(self) -> dict[str, Any]:
        return {
            "router": self.router,
            "value": self.value,
            "utility": self.utility,
            "regret": self.regret,
            "quality": self.quality,
            "cost": self.cost,
            "gap_closed": None if math.isnan(self.gap_closed) else self.gap_closed,
        }


@dataclass(frozen=True)
class CompareResult:
    """Every router on the same held-out rows at every V, plus frontier and tier figures."""

    values: tuple[float, ...]
    rows: tuple[RouterScore, ...]
    best_fixed: Mapping[float, str]
    aiq: Mapping[str, float]
    frontier: Mapping[str, tuple[tuple[float, float], ...]]
    regret_by_tier: Mapping[str, Mapping[float, float]]
    two_model: Mapping[str, Mapping[str, float]] = field(default_factory=dict)
    split: Mapping[str, Any] = field(default_factory=dict)

    def routers(self) -> list[str]:
        return list(dict.fromkeys(r.router for r in self.rows))

    def score(self, router: str, value: float) -> RouterScore:
        for r in self.rows:
            if r.router == router and r.value == value:
                return r
        raise KeyError((router, value))

    def mean_gap_closed(self) -> dict[str, float]:
        out = {}
        for name in self.routers():
            g = [
                r.gap_closed for r in self.rows if r.router == name and not math.isnan(r.gap_closed)
            ]
            out[name] = float(np.mean(g)) if g else math.nan
        return out

    def as_dict(self) -> dict[str, Any]:
        def clean(x: float) -> float | None:
            return None if math.isnan(x) else x

        return {
            "values": list(self.values),
            "split": dict(self.split),
            "best_fixed": {str(k): v for k, v in self.best_fixed.items()},
            "rows": [r.as_dict() for r in self.rows],
            "mean_gap_closed": {k: clean(v) for k, v in self.mean_gap_closed().items()},
            "aiq": {k: clean(v) for k, v in self.aiq.items()},
            "regret_by_tier": {
                k: {str(v): x for v, x in d.items()} for k, d in self.regret_by_tier.items()
            },
            "two_model": {k: dict(d) for k, d in self.two_model.items()},
        }


#: The dense V sweep used for the cost-quality frontier, AIQ and the two-model curves.
SWEEP: tuple[float, ...] = tuple(float(x) for x in np.logspace(-4, 3, 29))


def compare(
    routers: Mapping[str, Router],
    test: RoutingDataset,
    values: Sequence[float] = DEFAULT_VALUES,
    *,
    seed: int = 0,
    split: Mapping[str, Any] | None = None,
) -> CompareResult:
    """Evaluate fitted routers on labeled ``test`` rows (reordered to the routers' models).

    Per V: mean utility, regret, quality, cost and gap closed. Over the sweep
    :data:`SWEEP`: each router's (cost, quality) points, their convex hull and AIQ on the
    common cost range. Regret by V tier: each test row gets one V from ``values`` (a seeded
    balanced assignment) and every router routes the mixed stream. With two models, PGR
    curves over the sweep give APGR and CPT(50%), CPT(80%).
    """
    if not routers:
        raise InputError("compare: no routers")
    if not test.labeled or test.n == 0:
        raise InputError("compare: the test rows must be labeled and non-empty")
    models = next(iter(routers.values())).models_
    data = test.select_models(models) if tuple(test.models) != tuple(models) else test
    vals = tuple(float(v) for v in values)
    rows_: list[RouterScore] = []
    best_fixed: dict[float, str] = {}
    idx = np.arange(data.n)
    for v in vals:
        u = _utility_matrix(data, v)
        fixed = u.mean(axis=0)
        b = int(np.argmax(fixed))
        best_fixed[v] = models[b]
        u_bf, u_or = float(fixed[b]), float(u.max(axis=1).mean())
        for name, r in routers.items():
            ro = r.route(data, v)
            ut = realized_utility(data, ro, v)
            rows_.append(
                RouterScore(
                    router=name,
                    value=v,
                    utility=float(ut.mean()),
                    regret=float(u.max(axis=1).mean() - ut.mean()),
                    quality=float(data.quality[idx, ro.choice].mean()),
                    cost=float(ro.paid(data.cost).mean()),
                    gap_closed=gap_closed(float(ut.mean()), u_bf, u_or),
                )
            )
    frontier: dict[str, tuple[tuple[float, float], ...]] = {}
    shares: dict[str, list[float]] = {}
    for name, r in routers.items():
        pts = []
        sh = []
        for v in SWEEP:
            ro = r.route(data, v)
            pts.append(
                (float(ro.paid(data.cost).mean()), float(data.quality[idx, ro.choice].mean()))
            )
            sh.append(float(np.mean(ro.choice == int(np.argmax(data.quality.mean(axis=0))))))
        frontier[name] = tuple(pts)
        shares[name] = sh
    all_c = [c for pts in frontier.values() for c, _ in pts]
    lo, hi = min(all_c), max(all_c)
    aiq_ = {name: aiq([c for c, _ in p], [q for _, q in p], lo, hi) for name, p in frontier.items()}
    # regret by V tier on a mixed stream
    rng = np.random.default_rng(seed)
    tier_v = np.asarray(vals)[rng.permutation(np.arange(data.n) % len(vals))]
    by_tier: dict[str, dict[float, float]] = {}
    for name, r in routers.items():
        reg = regret(data, r.route(data, tier_v), tier_v)
        by_tier[name] = {v: float(reg[tier_v == v].mean()) for v in vals}
    two: dict[str, dict[str, float]] = {}
    if data.m == 2:
        q = data.quality.mean(axis=0)
        strong, weak = int(np.argmax(q)), int(np.argmin(q))
        for name in routers:
            pg = [pgr(qq, float(q[weak]), float(q[strong])) for _, qq in frontier[name]]
            if any(math.isnan(x) for x in pg):
                continue
            s = shares[name]
            two[name] = {
                "apgr": apgr(s, pg),
                "cpt50": cpt(s, pg, 0.5),
                "cpt80": cpt(s, pg, 0.8),
            }
    return CompareResult(
        values=vals,
        rows=tuple(rows_),
        best_fixed=best_fixed,
        aiq=aiq_,
        frontier=frontier,
        regret_by_tier=by_tier,
        two_model=two,
        split=dict(split or {}),
    )


def plot_frontier(result: CompareResult, path: str | Path | BinaryIO) -> None:
    """Cost-quality points of every router over the V sweep, with each convex hull (PNG)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 5))
    for name, pts in result.frontier.items():
        c = np.array([p[0] for p in pts])
        q = np.array([p[1] for p in pts])
        line = ax.scatter(c, q, s=12, label=name)
        hc, hq = convex_hull(c, q)
        ax.plot(hc, hq, color=line.get_facecolor()[0], linewidth=1)
    ax.set_xscale("log")
    ax.set_xlabel("mean cost per prompt (USD)")
    ax.set_ylabel("mean quality")
    ax.set_title("Cost-quality frontier over V (RouterBench convex hulls)")
    ax.legend(fontsize=7)
    fig.savefig(path, format="png", dpi=120, bbox_inches="tight")
    plt.close(fig)


def plot_regret_by_tier(result: CompareResult, path: str | Path | BinaryIO) -> None:
    """Mean regret per V tier for every router (grouped bars, log scale, PNG)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = [n for n in result.regret_by_tier if n != "oracle"]
    vals = list(result.values)
    fig, ax = plt.subplots(figsize=(8, 5))
    width = 0.8 / max(1, len(names))
    for i, name in enumerate(names):
        ys = [max(result.regret_by_tier[name][v], 1e-9) for v in vals]
        ax.bar(np.arange(len(vals)) + i * width, ys, width, label=name)
    ax.set_xticks(np.arange(len(vals)) + 0.4 - width / 2, [f"V={v:g}" for v in vals])
    ax.set_yscale("log")
    ax.set_ylabel("mean regret (USD)")
    ax.set_title("Regret by value tier (mixed-V stream)")
    ax.legend(fontsize=7)
    fig.savefig(path, format="png", dpi=120, bbox_inches="tight")
    plt.close(fig)
