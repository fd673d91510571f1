"""Eq. 8 team production, the equimarginal split and the marginal step controller."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from margin.agent.controller import (
    PHASES,
    EpisodeModel,
    EpisodeState,
    MarginalController,
    TeamProduction,
    equimarginal_split,
    verifier_budget,
)
from margin.core.prices import InputError, PriceVector

F = TeamProduction()
steps = st.lists(st.floats(0.0, 200.0), min_size=4, max_size=4).map(np.array)


@given(t=steps, i=st.integers(0, 3), j=st.integers(0, 3))
@settings(max_examples=200, deadline=None)
def test_inputs_are_complements(t: np.ndarray, i: int, j: int) -> None:
    """∂²z/∂T_i∂T_j > 0 for i ≠ j: more reading raises the marginal product of editing."""
    if i == j:
        return
    bumped = t.copy()
    bumped[j] += 5.0
    assert F.marginal_products(bumped)[i] > F.marginal_products(t)[i]


@given(t=steps)
@settings(max_examples=100, deadline=None)
def test_marginal_products_match_finite_differences(t: np.ndarray) -> None:
    h = 1e-6
    fd = [(F.index(t + h * e) - F.index(t - h * e)) / (2 * h) for e in np.eye(4)]
    assert np.allclose(F.marginal_products(t), fd, rtol=1e-5)


@given(budget=st.floats(0.0, 500.0), prices=st.lists(st.floats(0.2, 5.0), min_size=4, max_size=4))
@settings(max_examples=150, deadline=None)
def test_equimarginal_split(budget: float, prices: list[float]) -> None:
    p = np.array(prices)
    t = equimarginal_split(budget, F, p)
    assert np.all(t >= 0) and np.isclose(float(p @ t), budget, rtol=1e-9, atol=1e-9)
    active = t > 1e-9
    mp_per_usd = F.marginal_products(t) / p
    if active.sum() >= 2:  # Eq. 2/8: equal marginal product per USD across active phases
        assert np.allclose(mp_per_usd[active], mp_per_usd[active][0], rtol=1e-6)
    if (~active).any() and active.any():  # an inactive phase is not worth its price
        assert np.all(mp_per_usd[~active] <= mp_per_usd[active].max() * (1 + 1e-9))


def test_equimarginal_beats_other_splits() -> None:
    rng = np.random.default_rng(0)
    best = F.index(equimarginal_split(60.0, F))
    for _ in range(200):
        w = rng.dirichlet(np.ones(4)) * 60.0
        assert F.index(w) <= best + 1e-9


def test_controller_first_steps_and_stop() -> None:
    c = MarginalController()
    prices = PriceVector(
        value=100.0, latency_price=0.001, risk_price=1.0, irreversible_risk_price=2.0
    )
    state = EpisodeState()
    trace = []
    for _ in range(400):
        d = c.next_step(state, prices, loss=50.0, irreversible_share=0.2)
        trace.append(d.step)
        if d.step in ("stop", "abstain"):
            break
        if d.step == "ask":
            state = EpisodeState(state.steps, True)
        else:
            state = state.spend(PHASES.index(d.step))
    assert trace[-1] == "stop"
    counts = {p: trace.count(p) for p in PHASES}
    assert all(counts[p] > 0 for p in PHASES)  # complements: nothing cut to zero
    assert counts["verify"] >= 5  # priced risk buys tests


def test_controller_abstains_when_value_is_tiny_and_risk_priced() -> None:
    c = MarginalController()
    d = c.next_step(EpisodeState(), PriceVector(value=0.5, risk_price=2.0), loss=300.0)
    assert d.step == "abstain" and d.surplus["stop"] < 0


def test_controller_asks_before_submitting_a_risky_patch() -> None:
    state = EpisodeState((40.0, 15.0, 30.0, 2.0))  # plenty of work, almost no tests
    costly_tests = EpisodeModel(review_usd=1.0, review_seconds=60.0, step_cost=50.0)
    c = MarginalController(model=costly_tests)
    d = c.next_step(state, PriceVector(200.0, risk_price=2.0), loss=100.0)
    assert d.surplus["stop"] < 0 < d.surplus["ask"]  # submitting unreviewed does not pay
    assert d.step == "ask"
    after = c.next_step(EpisodeState(state.steps, True), PriceVector(200.0, risk_price=2.0), 100.0)
    assert after.step == "stop" and after.surplus["stop"] > 0


@given(r1=st.floats(0.0, 20.0), r2=st.floats(0.0, 20.0))
@settings(max_examples=40, deadline=None)
def test_verifier_budget_rises_with_rho(r1: float, r2: float) -> None:
    lo, hi = sorted((r1, r2))
    a = verifier_budget(PriceVector(50.0, risk_price=lo), loss=100.0)
    b = verifier_budget(PriceVector(50.0, risk_price=hi), loss=100.0)
    assert b >= a


def test_invalid_inputs() -> None:
    with pytest.raises(InputError):
        TeamProduction(alpha=(0.5, 0.5, 0.0, 0.0))
    with pytest.raises(InputError):
        EpisodeModel(p_sat=0.0)
    with pytest.raises(InputError):
        equimarginal_split(-1.0)
    with pytest.raises(InputError):
        MarginalController().next_step(
            EpisodeState(), PriceVector(1.0), 1.0, irreversible_share=2.0
        )
