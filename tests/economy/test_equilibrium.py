"""Multi-tenant equilibrium: clearing prices, the Pareto check, flat pricing."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from margin.core.prices import InputError
from margin.economy import (
    Tenant,
    clear_market,
    default_market,
    flat_allocation,
    pareto_slack,
    tenant_demand,
)


def _market(seed: int, budgets: float | None) -> tuple[list[Tenant], float]:
    rng = np.random.default_rng(seed)
    tenants = []
    for k in range(3):
        m = int(rng.integers(2, 7))
        v = rng.lognormal(0.0, 1.0, m)
        s = rng.lognormal(0.0, 0.5, m)
        b = 1e9 if budgets is None else budgets * float(rng.uniform(0.2, 1.0))
        tenants.append(Tenant(f"t{k}", v, s, b))
    total = sum(float(t.sizes.sum()) for t in tenants)
    return tenants, float(rng.uniform(0.2, 0.9)) * total


@settings(max_examples=40, deadline=None)
@given(st.integers(0, 10_000), st.sampled_from([None, 0.5, 2.0]))
def test_clearing_conserves_capacity_and_is_pareto_efficient(seed, budgets):
    tenants, cap = _market(seed, budgets)
    m = clear_market(tenants, cap)
    assert m.used <= cap * (1 + 1e-7) + 1e-9
    assert np.all(m.spend <= np.array([t.budget for t in tenants]) * (1 + 1e-7) + 1e-9)
    if m.price > 0 and budgets is None:
        assert m.used == pytest.approx(cap, rel=1e-6)  # complementary slackness
    assert pareto_slack(tenants, cap, m) <= 1e-6 * max(1.0, float(np.abs(m.utility).sum()))


@settings(max_examples=40, deadline=None)
@given(st.integers(0, 10_000))
def test_without_budgets_the_price_is_the_lp_dual_and_welfare_is_maximal(seed):
    tenants, cap = _market(seed, None)
    m = clear_market(tenants, cap)
    # the LP dual is unique when one request is split at the margin
    split = any(np.any((y > 1e-9) & (y < 1 - 1e-9)) for y in m.shares)
    if split:
        assert m.price == pytest.approx(m.lp_price, rel=1e-6, abs=1e-9)
    # first welfare theorem: no flat price does better, rationed first come first served
    for p in (0.0, 0.5 * m.price, m.price):
        assert flat_allocation(tenants, cap, p).welfare <= m.welfare + 1e-7


@settings(max_examples=30, deadline=None)
@given(st.integers(0, 10_000), st.floats(0.05, 0.95))
def test_price_rises_as_capacity_falls(seed, shrink):
    tenants, cap = _market(seed, 1.0)
    assert clear_market(tenants, cap * shrink).price >= clear_market(tenants, cap).price - 1e-9


@settings(max_examples=40, deadline=None)
@given(st.integers(0, 10_000), st.floats(0.0, 5.0), st.floats(0.0, 5.0))
def test_demand_falls_with_price(seed, p1, p2):
    tenants, _ = _market(seed, 1.0)
    lo, hi = sorted((p1, p2))
    for t in tenants:
        assert (t.sizes * tenant_demand(t, hi)).sum() <= (
            t.sizes * tenant_demand(t, lo)
        ).sum() + 1e-9


def test_default_market_flat_pricing_is_not_pareto_efficient():
    tenants, cap = default_market(0)
    eq = clear_market(tenants, cap)
    flat = flat_allocation(tenants, cap, 0.01)
    assert eq.price > 0.01
    assert pareto_slack(tenants, cap, eq) < 1e-6
    assert pareto_slack(tenants, cap, flat) > 1.0
    assert eq.welfare > flat.welfare
    d = eq.as_dict(tenants)
    assert set(d["tenants"]) == {"coding", "chat", "long-context"}


def test_bad_markets():
    with pytest.raises(InputError, match="sizes"):
        Tenant("a", np.array([1.0]), np.array([0.0]), 1.0)
    with pytest.raises(InputError, match="same length"):
        Tenant("a", np.array([1.0, 2.0]), np.array([1.0]), 1.0)
    t = Tenant("a", np.array([1.0]), np.array([1.0]), 1.0)
    with pytest.raises(InputError, match="duplicate"):
        clear_market([t, t], 1.0)
    with pytest.raises(InputError, match="capacity"):
        clear_market([t], -1.0)
