"""Multi-tenant equilibrium: prices that clear shared serving capacity (Sec. 2, Eq. 3).

Tenants k own requests x with a value V_x (USD) and a capacity need s_x (replica-seconds)
and a budget B_k (USD per period); the cluster has capacity C. At a capacity price p,
a tenant's demand is its best use of its budget (quasi-linear utility, shares y_x ∈ [0, 1]):

    max_y  U_k(y) = Σ_{x∈k} (V_x − p·s_x)·y_x   s.t.   Σ_{x∈k} p·s_x·y_x ≤ B_k,

a fractional knapsack: requests in descending V_x/s_x with V_x > p·s_x, until the budget
is spent. Aggregate demand D(p) = Σ_x s_x·y_x(p) is non-increasing in p, and the
clearing price p* is the least p with D(p) ≤ C (tâtonnement by bisection; p* = 0 when
capacity is slack, complementary slackness). When no budget binds, p* is the LP dual µL
of :func:`margin.core.discovery.discover_prices` with capacity as the budgeted resource,
and :func:`clear_market` reports that dual alongside.

The Pareto check (:func:`pareto_slack`) solves a small LP at the given prices: maximize
Σ_k U_k subject to U_k ≥ U_k(allocation) for every tenant, the capacity and every
budget; a positive optimum gap means some tenant can gain without hurting another.

Flat per-token pricing (:func:`flat_allocation`): every request pays p_flat per unit of
capacity; demand above capacity is rationed first come, first served.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import scipy.sparse as sp
from scipy.optimize import linprog

from margin.core.discovery import Budgets, TaskBatch, discover_prices
from margin.core.prices import InputError, check_number

__all__ = [
    "MarketAllocation",
    "Tenant",
    "clear_market",
    "default_market",
    "flat_allocation",
    "pareto_slack",
    "tenant_demand",
]

FloatArray = npt.NDArray[np.float64]


@dataclass(frozen=True, slots=True, eq=False)
class Tenant:
    """A tenant: its requests' values V (USD) and capacity needs s (> 0), and its budget."""

    name: str
    values: FloatArray
    sizes: FloatArray
    budget: float

    def __post_init__(self) -> None:
        where = f"tenant '{self.name}'"
        v = np.asarray(self.values, dtype=np.float64).ravel()
        s = np.asarray(self.sizes, dtype=np.float64).ravel()
        if v.size == 0 or v.size != s.size:
            raise InputError(f"{where}: 'values' and 'sizes' need the same length >= 1")
        if not np.all(np.isfinite(v)) or np.any(v < 0):
            raise InputError(f"{where}: field 'values' must be finite and >= 0")
        if not np.all(np.isfinite(s)) or np.any(s <= 0):
            raise InputError(f"{where}: field 'sizes' must be finite and > 0")
        object.__setattr__(self, "values", v)
        object.__setattr__(self, "sizes", s)
        object.__setattr__(
            self, "budget", check_number(where, "budget", self.budget, nonnegative=True)
        )


def tenant_demand(tenant: Tenant, price: float) -> FloatArray:
    """Shares y_x of the tenant's optimal bundle at capacity price ``price``.

    Examples
    --------
    >>> t = Tenant("a", np.array([10.0, 4.0, 1.0]), np.array([1.0, 1.0, 1.0]), budget=5.0)
    >>> tenant_demand(t, 2.0).tolist()   # V > 2: two requests, but $5 buys 2.5 units
    [1.0, 1.0, 0.0]
    >>> tenant_demand(t, 3.0).tolist()   # $5 at $3 a unit buys 1 + 2/3
    [1.0, 0.6666666666666666, 0.0]
    """
    v, s = tenant.values, tenant.sizes
    y = np.zeros(v.size)
    if price <= 0:
        y[v > 0] = 1.0
        return y
    order = np.argsort(-(v / s), kind="stable")
    left = tenant.budget
    for x in order.tolist():
        if v[x] <= price * s[x] or left <= 0:
            break
        pay = price * s[x]
        y[x] = 1.0 if pay <= left else left / pay
        left -= y[x] * pay
    return y


@dataclass(frozen=True, eq=False)
class MarketAllocation:
    """An allocation of capacity to tenants at a price.

    ``shares[k]`` are tenant k's y; ``utility[k]`` = Σ (V − p·s)·y; ``welfare`` = Σ V·y
    (payments are transfers); ``used`` = Σ s·y; ``lp_price`` the LP dual µL of the
    capacity row without budgets (``nan`` for a flat price).
    """

    price: float
    shares: tuple[FloatArray, ...]
    utility: FloatArray
    welfare: float
    used: float
    spend: FloatArray
    lp_price: float

    def as_dict(self, tenants: Sequence[Tenant]) -> dict[str, object]:
        return {
            "price": self.price,
            "lp_price": self.lp_price,
            "welfare": self.welfare,
            "used": self.used,
            "tenants": {
                t.name: {
                    "utility": float(u),
                    "spend": float(sp_),
                    "budget": t.budget,
                    "served": float(y.sum()),
                }
                for t, u, sp_, y in zip(tenants, self.utility, self.spend, self.shares, strict=True)
            },
        }


def _summary(
    tenants: Sequence[Tenant], price: float, shares: Sequence[FloatArray], lp_price: float
) -> MarketAllocation:
    util = np.array(
        [
            float(((t.values - price * t.sizes) * y).sum())
            for t, y in zip(tenants, shares, strict=True)
        ]
    )
    spend = np.array(
        [float((price * t.sizes * y).sum()) for t, y in zip(tenants, shares, strict=True)]
    )
    return MarketAllocation(
        price=price,
        shares=tuple(shares),
        utility=util,
        welfare=float(sum((t.values * y).sum() for t, y in zip(tenants, shares, strict=True))),
        used=float(sum((t.sizes * y).sum() for t, y in zip(tenants, shares, strict=True))),
        spend=spend,
        lp_price=lp_price,
    )


def _check(tenants: Sequence[Tenant], capacity: float) -> float:
    if not tenants:
        raise InputError("market: need at least one tenant")
    names = [t.name for t in tenants]
    if len(set(names)) != len(names):
        raise InputError(f"market: duplicate tenant names {names}")
    return check_number("market", "capacity", capacity, nonnegative=True)


def clear_market(
    tenants: Sequence[Tenant], capacity: float, *, tol: float = 1e-10
) -> MarketAllocation:
    """The clearing price p* and the tenants' demands at it (module docstring).

    Bisection on p of the excess demand D(p) − C; at p* the requests on the margin
    (V/s = p*) are rationed so that D(p*) = C exactly when demand jumps there.

    Examples
    --------
    Two tenants, capacity for two and a half of three unit requests: the price settles
    at the lowest value, 3, whose request is half served (the marginal buyer), and it
    equals the LP dual of the capacity row.

    >>> a = Tenant("a", np.array([10.0, 3.0]), np.ones(2), budget=100.0)
    >>> b = Tenant("b", np.array([6.0]), np.ones(1), budget=100.0)
    >>> m = clear_market([a, b], capacity=2.5)
    >>> round(m.price, 6), [y.round(6).tolist() for y in m.shares], round(m.lp_price, 6)
    (3.0, [[1.0, 0.5], [1.0]], 3.0)
    """
    cap = _check(tenants, capacity)

    def demand(p: float) -> tuple[float, list[FloatArray]]:
        ys = [tenant_demand(t, p) for t in tenants]
        return float(sum((t.sizes * y).sum() for t, y in zip(tenants, ys, strict=True))), ys

    lp = _lp_price(tenants, cap)
    d0, y0 = demand(0.0)
    if d0 <= cap + tol:
        return _summary(tenants, 0.0, y0, lp)
    hi = max(float((t.values / t.sizes).max()) for t in tenants) * (1.0 + 1e-9) + 1e-12
    lo = 0.0
    for _ in range(200):
        mid = 0.5 * (lo + hi)
        if demand(mid)[0] > cap:
            lo = mid
        else:
            hi = mid
        if hi - lo <= tol * max(1.0, hi):
            break
    p = hi
    d_hi, y_hi = demand(p)
    if d_hi < cap - tol:
        # demand jumps at p*: fill the rest of capacity with the marginal requests (those
        # demanded just below p*), pro rata; they are indifferent at p*
        _, y_lo = demand(lo)
        extra = [np.maximum(yl - yh, 0.0) for yl, yh in zip(y_lo, y_hi, strict=True)]
        need = float(sum((t.sizes * e).sum() for t, e in zip(tenants, extra, strict=True)))
        if need > 0:
            frac = min(1.0, (cap - d_hi) / need)
            y_hi = [yh + frac * e for yh, e in zip(y_hi, extra, strict=True)]
    return _summary(tenants, p, y_hi, lp)


def _lp_price(tenants: Sequence[Tenant], capacity: float) -> float:
    """µL of Eq. 3's LP with capacity as the budgeted resource and no tenant budgets."""
    v = np.concatenate([t.values for t in tenants])
    s = np.concatenate([t.sizes for t in tenants])
    batch = TaskBatch.from_arrays(v, np.ones((v.size, 1)), np.zeros((v.size, 1)), s[:, None])
    return float(discover_prices(batch, Budgets(latency=capacity)).mu_latency)


def flat_allocation(
    tenants: Sequence[Tenant], capacity: float, flat_price: float
) -> MarketAllocation:
    """Demand at a flat price per unit of capacity, rationed first come, first served.

    Requests arrive interleaved across tenants in index order (request i of every
    tenant, then i + 1); each gets what it demands at the flat price until capacity
    runs out.
    """
    cap = _check(tenants, capacity)
    p = check_number("market", "flat_price", flat_price, nonnegative=True)
    want = [tenant_demand(t, p) for t in tenants]
    got = [np.zeros_like(w) for w in want]
    left = cap
    longest = max(w.size for w in want)
    for i in range(longest):
        for k, t in enumerate(tenants):
            if i >= want[k].size or want[k][i] <= 0 or left <= 0:
                continue
            take = min(want[k][i], left / t.sizes[i])
            got[k][i] = take
            left -= take * t.sizes[i]
    return _summary(tenants, p, got, float("nan"))


def pareto_slack(tenants: Sequence[Tenant], capacity: float, allocation: MarketAllocation) -> float:
    """Largest total utility gain at ``allocation``'s price that hurts no tenant.

    LP over shares y ∈ [0, 1]: max Σ_k U_k(y) s.t. U_k(y) ≥ U_k(allocation) for every k,
    Σ s·y ≤ C and Σ_{x∈k} p·s·y ≤ B_k. Returns the optimum minus Σ_k U_k(allocation)
    (>= 0 up to solver tolerance; 0 means Pareto-efficient at these prices).

    Examples
    --------
    >>> a = Tenant("a", np.array([10.0, 3.0]), np.ones(2), budget=100.0)
    >>> b = Tenant("b", np.array([6.0]), np.ones(1), budget=100.0)
    >>> m = clear_market([a, b], 2.0)
    >>> abs(pareto_slack([a, b], 2.0, m)) < 1e-7
    True
    """
    cap = _check(tenants, capacity)
    p = allocation.price
    n_k = [t.values.size for t in tenants]
    off = np.concatenate([[0], np.cumsum(n_k)])
    nvar = int(off[-1])
    gain = np.concatenate([t.values - p * t.sizes for t in tenants])
    size = np.concatenate([t.sizes for t in tenants])
    rows: list[int] = []
    cols: list[int] = []
    data: list[float] = []
    b: list[float] = []
    r = 0
    for k in range(len(tenants)):
        idx = np.arange(off[k], off[k + 1])
        # −U_k(y) ≤ −U_k*
        rows += [r] * idx.size
        cols += idx.tolist()
        data += (-gain[idx]).tolist()
        b.append(-float(allocation.utility[k]) + 1e-9)
        r += 1
        # budget
        rows += [r] * idx.size
        cols += idx.tolist()
        data += (p * size[idx]).tolist()
        b.append(tenants[k].budget + 1e-9)
        r += 1
    rows += [r] * nvar
    cols += list(range(nvar))
    data += size.tolist()
    b.append(cap + 1e-9)
    r += 1
    a_ub = sp.csr_matrix((data, (rows, cols)), shape=(r, nvar))
    res = linprog(-gain, A_ub=a_ub, b_ub=np.asarray(b), bounds=(0.0, 1.0), method="highs")
    if res.status != 0:
        raise InputError(f"pareto check: the LP failed ({res.message})")
    return max(float(-res.fun) - float(allocation.utility.sum()), 0.0)


def default_market(seed: int = 0, n: int = 40) -> tuple[list[Tenant], float]:
    """The economy's three tenants competing for one period of cluster capacity.

    Coding (V lognormal, median $20, big requests), chat (V $0.05-ish, small) and
    long-context (V $0.5, large prefill); sizes in replica-seconds, lognormal around
    the serving layer's work of a 1,000/200, 1,155/211 and 8,000/300-token request
    (about 0.15, 0.16 and 1.3 s; assumption for this toy market). Capacity is 60% of
    total demand at a zero price, so the market must ration.

    Examples
    --------
    >>> tenants, cap = default_market(1)
    >>> [t.name for t in tenants], cap > 0
    (['coding', 'chat', 'long-context'], True)
    """
    rng = np.random.default_rng(seed)
    spec = (
        ("coding", 20.0, 1.2, 0.15 * 30, 60.0),
        ("chat", 0.05, 0.8, 0.16, 3.0),
        ("long-context", 0.5, 0.8, 1.3, 8.0),
    )
    tenants = []
    for name, v_med, v_sig, s_mean, budget in spec:
        m = n if name != "coding" else max(n // 4, 1)
        v = v_med * np.exp(v_sig * rng.standard_normal(m))
        s = s_mean * np.exp(0.4 * rng.standard_normal(m))
        tenants.append(Tenant(name, v, s, budget))
    total = sum(float(t.sizes.sum()) for t in tenants)
    return tenants, 0.6 * total
