"""Optimal autonomy: the principal–agent problem of Eq. 6 and its first-order condition, Eq. 7.

``U(a, t) = V·p(a, t) − C(t) − (ρ + ρ_irr·φ)·R(a, t) − H(a)``            (Eq. 6, risk priced)

with autonomy ``a ∈ [0, 1]`` (0 = always ask, 1 = act freely) and token spend ``t`` in USD
(so ``C(t) = t``). The parametric families:

* success ``p(a, t) = p_max·(1 − e^{−t/τ})·(1 − δ·(1 − a))``: saturating in spend; asking
  costs the share ``δ(1 − a)`` of the success (interrupted flow, missed deadlines);
* risk ``R(a, t) = L·a^γ·ε(t)``, ``ε(t) = ε_∞ + (ε_0 − ε_∞)·e^{−t/τ_v}``: the expected loss of
  autonomous mistakes; ``γ > 1`` because the riskiest actions are delegated last, and
  spending (verification) lowers the rate ``ε`` at which a wrong action escapes;
* oversight ``H(a) = h·(1 − a)^η``, decreasing in ``a``.

Eq. 7 (``V·∂p/∂a = ∂R/∂a + ∂H/∂a`` with ∂H/∂a < 0) reads here
``V·p_max(1 − e^{−t/τ})·δ + h·η·(1 − a)^{η−1} = (ρ + ρ_irr·φ)·L·γ·a^{γ−1}·ε(t)``; the left
side falls and the right side rises in ``a``, so the root is unique and ``a*`` falls as
``ρ``, ``ρ_irr``, ``φ`` or ``L`` rise (tests check it with hypothesis).

Defaults are calibrated to SWE-Bench Pro with SWE-agent and GPT-5 (730 tasks,
nilenso/swe-bench-pro-cost-token-time-analysis): the maximum-likelihood fit of
``p(1, t)`` to per-task (cost, resolved) gives ``p_max = 0.380``, ``τ = 0.196`` USD, and
49.1% of tasks end with a submitted patch that does not resolve the issue (``ε_0``); see
:func:`calibrate_swe_pro`. ``L``, ``h``, ``δ``, ``γ``, ``η`` are modelling assumptions
(a wrong change merged unreviewed costs 200 USD of incident and revert work, supervising
every step of a task costs 10 USD of human time, asking loses 30% of the success).
"""

from __future__ import annotations

import csv
import math
import os
from dataclasses import dataclass, fields, replace

import numpy as np
import numpy.typing as npt
from scipy.optimize import minimize, minimize_scalar

from margin.core.prices import InputError, PriceVector

__all__ = ["AutonomyModel", "AutonomySolution", "calibrate_swe_pro"]

FloatArray = npt.NDArray[np.float64]


@dataclass(frozen=True, slots=True)
class AutonomySolution:
    """``a*``, ``t*`` and the terms of Eq. 7 at the optimum."""

    autonomy: float
    spend: float
    utility: float
    success: float
    risk: float
    oversight: float
    marginal_value: float
    marginal_risk: float
    marginal_oversight: float

    @property
    def foc_residual(self) -> float:
        """V·∂p/∂a − ∂R/∂a − ∂H/∂a; zero at an interior a*, signed at a corner."""
        return self.marginal_value - self.marginal_risk - self.marginal_oversight


@dataclass(frozen=True, slots=True)
class AutonomyModel:
    """Parametric p(a, t), R(a, t), H(a) of Eq. 6 (see the module docstring).

    Examples
    --------
    >>> m = AutonomyModel()
    >>> lo = m.solve(PriceVector(value=100.0, risk_price=2.0))
    >>> hi = m.solve(PriceVector(value=100.0, risk_price=5.0))
    >>> lo.autonomy > hi.autonomy
    True
    >>> abs(lo.foc_residual) < 1e-6
    True
    """

    p_max: float = 0.380
    tau: float = 0.196
    delta: float = 0.3
    loss: float = 200.0
    gamma: float = 2.0
    eps0: float = 0.491
    eps_inf: float = 0.05
    tau_v: float = 0.196
    human_cost: float = 10.0
    eta: float = 1.0
    irreversible_share: float = 0.1

    def __post_init__(self) -> None:
        for f in fields(self):
            x = getattr(self, f.name)
            if isinstance(x, bool) or not isinstance(x, int | float) or not math.isfinite(x):
                raise InputError(f"AutonomyModel: field '{f.name}' must be a finite number")
            object.__setattr__(self, f.name, float(x))
        for name in ("p_max", "delta", "eps0", "eps_inf", "irreversible_share"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise InputError(f"AutonomyModel: field '{name}' must be in [0, 1]")
        for name in ("tau", "tau_v"):
            if getattr(self, name) <= 0:
                raise InputError(f"AutonomyModel: field '{name}' must be > 0")
        for name in ("loss", "human_cost"):
            if getattr(self, name) < 0:
                raise InputError(f"AutonomyModel: field '{name}' must be >= 0")
        if self.gamma <= 1.0:
            raise InputError("AutonomyModel: field 'gamma' must be > 1 (convex risk in a)")
        if self.eta < 1.0:
            raise InputError("AutonomyModel: field 'eta' must be >= 1 (convex oversight)")

    # -- the three families --------------------------------------------------------------
    def saturation(self, t: npt.ArrayLike) -> FloatArray:
        return np.asarray(self.p_max * -np.expm1(-np.asarray(t, dtype=np.float64) / self.tau))

    def escape_rate(self, t: npt.ArrayLike) -> FloatArray:
        x = np.asarray(t, dtype=np.float64)
        return np.asarray(self.eps_inf + (self.eps0 - self.eps_inf) * np.exp(-x / self.tau_v))

    def success(self, a: npt.ArrayLike, t: npt.ArrayLike) -> FloatArray:
        """p(a, t)."""
        a_ = np.asarray(a, dtype=np.float64)
        return np.asarray(self.saturation(t) * (1.0 - self.delta * (1.0 - a_)))

    def risk(self, a: npt.ArrayLike, t: npt.ArrayLike) -> FloatArray:
        """R(a, t) in USD of expected loss."""
        a_ = np.asarray(a, dtype=np.float64)
        return np.asarray(self.loss * a_**self.gamma * self.escape_rate(t))

    def oversight(self, a: npt.ArrayLike) -> FloatArray:
        """H(a) in USD."""
        return np.asarray(self.human_cost * (1.0 - np.asarray(a, dtype=np.float64)) ** self.eta)

    def risk_weight(self, prices: PriceVector) -> float:
        """ρ + ρ_irr·φ: the price of one USD of R(a, t)."""
        return prices.risk_price + prices.irreversible_risk_price * self.irreversible_share

    def utility(self, prices: PriceVector, a: npt.ArrayLike, t: npt.ArrayLike) -> FloatArray:
        """U(a, t) of Eq. 6 (t in USD, so C(t) = t)."""
        t_ = np.asarray(t, dtype=np.float64)
        return np.asarray(
            prices.value * self.success(a, t_)
            - t_
            - self.risk_weight(prices) * self.risk(a, t_)
            - self.oversight(a)
        )

    def marginal_terms(
        self, prices: PriceVector, a: npt.ArrayLike, t: npt.ArrayLike
    ) -> tuple[FloatArray, FloatArray, FloatArray]:
        """(V·∂p/∂a, priced ∂R/∂a, ∂H/∂a) — the three terms of Eq. 7."""
        a_ = np.asarray(a, dtype=np.float64)
        mv = prices.value * self.saturation(t) * self.delta * np.ones_like(a_)
        mr = self.risk_weight(prices) * (
            self.loss * self.gamma * a_ ** (self.gamma - 1.0) * self.escape_rate(t)
        )
        mh = -self.human_cost * self.eta * (1.0 - a_) ** (self.eta - 1.0)
        return np.asarray(mv), np.asarray(mr), np.asarray(mh)

    # -- solvers -------------------------------------------------------------------------
    def optimal_autonomy(self, prices: PriceVector, t: npt.ArrayLike) -> FloatArray:
        """a*(t): the root of Eq. 7 in a for each spend t (vectorized bisection)."""
        t_ = np.atleast_1d(np.asarray(t, dtype=np.float64))

        def foc(a: FloatArray) -> FloatArray:
            mv, mr, mh = self.marginal_terms(prices, a, t_)
            return np.asarray(mv - mr - mh)

        lo = np.zeros_like(t_)
        hi = np.ones_like(t_)
        at_one = foc(hi) >= 0
        for _ in range(60):
            mid = 0.5 * (lo + hi)
            up = foc(mid) > 0
            lo = np.where(up, mid, lo)
            hi = np.where(up, hi, mid)
        a = np.where(at_one, 1.0, 0.5 * (lo + hi))
        return np.asarray(a.reshape(np.shape(t)))

    def solve(self, prices: PriceVector, t_max: float = 50.0) -> AutonomySolution:
        """Jointly optimal (a*, t*) of Eq. 6: a*(t) from Eq. 7, then t on a grid and refined."""
        if not t_max > 0:
            raise InputError(f"t_max: must be > 0, got {t_max}")
        grid = np.concatenate([[0.0], np.geomspace(1e-4, t_max, 400)])
        a_grid = self.optimal_autonomy(prices, grid)
        u = self.utility(prices, a_grid, grid)
        k = int(np.argmax(u))
        lo, hi = grid[max(k - 1, 0)], grid[min(k + 1, grid.size - 1)]

        def neg(t: float) -> float:
            a = float(self.optimal_autonomy(prices, np.array([t]))[0])
            return -float(self.utility(prices, a, t))

        t_star = float(grid[k])
        if hi > lo:
            res = minimize_scalar(neg, bounds=(lo, hi), method="bounded", options={"xatol": 1e-9})
            if -float(res.fun) >= float(u[k]):
                t_star = float(res.x)
        a_star = float(self.optimal_autonomy(prices, np.array([t_star]))[0])
        mv, mr, mh = self.marginal_terms(prices, a_star, t_star)
        return AutonomySolution(
            autonomy=a_star,
            spend=t_star,
            utility=float(self.utility(prices, a_star, t_star)),
            success=float(self.success(a_star, t_star)),
            risk=float(self.risk(a_star, t_star)),
            oversight=float(self.oversight(a_star)),
            marginal_value=float(mv),
            marginal_risk=float(mr),
            marginal_oversight=float(mh),
        )

    def with_params(self, **changes: float) -> AutonomyModel:
        return replace(self, **changes)


def calibrate_swe_pro(
    path: str | os.PathLike[str], model: str = "gpt5", base: AutonomyModel | None = None
) -> AutonomyModel:
    """Fit ``p_max``, ``τ`` and ``ε_0`` to the SWE-Bench Pro per-task table.

    ``p(1, t) = p_max·(1 − e^{−t/τ})`` by maximum likelihood on (``instance_cost_usd``,
    ``resolved``); ``ε_0`` is the share of tasks whose submitted patch did not resolve the
    issue (what a fully autonomous agent would have merged). The per-task cross-section
    mixes easy and hard tasks, so ``τ`` is a descriptive, not a causal, figure.
    """
    costs: list[float] = []
    resolved: list[bool] = []
    wrong = 0
    try:
        with open(path, newline="", encoding="utf-8") as fh:
            rows = list(csv.DictReader(fh))
            header = set(rows[0]) if rows else set()
    except OSError as e:
        raise InputError(f"{path}: cannot read ({e.strerror})") from None
    need = {"model", "resolved", "submitted", "instance_cost_usd"}
    if not need <= header:
        raise InputError(f"{path}: line 1: header must contain {sorted(need)}")
    for line, row in enumerate(rows, start=2):
        if row["model"] != model or row["resolved"] not in ("True", "False"):
            continue
        try:
            cost = float(row["instance_cost_usd"])
        except ValueError:
            raise InputError(
                f"{path}: line {line}: field 'instance_cost_usd' is not a number"
            ) from None
        costs.append(cost)
        ok = row["resolved"] == "True"
        resolved.append(ok)
        wrong += int(row["submitted"] == "True" and not ok)
    if len(costs) < 10:
        raise InputError(f"{path}: fewer than 10 rows for model '{model}'")
    c = np.asarray(costs)
    y = np.asarray(resolved, dtype=np.float64)

    def nll(theta: FloatArray) -> float:
        pm = 1.0 / (1.0 + math.exp(-theta[0]))
        p = np.clip(pm * -np.expm1(-c / math.exp(theta[1])), 1e-12, 1 - 1e-12)
        return -float(np.sum(y * np.log(p) + (1 - y) * np.log1p(-p)))

    res = minimize(
        nll, np.array([0.0, 0.0]), method="Nelder-Mead", options={"xatol": 1e-8, "fatol": 1e-10}
    )
    p_max = 1.0 / (1.0 + math.exp(-float(res.x[0])))
    tau = math.exp(float(res.x[1]))
    b = base if base is not None else AutonomyModel()
    return replace(b, p_max=p_max, tau=tau, tau_v=tau, eps0=wrong / len(costs))
