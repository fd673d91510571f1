"""Screening menus (Eq. 5): let users self-select a (tier, price) instead of routing silently.

Users of type k value quality at V_k (USD per unit of quality) with probability π_k; the
operator offers tiers j of quality q_j at marginal cost c_j. A menu assigns every type a
tier m_k and a price p_k such that

* IC (Eq. 5): ``V_k·q_{m_k} − p_k ≥ V_k·q_{m_k'} − p_k'`` for all k, k';
* IR: ``V_k·q_{m_k} − p_k ≥ 0`` (the outside option is no tier at price 0).

With types sorted by V (single crossing), IC reduces to a non-decreasing quality schedule
with binding IR for the lowest type served and binding downward-adjacent IC:
``p_k = p_{k−1} + V_k·(q_{m_k} − q_{m_{k−1}})``. Then expected revenue is
``Σ_k π_k·(φ_k·q_{m_k} − c_{m_k})`` with the discrete virtual valuation

    φ_k = V_k − (V_{k+1} − V_k)·(1 − F_k)/π_k,

the discrete form of V(θ) − (1 − F(θ))/f(θ)·V′(θ) (Sec. 2, "Information rents"). The
optimal schedule is found exactly by dynamic programming over monotone assignments (this
irons non-monotone φ). ``V_k·q_{m_k} − p_k`` is type k's information rent.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from margin.core.prices import InputError

__all__ = [
    "Menu",
    "MenuItem",
    "Tier",
    "UserType",
    "design_menu",
    "silent_routing",
    "virtual_values",
]


@dataclass(frozen=True, slots=True)
class UserType:
    """A user type: value of quality ``value`` (USD per unit of q), share ``probability``."""

    name: str
    value: float
    probability: float

    def __post_init__(self) -> None:
        if not math.isfinite(self.value) or self.value < 0:
            raise InputError(f"user type '{self.name}': field 'value' must be finite and >= 0")
        if not 0.0 < self.probability <= 1.0:
            raise InputError(f"user type '{self.name}': field 'probability' must be in (0, 1]")


@dataclass(frozen=True, slots=True)
class Tier:
    """A model tier: quality (e.g. success rate) and the operator's marginal cost (USD)."""

    name: str
    quality: float
    cost: float

    def __post_init__(self) -> None:
        if not (math.isfinite(self.quality) and self.quality >= 0):
            raise InputError(f"tier '{self.name}': field 'quality' must be finite and >= 0")
        if not (math.isfinite(self.cost) and self.cost >= 0):
            raise InputError(f"tier '{self.name}': field 'cost' must be finite and >= 0")


@dataclass(frozen=True, slots=True)
class MenuItem:
    """What one type picks: tier (``None`` = stays out), price, and its information rent."""

    user_type: str
    tier: str | None
    quality: float
    cost: float
    price: float
    rent: float
    virtual_value: float


@dataclass(frozen=True)
class Menu:
    """A (tier, price) menu with its expected revenue (profit), welfare and the types."""

    items: tuple[MenuItem, ...]
    types: tuple[UserType, ...]
    objective: str

    @property
    def revenue(self) -> float:
        """Expected operator profit ``Σ π_k·(p_k − c_{m_k})``."""
        return float(sum(t.probability * (i.price - i.cost) for t, i in self._pairs()))

    @property
    def welfare(self) -> float:
        """Expected total surplus ``Σ π_k·(V_k·q_{m_k} − c_{m_k})`` (revenue + rents)."""
        return float(sum(t.probability * (t.value * i.quality - i.cost) for t, i in self._pairs()))

    @property
    def rents(self) -> dict[str, float]:
        return {i.user_type: i.rent for i in self.items}

    def _pairs(self) -> list[tuple[UserType, MenuItem]]:
        return list(zip(self.types, self.items, strict=True))

    def ic_violation(self) -> float:
        """``max_{k,k'} [V_k·q_{k'} − p_{k'}] − [V_k·q_k − p_k]`` (≤ 0 when IC holds)."""
        worst = -math.inf
        for t, own in self._pairs():
            u_own = t.value * own.quality - own.price
            for other in self.items:
                worst = max(worst, t.value * other.quality - other.price - u_own)
        return worst

    def ir_violation(self) -> float:
        """``max_k −(V_k·q_k − p_k)`` (≤ 0 when IR holds)."""
        return max(-(t.value * i.quality - i.price) for t, i in self._pairs())


def _sorted_types(types: Sequence[UserType]) -> list[UserType]:
    if not types:
        raise InputError("menu: at least one user type is required")
    total = sum(t.probability for t in types)
    if not math.isclose(total, 1.0, abs_tol=1e-9):
        raise InputError(f"menu: type probabilities must sum to 1, got {total}")
    if len({t.name for t in types}) != len(types):
        raise InputError("menu: duplicate user type names")
    return sorted(types, key=lambda t: t.value)


def virtual_values(types: Sequence[UserType]) -> list[float]:
    """Discrete virtual valuations φ_k = V_k − (V_{k+1} − V_k)·(1 − F_k)/π_k, types sorted
    by value (the highest type's φ is its value: no distortion at the top).

    Examples
    --------
    >>> ts = [UserType("lo", 1.0, 0.5), UserType("hi", 3.0, 0.5)]
    >>> virtual_values(ts)
    [-1.0, 3.0]
    """
    ts = _sorted_types(types)
    out = []
    above = 1.0
    for k, t in enumerate(ts):
        above -= t.probability
        gap = ts[k + 1].value - t.value if k + 1 < len(ts) else 0.0
        out.append(t.value - gap * max(above, 0.0) / t.probability)
    return out


def design_menu(
    types: Sequence[UserType], tiers: Sequence[Tier], objective: str = "revenue"
) -> Menu:
    """The IC and IR menu maximizing expected ``revenue`` (profit) or ``welfare``.

    Exact: dynamic programming over non-decreasing assignments of quality to types sorted
    by value, scoring each type with ``π_k·(φ_k·q − c)`` (revenue) or ``π_k·(V_k·q − c)``
    (welfare); prices from binding IR at the bottom and binding downward IC (so a welfare
    menu charges the most the efficient schedule allows).

    Examples
    --------
    Two equally likely types (V = 1, 3) and two free tiers (q = 0.5, 1): serving the low
    type costs more in rent than it earns, so the revenue menu excludes it.

    >>> ts = [UserType("lo", 1.0, 0.5), UserType("hi", 3.0, 0.5)]
    >>> tiers = [Tier("small", 0.5, 0.0), Tier("large", 1.0, 0.0)]
    >>> m = design_menu(ts, tiers)
    >>> [(i.tier, i.price, i.rent) for i in m.items], m.revenue
    ([(None, 0.0, 0.0), ('large', 3.0, 0.0)], 1.5)
    >>> w = design_menu(ts, tiers, "welfare")
    >>> [(i.tier, i.price, i.rent) for i in w.items], w.revenue, w.welfare
    ([('large', 1.0, 0.0), ('large', 1.0, 2.0)], 1.0, 2.0)
    """
    if objective not in ("revenue", "welfare"):
        raise InputError(f"menu: objective must be 'revenue' or 'welfare', got {objective!r}")
    ts = _sorted_types(types)
    if len({t.name for t in tiers}) != len(tiers):
        raise InputError("menu: duplicate tier names")
    # options: the outside option, then tiers by quality (a dominated tier — lower or equal
    # quality at a higher or equal cost — never helps, but is harmless to keep)
    opts: list[Tier | None] = [None, *sorted(tiers, key=lambda x: (x.quality, x.cost))]
    q = np.array([0.0] + [x.quality for x in opts[1:] if x is not None])
    c = np.array([0.0] + [x.cost for x in opts[1:] if x is not None])
    phi = virtual_values(ts)
    K, J = len(ts), len(opts)
    weight = np.array(phi if objective == "revenue" else [t.value for t in ts])
    pi = np.array([t.probability for t in ts])
    score = pi[:, None] * (weight[:, None] * q[None, :] - c[None, :])  # (K, J)
    # welfare menus break ties toward revenue; revenue menus toward welfare
    tie = pi[:, None] * (
        (np.array([t.value for t in ts]) if objective == "revenue" else np.array(phi))[:, None]
        * q[None, :]
        - c[None, :]
    )
    # best[k, j]: best total of types 0..k with type k on option j, qualities non-decreasing
    best = np.full((K, J), -np.inf)
    best_tie = np.full((K, J), -np.inf)
    back = np.zeros((K, J), dtype=int)
    best[0], best_tie[0] = score[0], tie[0]
    for k in range(1, K):
        for j in range(J):
            allowed = [i for i in range(J) if q[i] <= q[j]]
            i = max(allowed, key=lambda i: (round(float(best[k - 1, i]), 12), best_tie[k - 1, i]))
            best[k, j] = best[k - 1, i] + score[k, j]
            best_tie[k, j] = best_tie[k - 1, i] + tie[k, j]
            back[k, j] = i
    last = max(range(J), key=lambda j: (round(float(best[K - 1, j]), 12), best_tie[K - 1, j]))
    path = [last]
    for k in range(K - 1, 0, -1):
        path.append(int(back[k, path[-1]]))
    path.reverse()
    prices = []
    prev_q, prev_p = 0.0, 0.0
    for k, j in enumerate(path):
        p = prev_p + ts[k].value * (q[j] - prev_q)
        prices.append(p)
        prev_q, prev_p = float(q[j]), p
    names = [None if o is None else o.name for o in opts]
    items = tuple(
        MenuItem(
            user_type=t.name,
            tier=names[j],
            quality=float(q[j]),
            cost=float(c[j]),
            price=float(p),
            rent=float(t.value * q[j] - p),
            virtual_value=float(f),
        )
        for t, j, p, f in zip(ts, path, prices, phi, strict=True)
    )
    return Menu(items=items, types=tuple(ts), objective=objective)


def silent_routing(types: Sequence[UserType], tiers: Sequence[Tier]) -> tuple[float, float]:
    """Revenue and welfare of a silent router that cannot screen: one tier at one posted
    price for everyone (the best such single offer for revenue); types that value it below
    the price stay out. Returns ``(revenue, welfare)``.

    Examples
    --------
    >>> ts = [UserType("lo", 1.0, 0.5), UserType("hi", 3.0, 0.5)]
    >>> silent_routing(ts, [Tier("small", 0.5, 0.0), Tier("large", 1.0, 0.0)])
    (1.5, 1.5)
    """
    ts = _sorted_types(types)
    best_rev, best_w = 0.0, 0.0
    for tier in tiers:
        for t in ts:
            price = t.value * tier.quality
            buyers = [u for u in ts if u.value * tier.quality >= price - 1e-12]
            share = sum(u.probability for u in buyers)
            rev = share * (price - tier.cost)
            w = sum(u.probability * (u.value * tier.quality - tier.cost) for u in buyers)
            if rev > best_rev + 1e-12 or (abs(rev - best_rev) <= 1e-12 and w > best_w):
                best_rev, best_w = rev, w
    return best_rev, best_w
