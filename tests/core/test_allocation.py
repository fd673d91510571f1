"""Eq. 1 / Eq. 2 / crossover: the worked example of Sec. 2 and the allocation invariants."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st
from hypothesis.extra import numpy as hnp

from margin.core import (
    NOT_SERVED,
    InputError,
    Option,
    PriceVector,
    allocate,
    allocate_batch,
    crossover_value,
    equimarginal_residuals,
    surplus_matrix,
)

CHEAP = Option("cheap", quality=0.7, cost=1.0)
FRONTIER = Option("frontier", quality=0.9, cost=5.0)


def test_worked_example_surpluses() -> None:
    low = allocate(PriceVector(value=10.0), [CHEAP, FRONTIER])
    high = allocate(PriceVector(value=100.0), [CHEAP, FRONTIER])
    assert low.choice == "cheap" and high.choice == "frontier"
    assert low.surplus == pytest.approx({"cheap": 6.0, "frontier": 4.0})
    assert high.surplus == pytest.approx({"cheap": 69.0, "frontier": 85.0})


def test_worked_example_crossover_exact() -> None:
    assert crossover_value(CHEAP, FRONTIER) == 20.0
    risky_cheap = Option("cheap", 0.7, 1.0, risk=0.05)
    safe_frontier = Option("frontier", 0.9, 5.0, risk=0.01)
    v_star = crossover_value(risky_cheap, safe_frontier, PriceVector(value=0.0, risk_price=50.0))
    assert v_star == 10.0
    # The crossover really is where the choice flips under Eq. 1.
    prices = PriceVector(value=0.0, risk_price=50.0)
    assert allocate(prices.with_value(9.9), [risky_cheap, safe_frontier]).choice == "cheap"
    assert allocate(prices.with_value(10.1), [risky_cheap, safe_frontier]).choice == "frontier"


def test_crossover_equal_quality() -> None:
    assert crossover_value(CHEAP, Option("same-q", 0.7, 2.0)) == math.inf
    assert crossover_value(CHEAP, Option("same-q", 0.7, 0.5)) == -math.inf


def test_batch_matches_scalar_rule() -> None:
    rng = np.random.default_rng(0)
    n, m = 200, 5
    v = rng.lognormal(2, 1, n)
    q, c, lat, r = rng.random((n, m)), rng.random((n, m)), rng.random((n, m)), rng.random((n, m))
    lam, rho = 0.3, 2.0
    batch = allocate_batch(v, q, c, lat, r, latency_price=lam, risk_price=rho)
    for k in range(n):
        opts = [Option(f"o{i}", q[k, i], c[k, i], lat[k, i], r[k, i]) for i in range(m)]
        single = allocate(PriceVector(v[k], lam, rho), opts)
        assert single.choice == f"o{batch.choice[k]}"
        assert batch.best[k] == pytest.approx(single.best_surplus)


def test_per_request_prices_and_irreversible_term() -> None:
    s = surplus_matrix(
        [1.0, 1.0],
        [[1.0, 1.0]],
        [[0.0, 0.0]],
        irreversible_risk=[[0.0, 1.0]],
        irreversible_risk_price=np.array([0.0, 5.0]),
    )
    assert s.tolist() == [[1.0, 1.0], [1.0, -4.0]]


def test_outside_option() -> None:
    a = allocate_batch([1.0, 100.0], [0.5, 0.9], [2.0, 5.0], outside_option=0.0)
    assert a.choice.tolist() == [NOT_SERVED, 1]
    assert allocate(PriceVector(1.0), [CHEAP], outside_option=0.0).choice is None


def test_equimarginal_residuals_active_set() -> None:
    r = equimarginal_residuals(
        PriceVector(value=2.0, latency_price=1.0),
        marginal_quality=[1.0, 0.5, 3.0],
        cost=[1.0, 1.0, 1.0],
        latency=[1.0, 0.0, 0.0],
        allocation=[1.0, 0.0, 2.0],
    )
    assert r[0] == 0.0 and math.isnan(r[1]) and r[2] == 5.0


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"value": -1.0}, "value"),
        ({"value": 1.0, "latency_price": float("nan")}, "latency_price"),
        ({"value": 1.0, "risk_price": -0.5}, "risk_price"),
        ({"value": "ten"}, "value"),
    ],
)
def test_price_vector_validation_names_field(kwargs: dict[str, object], field: str) -> None:
    with pytest.raises(InputError, match=f"'{field}'"):
        PriceVector(**kwargs)  # type: ignore[arg-type]


def test_option_from_dict_errors_name_field() -> None:
    with pytest.raises(InputError, match="missing field 'cost'"):
        Option.from_dict({"name": "a", "quality": 1.0}, where="options[0]")
    with pytest.raises(InputError, match=r"options\[1\].*'latency'"):
        Option.from_dict({"name": "a", "quality": 1, "cost": 1, "latency": -2}, where="options[1]")
    with pytest.raises(InputError, match="duplicate"):
        allocate(PriceVector(1.0), [CHEAP, CHEAP])


def test_shape_errors() -> None:
    with pytest.raises(InputError, match="cost"):
        allocate_batch([1.0, 2.0], np.ones((2, 3)), np.ones((3, 2)))
    with pytest.raises(InputError, match="value"):
        allocate_batch([1.0, 2.0, 3.0], np.ones((2, 3)), np.ones((2, 3)))


money = st.floats(0.0, 100.0, allow_nan=False)
matrix = hnp.arrays(np.float64, (6, 4), elements=st.floats(0.0, 1.0))


@settings(max_examples=200, deadline=None)
@given(
    v=hnp.arrays(np.float64, 6, elements=st.floats(0.0, 1000.0)),
    q=matrix,
    c=hnp.arrays(np.float64, (6, 4), elements=money),
    r=matrix,
    rho=st.floats(0.0, 50.0),
    i=st.integers(0, 3),
    bump=st.floats(0.01, 100.0),
)
def test_raising_cost_never_makes_option_more_likely(
    v: np.ndarray, q: np.ndarray, c: np.ndarray, r: np.ndarray, rho: float, i: int, bump: float
) -> None:
    before = allocate_batch(v, q, c, risk=r, risk_price=rho).choice
    c2 = c.copy()
    c2[:, i] += bump
    after = allocate_batch(v, q, c2, risk=r, risk_price=rho).choice
    # Whoever did not choose i before does not choose it now.
    assert not np.any((before != i) & (after == i))


@settings(max_examples=200, deadline=None)
@given(
    v=hnp.arrays(np.float64, 6, elements=st.floats(0.0, 1000.0)),
    q=matrix,
    c=hnp.arrays(np.float64, (6, 4), elements=money),
    lat=matrix,
    lam=st.floats(0.0, 10.0),
    k=st.sampled_from([0.5, 2.0, 4.0, 10.0]),
)
def test_scaling_money_leaves_choice_unchanged(
    v: np.ndarray, q: np.ndarray, c: np.ndarray, lat: np.ndarray, lam: float, k: float
) -> None:
    # V, ΔC and λ are all in USD: measuring money in another unit changes nothing.
    # k is a power of two (exact in binary) or a value whose ties we skip.
    base = allocate_batch(v, q, c, lat, latency_price=lam)
    scaled = allocate_batch(v * k, q, c * k, lat, latency_price=lam * k)
    s = np.sort(base.surplus, axis=1)
    clear = (s[:, -1] - s[:, -2]) > 1e-9 * (1.0 + np.abs(s[:, -1]))
    assert np.array_equal(base.choice[clear], scaled.choice[clear])


@settings(max_examples=100, deadline=None)
@given(
    qc=st.floats(0.0, 0.95),
    dq=st.floats(0.01, 0.5),
    cc=st.floats(0.0, 10.0),
    dc=st.floats(0.0, 10.0),
    rho=st.floats(0.0, 100.0),
    rc=st.floats(0.0, 0.2),
    rf=st.floats(0.0, 0.2),
)
def test_crossover_separates_choices(
    qc: float, dq: float, cc: float, dc: float, rho: float, rc: float, rf: float
) -> None:
    low, high = Option("low", qc, cc, risk=rc), Option("high", qc + dq, cc + dc, risk=rf)
    prices = PriceVector(0.0, risk_price=rho)
    v_star = crossover_value(low, high, prices)
    above = prices.with_value(max(v_star, 0.0) * 1.01 + 1.0)
    assert allocate(above, [low, high]).choice == "high"
    if v_star > 1e-6:
        below = prices.with_value(v_star * 0.99)
        assert allocate(below, [low, high]).choice == "low"
