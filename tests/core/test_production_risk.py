"""Cobb-Douglas closed form (Sec. 2) and the risk measures (Knightian caveat)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st
from hypothesis.extra import numpy as hnp

from margin.core import (
    CobbDouglas,
    CVaR,
    Expectation,
    InputError,
    Option,
    PriceVector,
    RiskPolicy,
    WorstCase,
    bernoulli_loss,
    cobb_douglas_allocation,
    cobb_douglas_numeric,
    equimarginal_residuals,
    make_risk_measure,
)

alphas = hnp.arrays(np.float64, 4, elements=st.floats(0.05, 2.0))
prices = hnp.arrays(np.float64, 4, elements=st.floats(0.05, 20.0))


@settings(max_examples=40, deadline=None)
@given(alpha=alphas, price=prices, budget=st.floats(1.0, 1e4))
def test_closed_form_matches_numeric_optimizer(
    alpha: np.ndarray, price: np.ndarray, budget: float
) -> None:
    closed = cobb_douglas_allocation(alpha, price, budget)
    numeric = cobb_douglas_numeric(alpha, price, budget)
    np.testing.assert_allclose(numeric, closed, rtol=1e-4)
    assert float(price @ closed) == pytest.approx(budget)


def test_irrelevant_use_gets_zero_tokens_at_any_price() -> None:
    for p0 in (0.01, 1.0, 100.0):
        closed = cobb_douglas_allocation([0.0, 0.5, 0.5], [p0, 1.0, 2.0], 10.0)
        assert closed[0] == 0.0
        assert cobb_douglas_numeric([0.0, 0.5, 0.5], [p0, 1.0, 2.0], 10.0)[0] < 1e-6


def test_full_shadow_price_squeezes_risky_use() -> None:
    opts = [Option("read", 0, 1.0, latency=0.1), Option("edit", 0, 1.0, risk=0.02)]
    budget = 100.0
    t_calm = cobb_douglas_allocation(
        [0.5, 0.5], [o.full_price(PriceVector(1.0)) for o in opts], budget
    )
    risky = PriceVector(1.0, latency_price=1.0, risk_price=50.0)
    t_risky = cobb_douglas_allocation([0.5, 0.5], [o.full_price(risky) for o in opts], budget)
    # p_edit rises from 1 to 2: its tokens halve; p_read rises 1 -> 1.1.
    assert t_risky[1] == pytest.approx(t_calm[1] / 2)
    assert t_risky[0] == pytest.approx(t_calm[0] / 1.1)


def test_closed_form_satisfies_equimarginal_condition() -> None:
    # At t*, V·∂Q/∂t_i / p_i is the same for every active use (the budget's shadow value).
    f = CobbDouglas(scale=3.0, alpha=(0.2, 0.3, 0.5))
    p = np.array([1.0, 2.0, 4.0])
    t = f.optimal(p, 50.0)
    mp = f.marginal_products(t)
    ratio = mp / p
    np.testing.assert_allclose(ratio, ratio[0])
    # With the per-token price scaled by that shadow value, Eq. 2 residuals vanish.
    mu = ratio[0]
    r = equimarginal_residuals(PriceVector(value=1.0), mp, mu * p, allocation=t)
    np.testing.assert_allclose(r, 0.0, atol=1e-12)


def test_complements_cannot_be_cut_to_zero() -> None:
    f = CobbDouglas(scale=1.0, alpha=(0.25, 0.25, 0.25, 0.25))
    assert f([10.0, 10.0, 10.0, 0.0]) == 0.0
    assert f([10.0, 10.0, 10.0, 1.0]) > 0.0


def test_cobb_douglas_validation() -> None:
    with pytest.raises(InputError, match="price"):
        cobb_douglas_allocation([1.0], [0.0], 1.0)
    with pytest.raises(InputError, match="alpha"):
        cobb_douglas_allocation([0.0, 0.0], [1.0, 1.0], 1.0)


def test_risk_measures_on_two_point_loss() -> None:
    losses, probs = bernoulli_loss(0.01, 1000.0)
    assert Expectation().measure(losses, probs) == pytest.approx(10.0)
    assert CVaR(0.95).measure(losses, probs) == pytest.approx(200.0)
    assert CVaR(0.995).measure(losses, probs) == pytest.approx(1000.0)
    assert WorstCase().measure(losses, probs) == 1000.0
    assert WorstCase(tv_radius=0.02).measure(losses, probs) == pytest.approx(30.0)
    assert WorstCase(distributions=((0.9, 0.1), (0.5, 0.5))).measure(losses) == 500.0


dist = st.integers(2, 8).flatmap(
    lambda n: st.tuples(
        hnp.arrays(np.float64, n, elements=st.floats(0.0, 1e3)),
        hnp.arrays(np.float64, n, elements=st.floats(0.01, 1.0)),
    )
)


@settings(max_examples=200, deadline=None)
@given(d=dist, lo=st.floats(0.0, 0.98), hi=st.floats(0.0, 0.98), r=st.floats(0.0, 1.0))
def test_coherent_ordering(
    d: tuple[np.ndarray, np.ndarray], lo: float, hi: float, r: float
) -> None:
    losses, w = d
    p = w / w.sum()
    lo, hi = min(lo, hi), max(lo, hi)
    e = Expectation().measure(losses, p)
    tol = 1e-9 * (1 + losses.max())
    assert CVaR(0.0).measure(losses, p) == pytest.approx(e, abs=tol)
    # CVaR is non-decreasing in its level and bounded by the worst outcome.
    assert e - tol <= CVaR(lo).measure(losses, p) <= CVaR(hi).measure(losses, p) + tol
    assert CVaR(hi).measure(losses, p) <= losses.max() + tol
    assert e - tol <= WorstCase(tv_radius=r).measure(losses, p) <= losses.max() + tol


def test_risk_policy_selects_per_class_and_parses() -> None:
    policy = RiskPolicy.from_dict(
        {"default": "expectation", "per_class": {"deploy": {"measure": "cvar", "level": 0.99}}}
    )
    losses, probs = bernoulli_loss(0.001, 10_000.0)
    assert policy.measure("read", losses, probs) == pytest.approx(10.0)
    assert policy.measure("deploy", losses, probs) == pytest.approx(1000.0)
    with pytest.raises(InputError, match="unknown 'var'"):
        make_risk_measure("var")
    with pytest.raises(InputError, match="level"):
        CVaR(1.0)
    with pytest.raises(InputError, match="sum to 1"):
        Expectation().measure([1.0, 2.0], [0.5, 0.6])
