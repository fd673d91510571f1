"""RL post-training as token investment (Sec. 3.4, Eq. 11-12).

Capability accumulates as ``A_{t+1} = A_t + g(R_t, V_t, U_t) − δ·A_t`` (Eq. 11), with
rollout, verifier and update tokens (R, V, U) bought at per-token shadow prices
κ = (κ_R, κ_V, κ_U). The Bellman problem (Eq. 12)

    W(A) = max_{R,V,U} π(A) − κ_R R − κ_V V − κ_U U + β·E W(A'),

with a linear payoff π(A) = p·A has the shadow value of capability
``q = ∂W/∂A = p / (1 − β(1 − δ))``, so the optimal spend solves ``q·∂g/∂x_i = κ_i``, and
for any per-step budget the allocation equalizes ``(∂g/∂x_i)/κ_i`` across the three uses.

Also here: staleness depreciation of asynchronous rollouts calibrated on AReaL's
η ablation, the admission rule it implies, the zero-advantage filter (DAPO dynamic
sampling), and a mean-variance portfolio of SFT, DPO and online RL.
"""

from __future__ import annotations

import csv
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np
import numpy.typing as npt
from scipy.optimize import minimize

from margin.core.prices import InputError, Option, PriceVector
from margin.ledger.records import LedgerRecord, RecordSink

__all__ = [
    "DEFAULT_ASSETS",
    "FIXED_RATIOS",
    "GAIN_FUNCTIONS",
    "USES",
    "CESGain",
    "CapabilityModel",
    "CobbDouglasGain",
    "GainFunction",
    "InvestmentAllocation",
    "PortfolioAsset",
    "StalenessCalibration",
    "admit_rollouts",
    "allocate_investment",
    "budget_report",
    "calibrate_staleness",
    "efficient_frontier",
    "group_marginal_value",
    "model_from_config",
    "rl_asset",
    "simulate_capability",
    "simulate_staleness",
    "staleness_threshold",
    "tokens_to_reach",
    "verifier_cut_effect",
    "zero_advantage_filter",
]

FloatArray = npt.NDArray[np.float64]

#: The three token uses of Eq. 11, in order.
USES = ("rollout", "verifier", "update")


@runtime_checkable
class GainFunction(Protocol):
    """A concave capability production function g(x) of token inputs (one main method)."""

    def gain(self, x: npt.ArrayLike) -> float:
        """g(x) for token inputs x (shape (3,): rollout, verifier, update)."""
        ...

    def gradient(self, x: npt.ArrayLike) -> FloatArray:
        """∂g/∂x_i."""
        ...


def _pos(name: str, v: float, *, strict: bool = True) -> float:
    if isinstance(v, bool) or not isinstance(v, int | float) or not math.isfinite(v):
        raise InputError(f"field '{name}' must be a finite number, got {v!r}")
    if v < 0 or (strict and v == 0):
        raise InputError(f"field '{name}' must be {'> 0' if strict else '>= 0'}, got {v}")
    return float(v)


@dataclass(frozen=True, slots=True)
class CobbDouglasGain:
    """``g(x) = θ·Π x_i^{α_i}`` with ``Σ α_i < 1`` (decreasing returns: concave).

    Examples
    --------
    >>> g = CobbDouglasGain(scale=1.0, alpha=(0.4, 0.2, 0.2))
    >>> round(g.gain([1.0, 1.0, 1.0]), 6), g.gradient([1.0, 1.0, 1.0]).round(6).tolist()
    (1.0, [0.4, 0.2, 0.2])
    """

    scale: float = 1.0
    alpha: tuple[float, float, float] = (0.35, 0.15, 0.2)

    def __post_init__(self) -> None:
        _pos("scale", self.scale)
        if len(self.alpha) != 3 or any(_pos("alpha", a) <= 0 for a in self.alpha):
            raise InputError("field 'alpha' must hold three exponents > 0")
        if sum(self.alpha) >= 1:
            raise InputError(f"field 'alpha' must sum to < 1 (concave g), got {sum(self.alpha)}")

    def gain(self, x: npt.ArrayLike) -> float:
        v = np.maximum(np.asarray(x, dtype=np.float64), 0.0)
        return float(self.scale * np.prod(v ** np.asarray(self.alpha)))

    def gradient(self, x: npt.ArrayLike) -> FloatArray:
        v = np.maximum(np.asarray(x, dtype=np.float64), 1e-300)
        out: FloatArray = np.asarray(self.alpha) * self.gain(v) / v
        return out


@dataclass(frozen=True, slots=True)
class CESGain:
    """``g(x) = θ·(Σ w_i x_i^ρ)^{ν/ρ}``, ρ < 1, 0 < ν < 1 (complements when ρ < 0).

    Examples
    --------
    >>> g = CESGain(scale=1.0, weights=(1.0, 1.0, 1.0), rho=-1.0, returns=0.6)
    >>> round(g.gain([3.0, 3.0, 3.0]), 6)
    1.0
    """

    scale: float = 1.0
    weights: tuple[float, float, float] = (0.5, 0.25, 0.25)
    rho: float = -0.5
    returns: float = 0.7

    def __post_init__(self) -> None:
        _pos("scale", self.scale)
        if len(self.weights) != 3 or any(_pos("weights", w) <= 0 for w in self.weights):
            raise InputError("field 'weights' must hold three numbers > 0")
        if not (self.rho < 1 and self.rho != 0):
            raise InputError(f"field 'rho' must be < 1 and != 0, got {self.rho}")
        if not 0 < self.returns < 1:
            raise InputError(f"field 'returns' must be in (0, 1), got {self.returns}")

    def _s(self, v: FloatArray) -> float:
        return float(np.dot(self.weights, v**self.rho))

    def gain(self, x: npt.ArrayLike) -> float:
        v = np.maximum(np.asarray(x, dtype=np.float64), 1e-300)
        return float(self.scale * self._s(v) ** (self.returns / self.rho))

    def gradient(self, x: npt.ArrayLike) -> FloatArray:
        v = np.maximum(np.asarray(x, dtype=np.float64), 1e-300)
        s = self._s(v)
        out: FloatArray = (
            self.scale
            * self.returns
            * s ** (self.returns / self.rho - 1.0)
            * np.asarray(self.weights)
            * v ** (self.rho - 1.0)
        )
        return out


#: Registry of capability production functions by name.
GAIN_FUNCTIONS: dict[str, Callable[..., GainFunction]] = {
    "cobb_douglas": CobbDouglasGain,
    "ces": CESGain,
}


@dataclass(frozen=True, slots=True)
class InvestmentAllocation:
    """Tokens per use, the gain g, and the marginal gain per token ``(∂g/∂x_i)/κ_i``."""

    tokens: dict[str, float]
    gain: float
    marginal_gain_per_token: dict[str, float]

    def as_dict(self) -> dict[str, Any]:
        return {
            "tokens": dict(self.tokens),
            "gain": self.gain,
            "marginal_gain_per_token": dict(self.marginal_gain_per_token),
        }


def _kappa(kappa: npt.ArrayLike) -> FloatArray:
    k = np.asarray(kappa, dtype=np.float64)
    if k.shape != (3,) or np.any(~np.isfinite(k)) or np.any(k <= 0):
        raise InputError("kappa: three per-token shadow prices > 0 (rollout, verifier, update)")
    return k


def allocate_investment(
    g: GainFunction, kappa: npt.ArrayLike, budget: float
) -> InvestmentAllocation:
    """Maximize g(x) subject to ``Σ κ_i x_i = B`` numerically (SLSQP on budget shares).

    At the optimum ``(∂g/∂R)/κ_R = (∂g/∂V)/κ_V = (∂g/∂U)/κ_U`` (Sec. 3.4). For
    Cobb-Douglas g it matches ``x_i = α_i/Σα · B/κ_i`` (Sec. 2's closed form).

    Examples
    --------
    >>> a = allocate_investment(CobbDouglasGain(1.0, (0.3, 0.1, 0.2)), [1.0, 2.0, 1.0], 600.0)
    >>> [round(v, 2) for v in a.tokens.values()]
    [300.0, 50.0, 200.0]
    """
    k = _kappa(kappa)
    b = _pos("budget", budget)

    def neg(s: FloatArray) -> float:
        x = np.maximum(s, 1e-12) * b / k
        return -math.log(max(g.gain(x), 1e-300))

    def jac(s: FloatArray) -> FloatArray:
        x = np.maximum(s, 1e-12) * b / k
        out: FloatArray = -g.gradient(x) * (b / k) / max(g.gain(x), 1e-300)
        return out

    res = minimize(
        neg,
        np.full(3, 1.0 / 3.0),
        jac=jac,
        method="SLSQP",
        bounds=[(1e-9, 1.0)] * 3,
        constraints=[{"type": "eq", "fun": lambda s: float(np.sum(s) - 1.0)}],
        options={"ftol": 1e-15, "maxiter": 1000},
    )
    s = np.clip(np.asarray(res.x, dtype=np.float64), 1e-12, None)
    x = s / s.sum() * b / k
    mg = g.gradient(x) / k
    return InvestmentAllocation(
        tokens=dict(zip(USES, x.tolist(), strict=True)),
        gain=g.gain(x),
        marginal_gain_per_token=dict(zip(USES, mg.tolist(), strict=True)),
    )


@dataclass(frozen=True, slots=True)
class CapabilityModel:
    """Eq. 11-12: technology g, prices κ, depreciation δ, discount β, payoff p per unit A.

    Examples
    --------
    >>> m = CapabilityModel()
    >>> round(m.shadow_value, 4)
    33.557
    """

    technology: GainFunction = field(default_factory=CobbDouglasGain)
    kappa: tuple[float, float, float] = (1.0, 2.0, 1.5)
    depreciation: float = 0.02
    discount: float = 0.99
    payoff_per_capability: float = 1.0

    def __post_init__(self) -> None:
        _kappa(self.kappa)
        if not 0 <= self.depreciation < 1:
            raise InputError(f"field 'depreciation' must be in [0, 1), got {self.depreciation}")
        if not 0 < self.discount < 1:
            raise InputError(f"field 'discount' must be in (0, 1), got {self.discount}")
        _pos("payoff_per_capability", self.payoff_per_capability)

    @property
    def shadow_value(self) -> float:
        """q = ∂W/∂A = p / (1 − β(1 − δ)) for the linear payoff π(A) = p·A (Eq. 12)."""
        return self.payoff_per_capability / (1.0 - self.discount * (1.0 - self.depreciation))

    def step(self, capability: float, tokens: npt.ArrayLike) -> float:
        """A' = A + g(x) − δA (Eq. 11)."""
        return capability + self.technology.gain(tokens) - self.depreciation * capability

    def optimal_spend(self) -> InvestmentAllocation:
        """Unconstrained Eq. 12 optimum: ``β·q·∂g/∂x_i = κ_i`` (numeric, on log tokens)."""
        k = np.asarray(self.kappa)
        q = self.discount * self.shadow_value

        def neg(z: FloatArray) -> float:
            x = np.exp(z)
            return -(q * self.technology.gain(x) - float(np.dot(k, x)))

        def jac(z: FloatArray) -> FloatArray:
            x = np.exp(z)
            out: FloatArray = -(q * self.technology.gradient(x) - k) * x
            return out

        res = minimize(neg, np.zeros(3), jac=jac, method="BFGS", options={"gtol": 1e-10})
        x = np.exp(res.x)
        mg = self.technology.gradient(x) / k
        return InvestmentAllocation(
            tokens=dict(zip(USES, x.tolist(), strict=True)),
            gain=self.technology.gain(x),
            marginal_gain_per_token=dict(zip(USES, mg.tolist(), strict=True)),
        )


#: Fixed-ratio baselines (rollout, verifier, update budget shares).
FIXED_RATIOS: dict[str, tuple[float, float, float]] = {
    "fixed-equal": (1 / 3, 1 / 3, 1 / 3),
    "fixed-rollout-heavy": (0.7, 0.1, 0.2),
    "fixed-verifier-heavy": (0.3, 0.5, 0.2),
    "fixed-update-heavy": (0.3, 0.1, 0.6),
}


def simulate_capability(
    model: CapabilityModel,
    policy: str,
    budget_per_step: float,
    steps: int,
    *,
    initial: float = 0.0,
    sink: RecordSink | None = None,
) -> FloatArray:
    """Capability path A_0..A_T under a policy: ``marginal`` or a :data:`FIXED_RATIOS` name.

    With ``sink``, each step appends ``LedgerRecord(layer="capital")`` with
    ``attributes["stale_rl"]`` true when δ·A exceeds g at the margin (capability is
    shrinking: the "stale RL rollouts" failure mode of Table 2).

    Examples
    --------
    >>> m = CapabilityModel()
    >>> a = simulate_capability(m, "marginal", 30.0, 50)
    >>> bool(a[-1] > simulate_capability(m, "fixed-equal", 30.0, 50)[-1])
    True
    """
    if policy == "marginal":
        alloc = allocate_investment(model.technology, model.kappa, budget_per_step)
        x = np.array(list(alloc.tokens.values()))
    elif policy in FIXED_RATIOS:
        x = np.asarray(FIXED_RATIOS[policy]) * budget_per_step / np.asarray(model.kappa)
    else:
        known = ["marginal", *FIXED_RATIOS]
        raise InputError(f"policy: unknown RL budget policy {policy!r}; known: {known}")
    a = np.empty(steps + 1)
    a[0] = initial
    gain = model.technology.gain(x)
    for t in range(steps):
        a[t + 1] = a[t] + gain - model.depreciation * a[t]
        if sink is not None:
            sink.append(
                LedgerRecord(
                    request_id=f"rl-step-{t}",
                    layer="capital",
                    choice=policy,
                    options=(Option(policy, quality=gain, cost=budget_per_step),),
                    prices=PriceVector(value=model.shadow_value),
                    attributes={
                        "kind": "rl_step",
                        "gain": gain,
                        "depreciation_loss": model.depreciation * float(a[t]),
                        "stale_rl": model.depreciation * float(a[t]) > gain,
                        "tokens": dict(zip(USES, x.tolist(), strict=True)),
                    },
                )
            )
    return a


def tokens_to_reach(path: FloatArray, target: float, budget_per_step: float) -> float:
    """Tokens spent until capability first reaches ``target`` (inf if never)."""
    hit = np.flatnonzero(path >= target)
    return float(hit[0] * budget_per_step) if hit.size else math.inf


# ---------------------------------------------------------------- staleness


@dataclass(frozen=True, slots=True)
class StalenessCalibration:
    """Per-version value decay ω fitted to AReaL's η ablation (see :func:`calibrate_staleness`).

    ``omega[obj]`` and ``sensitivity[obj]`` per PPO objective (``naive_ppo``,
    ``decoupled_ppo``), ``rmse`` of the fitted relative accuracy, and
    ``verl_predicted``/``verl_observed``: relative accuracy at verl's
    staleness_threshold 0.5 (half the batch one version stale) vs its sync run.
    """

    omega: dict[str, float]
    sensitivity: dict[str, float]
    rmse: dict[str, float]
    verl_predicted: float
    verl_observed: float

    def as_dict(self) -> dict[str, Any]:
        return {
            "omega": self.omega,
            "sensitivity": self.sensitivity,
            "rmse": self.rmse,
            "verl_predicted": self.verl_predicted,
            "verl_observed": self.verl_observed,
        }


def _mean_factor(omega: float, eta: FloatArray) -> FloatArray:
    # m(η) = (1/(η+1)) Σ_{k=0..η} e^{−ωk}
    with np.errstate(divide="ignore", invalid="ignore"):
        geo = np.where(omega > 0, -np.expm1(-omega * (eta + 1)) / -np.expm1(-omega), eta + 1)
    out: FloatArray = geo / (eta + 1)
    return out


def calibrate_staleness(path: str | Path) -> StalenessCalibration:
    """Fit ω to AReaL v0.3's η ablation (accuracy vs max head off-policyness η).

    Model: with bound η, lags are uniform on 0..η and a k-stale rollout keeps a share
    ``e^{−ωk}`` of its value, so ``acc(η)/acc(0) = 1 − s·(1 − m_ω(η))`` with
    ``m_ω(η) = (1/(η+1))·Σ_{k≤η} e^{−ωk}``. (s, ω) are fitted by least squares over the
    finite-η rows of AIME24 and AIME25 for each PPO objective (η = ∞ rows are left out).
    Source: inclusionAI/AReaL ``blog/AReaL_v0_3.md`` tables 2-3; verl
    ``recipe/fully_async_policy/README.md`` (Apache-2.0).
    """
    p = Path(path)
    if not p.is_file():
        raise InputError(f"staleness: file {p} does not exist")
    rows: list[dict[str, str]] = []
    with p.open(newline="", encoding="utf-8") as fh:
        reader = csv.DictReader(fh)
        need = {"source", "staleness_value", "objective", "metric", "value"}
        if reader.fieldnames is None or not need <= set(reader.fieldnames):
            raise InputError(f"{p} line 1: header must include {sorted(need)}")
        for i, row in enumerate(reader, start=2):
            row["_line"] = str(i)
            rows.append(row)
    base: dict[str, float] = {}
    pts: dict[str, list[tuple[float, float, str, str]]] = {"naive_ppo": [], "decoupled_ppo": []}
    verl_sync = verl_05 = math.nan
    for row in rows:
        where = f"{p} line {row['_line']}"
        src = row["source"]
        if src.startswith("verl") and row["metric"].startswith("acc/mean@1"):
            try:
                best = float(row["value"].split("|")[0])
            except ValueError:
                raise InputError(f"{where}: field 'value' is not a number") from None
            if row["staleness_value"] == "sync":
                verl_sync = best
            elif row["staleness_value"] == "0.5":
                verl_05 = best
        if src != "areal_blog_v0_3_table3":
            continue
        try:
            val = float(row["value"])
        except ValueError:
            raise InputError(f"{where}: field 'value' is not a number") from None
        if row["objective"] == "sync":
            base[row["metric"]] = val
        elif row["objective"] in pts and row["staleness_value"] != "inf":
            try:
                eta = float(row["staleness_value"])
            except ValueError:
                raise InputError(f"{where}: field 'staleness_value' is not a number") from None
            pts[row["objective"]].append((eta, val, row["metric"], where))
    omega: dict[str, float] = {}
    sens: dict[str, float] = {}
    rmse: dict[str, float] = {}
    grid = np.exp(np.linspace(np.log(1e-3), np.log(5.0), 400))
    for obj, pp in pts.items():
        if len(pp) < 2:
            raise InputError(f"{p}: needs AReaL table-3 rows for {obj} with finite eta")
        for _, _, metric, where in pp:
            if metric not in base:
                raise InputError(f"{where}: no eta=0 sync row for metric {metric!r}")
        etas: FloatArray = np.array([e for e, _, _, _ in pp], dtype=np.float64)
        rel = np.array([v / base[m] for _, v, m, _ in pp])
        fit: tuple[float, float, float] = (math.inf, 0.0, 0.0)
        for w_grid in grid:
            z = 1.0 - _mean_factor(float(w_grid), etas)
            s = float(np.clip(np.dot(z, 1.0 - rel) / max(np.dot(z, z), 1e-300), 0.0, 1.0))
            err = float(np.sqrt(np.mean((1.0 - s * z - rel) ** 2)))
            if err < fit[0]:
                fit = (err, float(w_grid), s)
        rmse[obj], omega[obj], sens[obj] = fit
    w_dec, s_dec = omega["decoupled_ppo"], sens["decoupled_ppo"]
    predicted = 1.0 - s_dec * 0.5 * (1.0 - math.exp(-w_dec))
    return StalenessCalibration(
        omega=omega,
        sensitivity=sens,
        rmse=rmse,
        verl_predicted=predicted,
        verl_observed=verl_05 / verl_sync if verl_sync == verl_sync else math.nan,
    )


def staleness_threshold(omega: float, fresh_value: float, marginal_cost: float) -> float:
    """Largest lag k admitted: ``fresh·e^{−ωk} ≥ cost`` ⇔ ``k ≤ ln(fresh/cost)/ω``.

    Returns ``-inf`` when even a fresh rollout is not worth its cost, ``inf`` when ω = 0.

    Examples
    --------
    >>> round(staleness_threshold(0.1, 1.0, 0.5), 4)
    6.9315
    """
    _pos("omega", omega, strict=False)
    _pos("fresh_value", fresh_value)
    _pos("marginal_cost", marginal_cost)
    if fresh_value < marginal_cost:
        return -math.inf
    if omega == 0:
        return math.inf
    return math.log(fresh_value / marginal_cost) / omega


def admit_rollouts(
    lags: npt.ArrayLike,
    omega: float,
    fresh_value: float,
    marginal_cost: float,
    *,
    sink: RecordSink | None = None,
) -> npt.NDArray[np.bool_]:
    """Admit a rollout of lag k iff its depreciated marginal value ``v·e^{−ωk}`` ≥ cost.

    With ``sink``, one record per rollout; ``attributes["stale_rollout"]`` marks drops.
    Each record carries the stale-rollout detector's two sides: ``depreciation`` δ·A =
    ``v·(1 − e^{−ωk})`` and ``gain`` g = ``v − c`` (admit ⟺ g ≥ δ·A).
    """
    k = np.asarray(lags, dtype=np.float64)
    mv = fresh_value * np.exp(-omega * k)
    keep: npt.NDArray[np.bool_] = mv >= marginal_cost
    if sink is not None:
        for i, (kk, m, ok) in enumerate(zip(k.tolist(), mv.tolist(), keep.tolist(), strict=True)):
            sink.append(
                LedgerRecord(
                    request_id=f"rollout-{i}",
                    layer="capital",
                    choice="admit" if ok else None,
                    options=(Option("admit", quality=m, cost=marginal_cost),),
                    prices=PriceVector(value=1.0),
                    attributes={
                        "kind": "rollout_admission",
                        "lag": kk,
                        "marginal_value": m,
                        "marginal_cost": marginal_cost,
                        "depreciation": fresh_value - m,
                        "gain": fresh_value - marginal_cost,
                        "stale_rollout": not ok,
                    },
                )
            )
    return keep


def simulate_staleness(
    drifts: Sequence[float],
    etas: Sequence[int],
    *,
    n_rollouts: int = 20_000,
    mean_lag: float = 4.0,
    fresh_value: float = 1.0,
    marginal_cost: float = 0.4,
    seed: int = 0,
) -> dict[str, Any]:
    """Net value of admitted rollouts: the staleness rule vs fixed bounds η, per drift.

    Lags come from an asynchronous pipeline, geometric with mean ``mean_lag``; a rollout
    of lag k is worth ``v·e^{−ωk}`` with ω = drift, and training on it costs ``c``
    (update tokens). A policy's net value is ``Σ_admitted (v·e^{−ωk} − c)`` per rollout.
    """
    rng = np.random.default_rng(seed)
    lags = rng.geometric(1.0 / (1.0 + mean_lag), size=n_rollouts) - 1.0
    out: dict[str, Any] = {"drifts": list(drifts), "rule": [], "fixed": {}, "threshold": []}
    for eta in etas:
        out["fixed"][str(eta)] = []
    for d in drifts:
        net = fresh_value * np.exp(-d * lags) - marginal_cost
        keep = admit_rollouts(lags, d, fresh_value, marginal_cost)
        out["rule"].append(float(net[keep].sum() / n_rollouts))
        out["threshold"].append(staleness_threshold(d, fresh_value, marginal_cost))
        for eta in etas:
            out["fixed"][str(eta)].append(float(net[lags <= eta].sum() / n_rollouts))
    best = max(out["fixed"], key=lambda e: sum(out["fixed"][e]))
    out["best_fixed_eta"] = best
    out["rule_dominates"] = all(
        r >= f - 1e-12 for r, f in zip(out["rule"], out["fixed"][best], strict=True)
    )
    return out


# ---------------------------------------------------------------- zero-advantage filter


def group_marginal_value(rewards: npt.ArrayLike, verifier_noise: float = 0.0) -> FloatArray:
    """Marginal value of groups of rollouts: ``(1 − 2ε)·mean_i |r_i − r̄|``.

    Zero when all rewards in a group are equal (zero advantage: the policy gradient
    vanishes, as in DAPO's dynamic sampling, arXiv 2503.14476); a verifier that flips a
    binary reward with probability ε attenuates the signal by ``1 − 2ε``.

    Examples
    --------
    >>> group_marginal_value([[1, 1, 1, 1], [1, 0, 1, 0]], 0.1).tolist()
    [0.0, 0.4]
    """
    r = np.atleast_2d(np.asarray(rewards, dtype=np.float64))
    if not 0 <= verifier_noise < 0.5:
        raise InputError(f"verifier_noise: must be in [0, 0.5), got {verifier_noise}")
    adv = np.abs(r - r.mean(axis=1, keepdims=True)).mean(axis=1)
    out: FloatArray = (1.0 - 2.0 * verifier_noise) * adv
    return out


def zero_advantage_filter(
    solve_rates: npt.ArrayLike,
    group_size: int,
    verifier_noise: float,
    tokens_per_rollout: float,
    *,
    update_share: float = 0.5,
    seed: int = 0,
) -> dict[str, float]:
    """Sample binary-reward groups, drop zero-value ones, report the tokens saved.

    Each prompt with true solve rate p gets ``group_size`` rollouts; the verifier flips
    each reward with probability ε. Groups with equal rewards have zero marginal value
    (:func:`group_marginal_value`) and are dropped before the update, saving their
    update tokens (``update_share`` of a rollout's tokens). ``mean_signal`` is the mean
    covariance of observed and true advantages per rollout: the learning signal, which
    falls with verifier noise while noise makes fewer groups look uninformative.

    Examples
    --------
    >>> z = zero_advantage_filter([1.0, 0.0, 0.5], 4, 0.0, 100.0, seed=1)
    >>> z["dropped_share"] >= 2 / 3, z["update_tokens_saved"] >= 400.0
    (True, True)
    """
    p = np.asarray(solve_rates, dtype=np.float64)
    rng = np.random.default_rng(seed)
    true = rng.random((p.size, group_size)) < p[:, None]
    flip = rng.random(true.shape) < verifier_noise
    obs = (true ^ flip).astype(np.float64)
    val = group_marginal_value(obs, verifier_noise)
    dropped = val == 0
    # gradient alignment: covariance of the observed and the true advantages per rollout
    t = true.astype(np.float64)
    signal = np.mean((obs - obs.mean(axis=1, keepdims=True)) * (t - t.mean(axis=1, keepdims=True)))
    saved = float(dropped.sum() * group_size * tokens_per_rollout * update_share)
    total = float(p.size * group_size * tokens_per_rollout * update_share)
    return {
        "groups": float(p.size),
        "dropped_share": float(dropped.mean()),
        "update_tokens_saved": saved,
        "update_tokens_saved_share": saved / total if total else 0.0,
        "mean_group_value": float(val.mean()),
        "mean_signal": float(signal),
    }


# ---------------------------------------------------------------- portfolio


@dataclass(frozen=True, slots=True)
class PortfolioAsset:
    """An investment asset: mean and s.d. of capability gain per token."""

    name: str
    mean: float
    sd: float


def rl_asset(verifier_share: float, base: PortfolioAsset | None = None) -> PortfolioAsset:
    """Online RL with a verifier share v of its tokens: fewer tokens to verify raise the
    mean gain per token by the freed share but inflate the s.d. (verifier tokens are risk
    capital): ``mean = μ·(1 − v)/(1 − v₀)``, ``sd = σ·√(v₀/v)`` with v₀ = 0.2."""
    b = base or PortfolioAsset("online_rl", 2.0, 1.5)
    if not 0 < verifier_share < 1:
        raise InputError(f"verifier_share: must be in (0, 1), got {verifier_share}")
    v0 = 0.2
    return PortfolioAsset(
        b.name, b.mean * (1 - verifier_share) / (1 - v0), b.sd * math.sqrt(v0 / verifier_share)
    )


DEFAULT_ASSETS = (
    PortfolioAsset("sft", 1.0, 0.2),
    PortfolioAsset("dpo", 1.3, 0.5),
    PortfolioAsset("online_rl", 2.0, 1.5),
)


def efficient_frontier(
    assets: Sequence[PortfolioAsset] = DEFAULT_ASSETS,
    correlation: float = 0.2,
    points: int = 21,
) -> list[dict[str, Any]]:
    """Markowitz frontier (long-only shares of tokens): min variance for each target mean.

    Returns rows ``{"mean", "sd", "cvar95", "weights": {name: share}}``; CVaR at 95% of
    the capability *loss* −G under a normal approximation, ``σ·φ(1.645)/0.05 − μ``.

    Examples
    --------
    >>> f = efficient_frontier(points=5)
    >>> f[0]["mean"] <= f[-1]["mean"], f[0]["sd"] <= f[-1]["sd"]
    (True, True)
    """
    if not -1 < correlation < 1:
        raise InputError(f"correlation: must be in (-1, 1), got {correlation}")
    mu = np.array([a.mean for a in assets])
    sd = np.array([a.sd for a in assets])
    cov = np.outer(sd, sd) * correlation
    np.fill_diagonal(cov, sd**2)
    m = mu.size
    w_minvar = minimize(
        lambda w: float(w @ cov @ w),
        np.full(m, 1.0 / m),
        method="SLSQP",
        bounds=[(0.0, 1.0)] * m,
        constraints=[{"type": "eq", "fun": lambda w: float(w.sum() - 1.0)}],
    ).x
    lo, hi = float(mu @ w_minvar), float(mu.max())
    rows: list[dict[str, Any]] = []
    phi = math.exp(-0.5 * 1.6448536269514722**2) / math.sqrt(2 * math.pi)
    for target in np.linspace(lo, hi, points):
        res = minimize(
            lambda w: float(w @ cov @ w),
            w_minvar,
            method="SLSQP",
            bounds=[(0.0, 1.0)] * m,
            constraints=[
                {"type": "eq", "fun": lambda w: float(w.sum() - 1.0)},
                {"type": "eq", "fun": lambda w, t=target: float(mu @ w - t)},
            ],
            options={"ftol": 1e-12, "maxiter": 500},
        )
        w = np.clip(res.x, 0.0, None)
        w = w / w.sum()
        mean, s = float(mu @ w), float(math.sqrt(max(w @ cov @ w, 0.0)))
        rows.append(
            {
                "mean": mean,
                "sd": s,
                "cvar95": s * phi / 0.05 - mean,
                "weights": {a.name: float(x) for a, x in zip(assets, w, strict=True)},
            }
        )
    return rows


def verifier_cut_effect(
    shares: Sequence[float] = (0.2, 0.1, 0.05), correlation: float = 0.2
) -> list[dict[str, Any]]:
    """Max-mean frontier point and min CVaR as the RL verifier share is cut."""
    out = []
    for v in shares:
        assets = (*DEFAULT_ASSETS[:2], rl_asset(v))
        f = efficient_frontier(assets, correlation, points=11)
        out.append(
            {
                "verifier_share": v,
                "rl_mean": assets[2].mean,
                "rl_sd": assets[2].sd,
                "top_mean": f[-1]["mean"],
                "top_cvar95": f[-1]["cvar95"],
            }
        )
    return out


def budget_report(model: CapabilityModel, budget: float) -> dict[str, Any]:
    """The ``rl budget`` JSON: allocation, marginal gains, closed form, Eq. 12 optimum."""
    alloc = allocate_investment(model.technology, model.kappa, budget)
    out: dict[str, Any] = {
        "budget": budget,
        "allocation": alloc.tokens,
        "marginal_gain_per_token": alloc.marginal_gain_per_token,
        "gain": alloc.gain,
        "steady_state_capability": alloc.gain / model.depreciation
        if model.depreciation > 0
        else None,
        "shadow_value": model.shadow_value,
        "optimal_spend": model.optimal_spend().tokens,
    }
    if isinstance(model.technology, CobbDouglasGain):
        from margin.core.production import cobb_douglas_allocation

        cf = cobb_douglas_allocation(model.technology.alpha, model.kappa, budget)
        out["closed_form"] = dict(zip(USES, cf.tolist(), strict=True))
    return out


def model_from_config(
    cfg: Mapping[str, Any], where: str = "config"
) -> tuple[CapabilityModel, float]:
    """Build ``(CapabilityModel, budget)`` from a mapping (the ``rl budget --config`` file).

    Keys: ``technology`` (``cobb_douglas`` or ``ces``), ``technology_params`` (the
    dataclass fields), ``kappa`` [3], ``depreciation``, ``discount``,
    ``payoff_per_capability``, ``budget``.
    """
    if not isinstance(cfg, Mapping):
        raise InputError(f"{where}: expected a mapping at the top level")
    known = {
        "technology",
        "technology_params",
        "kappa",
        "depreciation",
        "discount",
        "payoff_per_capability",
        "budget",
    }
    extra = set(cfg) - known
    if extra:
        raise InputError(f"{where}: unknown field(s) {sorted(extra)}")
    tech_name = cfg.get("technology", "cobb_douglas")
    if tech_name not in GAIN_FUNCTIONS:
        raise InputError(f"{where}: field 'technology' must be one of {sorted(GAIN_FUNCTIONS)}")
    params = dict(cfg.get("technology_params", {}))
    for k, v in params.items():
        if isinstance(v, list):
            params[k] = tuple(v)
    try:
        tech = GAIN_FUNCTIONS[tech_name](**params)
        kappa = cfg.get("kappa", (1.0, 2.0, 1.5))
        if not isinstance(kappa, list | tuple) or len(kappa) != 3:
            raise InputError("field 'kappa' must be a list of three prices")
        model = CapabilityModel(
            technology=tech,
            kappa=(float(kappa[0]), float(kappa[1]), float(kappa[2])),
            depreciation=float(cfg.get("depreciation", 0.02)),
            discount=float(cfg.get("discount", 0.99)),
            payoff_per_capability=float(cfg.get("payoff_per_capability", 1.0)),
        )
        budget = _pos("budget", cfg.get("budget", 100.0))
    except InputError as e:
        raise InputError(f"{where}: {e}") from None
    except (TypeError, ValueError) as e:
        raise InputError(f"{where}: {e}") from None
    return model, budget
