"""The three falsifiable predictions of Sec. 4, as reproducible experiments on real data.

Each experiment reuses the layer that owns the mechanism; this module only sets up the
workload, reads the figures off and draws them.

**Prediction 1 — verifier budget vs realized risk** (agent layer, Eq. 1 and Eq. 8).
Holding V and the read/plan/edit steps fixed, the verifier budget ``T_v`` is swept with
:func:`margin.agent.simulator.verifier_sweep` on a low-risk and a high-risk task class
(:data:`margin.agent.simulator.RISK_CLASSES`: risk-weighted loss ``(ρ + ρ_irr·φ)·L`` of
5 and 660 USD). Realized risk is the share of tasks whose wrong patch is merged. The
first-order point is :func:`margin.agent.controller.verifier_budget`,

    T_v* = argmax_{T_v} W(T) − (ΔC + λ·ΔL)·T_v,   i.e.  ∂W/∂T_v = ΔC + λ·ΔL,

and the shortfall of an under-verifying agent is ``U(T_v*) − U(T_v)`` per task, paired on
common random numbers within independent batches (its z-score across batches says how
*reliably* it under-performs). The success ceiling ``p_sat`` is refitted from SWE-Bench
Pro (:func:`margin.agent.autonomy.calibrate_swe_pro`) and the Aider leaderboard's gain
from one test-feedback round (:func:`margin.agent.evidence.aider_retry_evidence`) is
reported as the measured marginal product of one verification round.

**Prediction 2 — regret of the cost-minimizing router on high-V requests** (routing layer,
Eq. 4). On RouterBench (ARC-Challenge, MBPP, Winogrande; held out by task-stratified
split, prompts seen in training removed, as ``margin route compare``), a stream of
held-out prompts gets long-tailed values ``log10 V ~ N(log10 v_med, σ)``. The
cost-minimizing router :class:`QualityBarRouter` (the cheapest model whose training
accuracy on the prompt's task meets a bar: the operator's objective) and the Eq. 4 router
:class:`margin.routing.router.MarginalRouter` route the same stream; per-request regret is
:func:`margin.routing.evaluate.regret`,

    regret_k = max_m (V_k·Q_{k,m} − C_{k,m}) − (V_k·Q_{k,choice} − C_{k,choice}),

reported per decade of V with each tier's share of the requests and of the total regret.
Optionally (``economy=True``) the same table is read off the economy's ledger: the
``routing`` records of :func:`margin.economy.engine.run_regime`, siloed (cost-minimizing
router) vs shared prices (Eq. 4).

**Prediction 3 — the congestion externality fingerprint** (serving layer, Sec. 3.3).
The Azure LLM conversation trace is split into short- and long-context tenants at the
median prompt (:func:`margin.serving.traces.tag_context_tenants`), replayed at a high
utilization of the FCFS saturation rate through
:class:`margin.serving.simulator.Simulator` under FCFS (flat per-token price: no one
pays for the delay they impose) and under
:class:`margin.serving.schedulers.PricedScheduler` (congestion pricing). Per window
of arrivals, the short-context tenant's mean TTFT is regressed on the long-context
tenant's prompt-token volume (:func:`margin.serving.metrics.externality_fingerprint`):

    TTFT_short(w) = a + b·Vol_long(w),   b in seconds per million long-context tokens.

The prediction holds when ``b`` is large under FCFS and vanishes under pricing.
"""

from __future__ import annotations

import itertools
import math
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from margin._io import atomic_write
from margin.core.prices import InputError, PriceVector

if TYPE_CHECKING:
    from margin.ledger.records import LedgerRecord
    from margin.routing.data import RoutingDataset
    from margin.routing.router import Routing
    from margin.serving.simulator import SimulationResult

__all__ = [
    "DATA_FILES",
    "PLOT_FILES",
    "QualityBarRouter",
    "congestion_prediction",
    "headline",
    "plot_externality",
    "plot_router_regret",
    "plot_verifier",
    "router_regret_prediction",
    "run_predictions",
    "verifier_prediction",
]

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.intp]

#: Shared data files each prediction reads (relative to the data folder).
DATA_FILES: dict[str, tuple[str, ...]] = {
    "verifier": (
        "agent/swebench_pro_sweagent_gpt5_sonnet45_per_instance.csv",
        "agent/aider_polyglot_leaderboard_flat.csv",
    ),
    "router_regret": (
        "routing/routerbench/arc_challenge_train.csv",
        "routing/routerbench/mbpp_train.csv",
        "routing/routerbench/winograde_train.csv",
    ),
    "externality": ("serving/AzureLLMInferenceTrace_conv.csv",),
}

#: PNG written per prediction by :func:`run_predictions`.
PLOT_FILES: dict[str, str] = {
    "verifier": "prediction1_verifier.png",
    "router_regret": "prediction2_router_regret.png",
    "externality": "prediction3_externality.png",
}

#: V tiers (USD) of prediction 2: decades, the last one open.
V_TIER_EDGES: tuple[float, ...] = (1e-3, 1e-2, 1e-1, 1.0)


def _need(root: Path, rel: str) -> Path:
    p = root / rel
    if not p.is_file():
        raise InputError(f"data_dir: {p} is missing (see the shared data README)")
    return p


def _check_root(data_dir: str | os.PathLike[str]) -> Path:
    root = Path(data_dir)
    if not root.is_dir():
        raise InputError(f"data_dir: folder {root} does not exist")
    return root


# --------------------------------------------------------------------------- prediction 1


def verifier_prediction(
    data_dir: str | os.PathLike[str],
    *,
    value: float = 20.0,
    budgets: Sequence[int] = tuple(range(0, 61, 2)),
    n_tasks: int = 2000,
    batches: int = 5,
    work: tuple[int, int, int] = (20, 8, 14),
    risk_price: float = 1.0,
    irreversible_risk_price: float = 2.0,
    latency_price: float = 0.001,
    seed: int = 0,
) -> dict[str, Any]:
    """Prediction 1: realized risk and utility against the verifier budget at fixed V.

    For the ``low`` and ``high`` risk classes of the agent simulator, ``n_tasks`` tasks per
    class are drawn in ``batches`` independent batches and every budget runs on the same
    tasks of a batch (common random numbers,
    :func:`~margin.agent.simulator.verifier_sweep`). Returns per budget the realized risk
    (share of wrong patches merged), the mean utility and its standard error across
    batches; the first-order budget ``T_v*`` of
    :func:`~margin.agent.controller.verifier_budget` (marginal product of T_v = its
    marginal cost ``ΔC + λ·ΔL``); the sweep's utility-maximizing budget; and, per class,
    the paired shortfall ``U(T_v*) − U(T_v)`` of an agent verifying at 0 steps and at
    the low-risk optimum.

    Examples
    --------
    >>> import pathlib
    >>> root = pathlib.Path("../shared/data")
    >>> r = verifier_prediction(root, budgets=range(0, 49, 8), n_tasks=200) \\
    ...     if root.is_dir() else None
    >>> r is None or r["classes"]["high"]["optimal_budget"] > r["classes"]["low"]["optimal_budget"]
    True
    """
    from margin.agent.autonomy import calibrate_swe_pro
    from margin.agent.controller import EpisodeModel, verifier_budget
    from margin.agent.evidence import aider_retry_evidence
    from margin.agent.simulator import RISK_CLASSES, sample_tasks, verifier_sweep

    root = _check_root(data_dir)
    swe, aider = (_need(root, r) for r in DATA_FILES["verifier"])
    if n_tasks < 10 * batches or batches < 2:
        raise InputError(f"n_tasks: need at least 10 per batch and 2 batches, got {n_tasks}")
    if not (math.isfinite(value) and value > 0):
        raise InputError(f"value: must be > 0, got {value}")
    if len({int(b) for b in budgets}) < 3 or min(budgets) < 0:
        raise InputError("budgets: need at least 3 distinct verifier budgets >= 0")
    fitted = calibrate_swe_pro(swe)
    model = EpisodeModel(p_sat=fitted.p_max)
    retry = aider_retry_evidence(aider)
    prices = PriceVector(value, latency_price, risk_price, irreversible_risk_price)
    t_star = {
        name: verifier_budget(prices, *RISK_CLASSES[name], other_steps=work, model=model)
        for name in ("low", "high")
    }
    # the first-order budgets and "no tests" are always on the grid
    grid = sorted({int(b) for b in budgets} | {0, *t_star.values()})
    per = n_tasks // batches
    classes: dict[str, dict[str, Any]] = {}
    utilities: dict[str, FloatArray] = {}
    for k, name in enumerate(("low", "high")):
        loss, phi = RISK_CLASSES[name]
        u = np.empty((batches, len(grid)))
        risk = np.zeros(len(grid))
        for b in range(batches):
            tasks = sample_tasks(
                per,
                value=value,
                risk_price=risk_price,
                irreversible_risk_price=irreversible_risk_price,
                latency_price=latency_price,
                risk_class=name,
                model=model,
                seed=seed + 1000 * k + b,
            )
            rows = verifier_sweep(tasks, verify_steps=grid, work=work, model=model)
            u[b] = [r["utility"] for r in rows]
            risk += np.asarray([r["wrong_patch_rate"] for r in rows]) / batches
        mean_u = u.mean(axis=0)
        best = int(np.argmax(mean_u))
        utilities[name] = u
        below = np.asarray(grid) <= t_star[name]
        classes[name] = {
            "loss_usd": loss,
            "irreversible_share": phi,
            "risk_weighted_loss_usd": (risk_price + irreversible_risk_price * phi) * loss,
            "budgets": [float(b) for b in grid],
            "realized_risk": risk.tolist(),
            "utility": mean_u.tolist(),
            "utility_se": (u.std(axis=0, ddof=1) / math.sqrt(batches)).tolist(),
            "optimal_budget": int(t_star[name]),
            "sweep_best_budget": int(grid[best]),
            "risk_monotone_to_optimum": bool(np.all(np.diff(risk[below]) <= 1e-12)),
        }

    def shortfall(name: str, tv: int) -> dict[str, float]:
        """U(T_v*) − U(tv) on class ``name``, paired within each batch."""
        d = utilities[name][:, grid.index(t_star[name])] - utilities[name][:, grid.index(tv)]
        se = float(d.std(ddof=1) / math.sqrt(batches))
        return {
            "budget": float(tv),
            "shortfall_usd": float(d.mean()),
            "se_usd": se,
            "z": float(d.mean() / se) if se > 0 else math.inf,
        }

    under = {
        "no_tests": {n: shortfall(n, 0) for n in ("low", "high")},
        "low_risk_budget": {n: shortfall(n, t_star["low"]) for n in ("low", "high")},
    }
    return {
        "value_usd": value,
        "work_steps": list(work),
        "prices": {
            "risk_price": risk_price,
            "irreversible_risk_price": irreversible_risk_price,
            "latency_price": latency_price,
        },
        "n_tasks": per * batches,
        "batches": batches,
        "calibration": {
            "p_sat_swe_bench_pro": fitted.p_max,
            "step_cost_usd": model.step_cost,
            "aider_retry_gain_points": retry["mean_gain_points"],
            "aider_models": retry["models"],
        },
        "classes": classes,
        "under_verification": under,
    }


def plot_verifier(result: Mapping[str, Any], path: str | os.PathLike[str]) -> None:
    """Two panels: realized risk and mean utility against T_v, T_v* marked (PNG)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(12, 4.8))
    colors = {"low": "tab:blue", "high": "tab:red"}
    floor = 0.01
    for name, c in result["classes"].items():
        label = f"{name}-risk tasks ((ρ+ρ_irr·φ)·L = {c['risk_weighted_loss_usd']:g} USD)"
        b = np.asarray(c["budgets"])
        loss = c["risk_weighted_loss_usd"] * np.asarray(c["realized_risk"])
        ax1.plot(b, np.maximum(loss, floor), "o-", ms=3, color=colors[name], label=label)
        u = np.asarray(c["utility"])
        se = np.asarray(c["utility_se"])
        ax2.plot(b, u, "o-", ms=3, color=colors[name], label=label)
        ax2.fill_between(b, u - 2 * se, u + 2 * se, color=colors[name], alpha=0.15)
        for ax in (ax1, ax2):
            ax.axvline(c["optimal_budget"], color=colors[name], ls="--", lw=1)
        ax1.annotate(
            f"T_v* = {c['optimal_budget']}",
            xy=(c["optimal_budget"], floor),
            xytext=(3, 4 if name == "low" else 16),
            textcoords="offset points",
            fontsize=8,
            color=colors[name],
        )
    hi = result["classes"]["high"]
    short = result["under_verification"]["low_risk_budget"]["high"]
    b_hi = np.asarray(hi["budgets"])
    u_hi = np.asarray(hi["utility"])
    u_at = float(np.interp(short["budget"], b_hi, u_hi))
    u_opt = float(np.interp(hi["optimal_budget"], b_hi, u_hi))
    ax2.annotate(
        "",
        xy=(short["budget"], u_at),
        xytext=(short["budget"], u_opt),
        arrowprops={"arrowstyle": "<->", "color": "black"},
    )
    ax2.annotate(
        f"under-verifying on high-risk tasks at the low-risk T_v* = {short['budget']:g}:\n"
        f"shortfall {short['shortfall_usd']:.2f} ± {short['se_usd']:.2f} USD/task "
        f"(z = {short['z']:.1f})",
        xy=(short["budget"], 0.5 * (u_at + u_opt)),
        xytext=(0.4, 0.4),
        textcoords="axes fraction",
        fontsize=8,
        arrowprops={"arrowstyle": "->", "color": "grey"},
    )
    ax1.set_yscale("log")
    ax1.set_ylim(bottom=floor * 0.7)
    ax1.set_xlabel("verifier budget T_v (test-run steps per task)")
    ax1.set_ylabel("realized risk ρ·ΔR: merged wrong patches (USD/task, log)")
    ax1.set_title(
        f"Realized risk falls monotonically in T_v (dashed: T_v*; 0 drawn at {floor:g})",
        fontsize=10,
    )
    ax1.grid(alpha=0.3)
    ax1.legend(fontsize=8, loc="upper right")
    ax2.set_xlabel("verifier budget T_v (test-run steps per task)")
    ax2.set_ylabel("mean realized utility (USD per task, ±2 s.e.)")
    ax2.set_title(
        f"Utility peaks near T_v* (∂W/∂T_v = ΔC + λΔL); at T_v = 0 the high-risk mean "
        f"is {u_hi[0]:.0f} USD",
        fontsize=9,
    )
    top = max(max(c["utility"]) for c in result["classes"].values())
    ax2.set_ylim(min(u_at, min(result["classes"]["low"]["utility"])) - 6.0, top + 2.0)
    ax2.grid(alpha=0.3)
    ax2.legend(fontsize=8, loc="lower right")
    fig.suptitle(
        f"Prediction 1: verifier budget at fixed V = {result['value_usd']:g} USD "
        "(agent simulator, p_sat fitted on SWE-Bench Pro)",
        fontsize=11,
    )
    fig.tight_layout()
    _save(fig, path)


# --------------------------------------------------------------------------- prediction 2


@dataclass
class QualityBarRouter:
    """The operator's cost-minimizing router: the cheapest model that meets a quality bar.

    ``fit`` computes each model's mean training accuracy and cost per task (``eval_name``)
    and picks, per task, ``argmin_m c̄_m s.t. q̄_{t,m} ≥ bar`` (the best-accuracy model when
    none meets the bar); unseen tasks use the same rule on the pooled means. ``route``
    ignores V: the router minimizes operator cost at a quality SLA (Sec. 4's second
    prediction). It follows :class:`margin.routing.router.Router`.

    Examples
    --------
    >>> from margin.routing.data import RoutingDataset
    >>> d = RoutingDataset.from_arrays(["a", "b", "c", "d"], ["small", "large"],
    ...     [[1, 1], [1, 1], [0, 1], [1, 1]], [[0.001, 0.01]] * 4,
    ...     tasks=["easy", "easy", "hard", "hard"])
    >>> QualityBarRouter(bar=0.7).fit(d).route(d, value=100.0).names()
    ['small', 'small', 'large', 'large']
    """

    bar: float = 0.7

    def fit(self, train: RoutingDataset) -> QualityBarRouter:
        if not 0.0 <= self.bar <= 1.0:
            raise InputError(f"QualityBarRouter: field 'bar' must be in [0, 1], got {self.bar}")
        if not train.labeled or train.n == 0:
            raise InputError("QualityBarRouter.fit: training data must be labeled and non-empty")
        self.models_ = train.models
        self.mean_cost_ = np.asarray(train.cost).mean(axis=0)
        tasks = np.asarray(train.tasks, dtype=object)
        self.task_choice_: dict[str, int] = {}
        for t in sorted(set(train.tasks)):
            self.task_choice_[t] = self._pick(np.asarray(train.quality)[tasks == t].mean(axis=0))
        self.default_ = self._pick(np.asarray(train.quality).mean(axis=0))
        return self

    def _pick(self, q: FloatArray) -> int:
        ok = q >= self.bar
        if not ok.any():
            return int(np.argmax(q))
        return int(np.flatnonzero(ok)[np.argmin(self.mean_cost_[ok])])

    def route(self, data: RoutingDataset, value: npt.ArrayLike) -> Routing:
        from margin.routing.router import Routing

        if tuple(data.models) != tuple(self.models_):
            raise InputError("QualityBarRouter.route: data models differ from the fitted ones")
        choice = np.array([self.task_choice_.get(t, self.default_) for t in data.tasks])
        return Routing(self.models_, np.asarray(choice, dtype=np.intp).reshape(data.n))


def _tier_of(v: FloatArray) -> IntArray:
    return np.asarray(np.searchsorted(np.asarray(V_TIER_EDGES), v, side="right"), dtype=np.intp)


def _tier_labels() -> list[str]:
    e = V_TIER_EDGES
    return [f"V<{e[0]:g}"] + [f"{a:g}–{b:g}" for a, b in itertools.pairwise(e)] + [f"V≥{e[-1]:g}"]


def _regret_table(v: FloatArray, regrets: Mapping[str, FloatArray]) -> dict[str, Any]:
    tier = _tier_of(v)
    nt = len(V_TIER_EDGES) + 1
    count = np.bincount(tier, minlength=nt)
    out: dict[str, Any] = {
        "tiers": _tier_labels(),
        "requests": count.tolist(),
        "request_share": (count / max(count.sum(), 1)).tolist(),
        "mean_value": [float(v[tier == k].mean()) if count[k] else None for k in range(nt)],
        "routers": {},
    }
    for name, r in regrets.items():
        tot = float(r.sum())
        out["routers"][name] = {
            "mean_regret": [float(r[tier == k].mean()) if count[k] else None for k in range(nt)],
            "regret_share": [
                float(r[tier == k].sum() / tot) if tot > 0 else 0.0 for k in range(nt)
            ],
            "total_regret": tot,
        }
    return out


def router_regret_prediction(
    data_dir: str | os.PathLike[str],
    *,
    holdout: float = 0.3,
    repeats: int = 20,
    value_median: float = 0.01,
    value_sigma_decades: float = 1.0,
    bar: float = 0.7,
    seed: int = 0,
    economy: bool = False,
    economy_tasks: int = 120,
) -> dict[str, Any]:
    """Prediction 2: regret by V tier of the cost-minimizing vs the Eq. 4 router.

    RouterBench's three tables are pooled and split by task (``holdout`` held out, seed
    ``seed``; prompts also in training are dropped). Both routers are fitted on the
    training part; the held-out prompts are repeated ``repeats`` times with independent
    long-tailed values ``log10 V ~ N(log10 value_median, value_sigma_decades)`` and routed.
    Per V decade: requests, mean regret (USD), share of the total regret. With ``economy``
    the same table is computed from the economy's ledger (siloed vs shared regimes,
    ``economy_tasks`` coding tasks; V is the task value, regret the routing record's).
    """
    from margin.routing.data import concat_datasets, load_routerbench, train_test_split
    from margin.routing.evaluate import regret
    from margin.routing.router import MarginalRouter

    root = _check_root(data_dir)
    paths = [_need(root, r) for r in DATA_FILES["router_regret"]]
    if repeats < 1:
        raise InputError(f"repeats: need at least 1, got {repeats}")
    if not (value_median > 0 and value_sigma_decades >= 0):
        raise InputError("value_median must be > 0 and value_sigma_decades >= 0")
    pooled = concat_datasets([load_routerbench(p) for p in paths])
    train, test = train_test_split(pooled, holdout, seed)
    seen = set(train.prompts)
    keep = [k for k, p in enumerate(test.prompts) if p not in seen]
    leaked = test.n - len(keep)
    if not keep:
        raise InputError("router_regret: no held-out RouterBench rows left")
    test = test.subset(keep)
    stream = test.subset(np.tile(np.arange(test.n), repeats))
    rng = np.random.default_rng(seed)
    v = np.asarray(
        10.0 ** (math.log10(value_median) + value_sigma_decades * rng.standard_normal(stream.n))
    )
    cm = QualityBarRouter(bar=bar).fit(train)
    eq4 = MarginalRouter(seed=seed).fit(train)
    regrets = {
        "cost_min": regret(stream, cm.route(stream, v), v),
        "eq4": regret(stream, eq4.route(stream, v), v),
    }
    table = _regret_table(v, regrets)
    out: dict[str, Any] = {
        "split": {
            "train_rows": train.n,
            "test_rows": test.n,
            "leaked_dropped": leaked,
            "repeats": repeats,
            "stream": stream.n,
        },
        "value": {"median_usd": value_median, "sigma_decades": value_sigma_decades},
        "quality_bar": bar,
        "cost_min_choice": {t: cm.models_[i] for t, i in sorted(cm.task_choice_.items())},
        "routerbench": table,
    }
    if economy:
        out["economy"] = _economy_regret(economy_tasks, seed)
    return out


def _economy_regret(n_tasks: int, seed: int) -> dict[str, Any]:
    """Regret by V tier from the economy's ``routing`` ledger records, siloed vs shared."""
    from margin.economy.config import EconomyConfig
    from margin.economy.engine import REGIMES, run_regime
    from margin.economy.stream import draw_stream

    cfg = EconomyConfig(n_coding=n_tasks, seed=seed)
    stream = draw_stream(cfg)
    v = np.asarray(stream.value, dtype=np.float64)  # the undiscounted task value V
    regrets: dict[str, FloatArray] = {}
    for name in ("siloed", "shared"):
        sink: list[LedgerRecord] = []
        run_regime(cfg, stream, REGIMES[name], sink=sink, regret=False)
        r = np.zeros(v.size)
        prefix = f"{name}-task-"
        for rec in sink:
            if rec.layer == "routing" and rec.request_id.startswith(prefix):
                r[int(rec.request_id[len(prefix) :])] = float(rec.regret or 0.0)
        regrets[name] = r
    edges = np.quantile(v, [0.5, 0.9])
    tier = np.searchsorted(edges, v, side="right")
    labels = ["bottom 50% of V", "50–90%", "top 10%"]
    routers = {}
    for name, r in regrets.items():
        tot = float(r.sum())
        routers[name] = {
            "mean_regret": [float(r[tier == k].mean()) for k in range(3)],
            "regret_share": [float(r[tier == k].sum() / tot) if tot > 0 else 0.0 for k in range(3)],
            "total_regret": tot,
        }
    return {
        "tasks": int(v.size),
        "tiers": labels,
        "tier_upper_usd": [float(edges[0]), float(edges[1]), float(v.max())],
        "routers": routers,
    }


def plot_router_regret(result: Mapping[str, Any], path: str | os.PathLike[str]) -> None:
    """Mean regret per V tier (log scale) and share of total regret per tier (PNG)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    t = result["routerbench"]
    labels = [
        f"{lab}\n({100 * s:.1f}% of req.)"
        for lab, s in zip(t["tiers"], t["request_share"], strict=True)
    ]
    x = np.arange(len(labels))
    names = {"cost_min": "cost-minimizing (cheapest model ≥ bar)", "eq4": "Eq. 4 router"}
    colors = {"cost_min": "tab:orange", "eq4": "tab:green"}
    eco = result.get("economy")
    if eco is None:
        fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(12, 4.8))
    else:
        fig, (ax1, ax2, ax3) = plt.subplots(
            1, 3, figsize=(17, 4.8), gridspec_kw={"width_ratios": [1.0, 1.0, 0.6]}
        )
        xe = np.arange(len(eco["tiers"]))
        regimes = {
            "siloed": ("siloed economy: cost-min router", "tab:orange"),
            "shared": ("shared prices: Eq. 4 router", "tab:green"),
        }
        for i, (key, (lab, col)) in enumerate(regimes.items()):
            ys = [max(y, 1e-4) for y in eco["routers"][key]["mean_regret"]]
            ax3.bar(xe + (i - 0.5) * 0.38, ys, 0.38, color=col, label=lab)
        ax3.set_yscale("log")
        ax3.set_xticks(xe, eco["tiers"], fontsize=8)
        ax3.set_xlabel("coding-task value tier (quantiles of V)")
        ax3.set_ylabel("mean routing regret (USD per task, log)")
        ax3.set_title(
            f"Economy ledger ({eco['tasks']} coding tasks, "
            f"V up to {eco['tier_upper_usd'][-1]:.0f} USD)",
            fontsize=10,
        )
        ax3.grid(alpha=0.3, axis="y")
        ax3.legend(fontsize=8)
    w = 0.38
    for i, (key, r) in enumerate(t["routers"].items()):
        ys = [max(y, 1e-7) if y is not None else np.nan for y in r["mean_regret"]]
        ax1.bar(x + (i - 0.5) * w, ys, w, color=colors[key], label=names[key])
        ax2.bar(
            x + (i - 0.5) * w,
            100 * np.asarray(r["regret_share"]),
            w,
            color=colors[key],
            label=f"{names[key]} (total {r['total_regret']:.1f} USD)",
        )
    ax2.plot(x, 100 * np.asarray(t["request_share"]), "k_", ms=22, mew=2, label="share of requests")
    ax1.set_yscale("log")
    ax1.set_xticks(x, labels, fontsize=8)
    ax1.set_xlabel("task value tier V (USD per request)")
    ax1.set_ylabel("mean regret vs ex-post optimal model (USD per request, log)")
    ax1.set_title("Regret grows with V; Eq. 4 stays far below on high-V requests", fontsize=10)
    ax1.grid(alpha=0.3, axis="y")
    ax1.legend(fontsize=8)
    ax2.set_xticks(x, labels, fontsize=8)
    ax2.set_xlabel("task value tier V (USD per request)")
    ax2.set_ylabel("share of the router's total regret (%)")
    ax2.set_title("Regret is concentrated on the long tail of high-V requests", fontsize=10)
    ax2.grid(alpha=0.3, axis="y")
    ax2.legend(fontsize=8)
    s = result["split"]
    fig.suptitle(
        f"Prediction 2: router regret by value tier on RouterBench held-out prompts "
        f"({s['test_rows']} prompts × {s['repeats']} V draws, log10 V ~ "
        f"N({math.log10(result['value']['median_usd']):g}, {result['value']['sigma_decades']:g}))",
        fontsize=11,
    )
    fig.tight_layout()
    _save(fig, path)


# --------------------------------------------------------------------------- prediction 3


def _windows(res: SimulationResult, window_s: float) -> tuple[FloatArray, FloatArray, FloatArray]:
    """Per window with short-tenant completions: start (s), long volume (Mtok), short TTFT.

    The same windows as :func:`margin.serving.metrics.externality_fingerprint`.
    """
    t = res.trace
    s_id, l_id = t.tenants.index("short-context"), t.tenants.index("long-context")
    win = np.floor(t.arrival / window_s).astype(np.int64)
    nw = int(win.max()) + 1
    is_long = t.tenant == l_id
    vol = np.bincount(win[is_long], weights=t.prompt[is_long], minlength=nw) / 1e6
    sm = (t.tenant == s_id) & res.completed
    cnt = np.bincount(win[sm], minlength=nw)
    tt = np.bincount(win[sm], weights=res.ttft[sm], minlength=nw)
    keep = cnt > 0
    start = np.arange(nw, dtype=np.float64)[keep] * window_s
    return start, np.asarray(vol[keep]), np.asarray(tt[keep] / cnt[keep])


def congestion_prediction(
    data_dir: str | os.PathLike[str],
    *,
    load: float = 0.9,
    window_s: float = 60.0,
    max_requests: int | None = None,
    value_seconds: float = 60.0,
    replicas: int = 4,
) -> dict[str, Any]:
    """Prediction 3: the short tenants' TTFT against others' long-context volume.

    The Azure conversation trace (first ``max_requests`` requests, or all) is tagged into
    short/long-context tenants at the median prompt, valued at ``value_seconds`` of each
    request's own delay cost (``V = s·λ``, as ``margin serve``), rescaled to ``load`` times
    the FCFS saturation rate of ``replicas`` replicas and replayed under FCFS and the
    priced scheduler. Returns per scheduler the fingerprint (slope in s per million
    long-context tokens, correlation), the short tenant's TTFT, the TTFT swing the slope
    implies between a quiet (p10) and a busy (p90) window, rejections per tenant, and the
    per-window points.
    """
    from margin.serving.metrics import externality_fingerprint, latency_stats, saturation_rate
    from margin.serving.schedulers import FCFS, PricedScheduler
    from margin.serving.simulator import ServingConfig, Simulator
    from margin.serving.traces import load_azure, tag_context_tenants

    root = _check_root(data_dir)
    path = _need(root, DATA_FILES["externality"][0])
    if not (math.isfinite(load) and 0 < load < 10):
        raise InputError(f"load: utilization must be in (0, 10), got {load}")
    if not (math.isfinite(window_s) and window_s > 0):
        raise InputError(f"window_s: must be > 0, got {window_s}")
    trace = load_azure(path)
    if max_requests is not None:
        if max_requests < 100:
            raise InputError(f"max_requests: need at least 100, got {max_requests}")
        trace = trace.head(max_requests)
    tagged = tag_context_tenants(trace)
    tagged = tagged.with_tenants(
        tagged.tenant, tagged.tenants, value=value_seconds * tagged.latency_price
    )
    cfg = ServingConfig(replicas=replicas)
    sat = saturation_rate(tagged, cfg)
    scaled = tagged.scaled(load * sat / tagged.rate)
    threshold = int(np.median(trace.prompt))
    runs: dict[str, Any] = {}
    for label, sched in (("fcfs", FCFS()), ("priced", PricedScheduler())):
        res = Simulator(cfg).run(scaled, sched)
        fp = externality_fingerprint(res, window_s=window_s)
        start, vol, ttft = _windows(res, window_s)
        p10, p90 = np.percentile(vol, [10, 90])
        short = scaled.tenant == scaled.tenants.index("short-context")
        runs[label] = {
            "slope_s_per_mtok": fp["slope_s_per_mtok"],
            "corr": fp["corr"],
            "windows": fp["windows"],
            "short_ttft": latency_stats(res.ttft[short & res.completed]),
            "busy_minus_quiet_ttft_s": float(fp["slope_s_per_mtok"] * (p90 - p10)),
            "rejected": {
                name: int((res.rejected & (scaled.tenant == k)).sum())
                for k, name in enumerate(scaled.tenants)
            },
            "window_start_s": start.tolist(),
            "long_volume_mtok": vol.tolist(),
            "short_ttft_s": ttft.tolist(),
        }
    return {
        "trace": {
            "requests": len(scaled),
            "short_context_max_tokens": threshold,
            "long_share": float(np.mean(scaled.tenant == scaled.tenants.index("long-context"))),
            "duration_s": scaled.duration,
        },
        "load": load,
        "saturation_req_s": sat,
        "rate_req_s": load * sat,
        "replicas": replicas,
        "window_s": window_s,
        "schedulers": runs,
    }


def plot_externality(result: Mapping[str, Any], path: str | os.PathLike[str]) -> None:
    """Scatter of short-tenant TTFT against long-context volume per window, with the
    least-squares lines, and the two series over time (PNG)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = {"fcfs": "FCFS, flat token price", "priced": "congestion-priced scheduler"}
    colors = {"fcfs": "tab:red", "priced": "tab:blue"}
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(12, 4.8))
    for key, r in result["schedulers"].items():
        x = np.asarray(r["long_volume_mtok"])
        y = np.asarray(r["short_ttft_s"])
        ax1.scatter(x, y, s=12, alpha=0.7, color=colors[key])
        if x.size >= 2 and np.std(x) > 0:
            b, a = np.polyfit(x, y, 1)
            xs = np.linspace(x.min(), x.max(), 20)
            ax1.plot(
                xs,
                a + b * xs,
                color=colors[key],
                label=(
                    f"{names[key]}: slope {r['slope_s_per_mtok']:.2f} s/Mtok, r = {r['corr']:.2f}"
                ),
            )
        ax2.plot(np.asarray(r["window_start_s"]) / 60, y, color=colors[key], label=names[key])
    first = next(iter(result["schedulers"].values()))
    ax1.set_ylim(bottom=0.0)
    ax1.set_xlabel("long-context tenant's prompt volume in the window (million tokens)")
    ax1.set_ylabel("short-context tenant's mean TTFT in the window (s)")
    ax1.set_title("Short tenants' latency tracks others' long-context volume", fontsize=10)
    ax1.grid(alpha=0.3)
    ax1.legend(fontsize=8, loc="upper left")
    ax2.set_yscale("log")
    ax2.set_xlabel("time (minutes)")
    ax2.set_ylabel("short-context tenant's mean TTFT (s, log)")
    ax2.set_title("Over time (grey: long-context volume, right axis)", fontsize=10)
    ax3 = ax2.twinx()
    ax3.bar(
        np.asarray(first["window_start_s"]) / 60,
        first["long_volume_mtok"],
        width=result["window_s"] / 60,
        align="edge",
        color="grey",
        alpha=0.25,
    )
    ax3.set_ylabel("long-context prompt volume (million tokens per window)")
    ax2.set_zorder(ax3.get_zorder() + 1)
    ax2.patch.set_visible(False)
    ax2.grid(alpha=0.3)
    ax2.legend(fontsize=8, loc="upper left")
    tr = result["trace"]
    fig.suptitle(
        f"Prediction 3: congestion externality on the Azure LLM conversation trace "
        f"({tr['requests']} requests, {result['load']:.0%} of FCFS capacity, "
        f"{result['window_s']:g} s windows, "
        f"long = prompt > {tr['short_context_max_tokens']} tokens)",
        fontsize=10,
    )
    fig.tight_layout()
    _save(fig, path)


# --------------------------------------------------------------------------- all three


def _save(fig: Any, path: str | os.PathLike[str]) -> None:
    """Write ``fig`` as PNG atomically (temporary file in the same folder, then rename)."""
    import matplotlib.pyplot as plt

    target = Path(path)
    if not target.parent.is_dir():
        plt.close(fig)
        raise InputError(f"out_dir: folder {target.parent} does not exist")
    try:
        atomic_write(
            target, lambda tmp: fig.savefig(tmp, format="png", dpi=120, bbox_inches="tight")
        )
    finally:
        plt.close(fig)


def headline(results: Mapping[str, Any]) -> dict[str, Any]:
    """The few numbers that state each prediction (what ``margin predictions run`` prints)."""
    p1 = results["verifier"]
    hi, lo = p1["classes"]["high"], p1["classes"]["low"]
    under = p1["under_verification"]["low_risk_budget"]["high"]
    p2 = results["router_regret"]["routerbench"]
    cm, eq = p2["routers"]["cost_min"], p2["routers"]["eq4"]
    p3 = results["externality"]["schedulers"]
    eco = results["router_regret"].get("economy")
    return {
        "verifier": {
            "optimal_budget_low": lo["optimal_budget"],
            "optimal_budget_high": hi["optimal_budget"],
            "risk_at_zero_high": hi["realized_risk"][0],
            "risk_at_optimum_high": float(
                np.interp(hi["optimal_budget"], hi["budgets"], hi["realized_risk"])
            ),
            "shortfall_high_at_low_budget_usd": under["shortfall_usd"],
            "shortfall_z": under["z"],
        },
        "router_regret": {
            "top_tier": p2["tiers"][-1],
            "top_tier_request_share": p2["request_share"][-1],
            "cost_min_top_tier_regret_usd": cm["mean_regret"][-1],
            "eq4_top_tier_regret_usd": eq["mean_regret"][-1],
            "cost_min_top_tier_regret_share": cm["regret_share"][-1],
            # from the economy's ledger (top 10% of V); None in quick mode
            "economy_siloed_top_regret_usd": (
                None if eco is None else eco["routers"]["siloed"]["mean_regret"][-1]
            ),
            "economy_shared_top_regret_usd": (
                None if eco is None else eco["routers"]["shared"]["mean_regret"][-1]
            ),
        },
        "externality": {
            "fcfs_slope_s_per_mtok": p3["fcfs"]["slope_s_per_mtok"],
            "priced_slope_s_per_mtok": p3["priced"]["slope_s_per_mtok"],
            "fcfs_corr": p3["fcfs"]["corr"],
            "priced_corr": p3["priced"]["corr"],
            "fcfs_short_ttft_mean_s": p3["fcfs"]["short_ttft"]["mean"],
            "priced_short_ttft_mean_s": p3["priced"]["short_ttft"]["mean"],
        },
    }


def run_predictions(
    data_dir: str | os.PathLike[str],
    out_dir: str | os.PathLike[str],
    *,
    quick: bool = False,
    seed: int = 0,
    progress: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """Run the three predictions on the shared data and write their PNGs into ``out_dir``.

    ``quick`` shrinks every experiment (fewer tasks, V draws and trace requests) to run in
    seconds; the full run uses all of the Azure trace and the RouterBench held-out split,
    and reads prediction 2 off the economy's ledger too. ``progress(name)`` is called
    after each prediction. Returns ``{"verifier", "router_regret", "externality",
    "headline", "plots"}`` (JSON-serializable; ``plots`` maps each prediction to its path).
    """
    root = _check_root(data_dir)
    for files in DATA_FILES.values():
        for rel in files:
            _need(root, rel)
    out = Path(out_dir)
    if not out.is_dir():
        raise InputError(f"out_dir: folder {out} does not exist")
    results: dict[str, Any] = {"quick": quick, "seed": seed, "data_dir": str(root)}
    steps: list[tuple[str, Callable[[], dict[str, Any]], Callable[..., None]]] = [
        (
            "verifier",
            lambda: verifier_prediction(
                root,
                budgets=range(0, 61, 4 if quick else 2),
                n_tasks=600 if quick else 4000,
                seed=seed,
            ),
            plot_verifier,
        ),
        (
            "router_regret",
            lambda: router_regret_prediction(
                root, repeats=8 if quick else 40, seed=seed, economy=not quick
            ),
            plot_router_regret,
        ),
        (
            "externality",
            lambda: congestion_prediction(root),
            plot_externality,
        ),
    ]
    plots: dict[str, str] = {}
    for name, run, plot in steps:
        results[name] = run()
        target = out / PLOT_FILES[name]
        plot(results[name], target)
        plots[name] = str(target)
        if progress is not None:
            progress(name)
    results["headline"] = headline(results)
    results["plots"] = plots
    cleaned: dict[str, Any] = _clean(results)
    return cleaned


def _clean(x: Any) -> Any:
    """Non-finite floats to ``None`` (strict JSON)."""
    if isinstance(x, float):
        return x if math.isfinite(x) else None
    if isinstance(x, dict):
        return {k: _clean(v) for k, v in x.items()}
    if isinstance(x, list | tuple):
        return [_clean(v) for v in x]
    return x
