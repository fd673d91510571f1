"""Eq. 6/7: the optimal-autonomy solver and its comparative statics."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from margin.agent.autonomy import AutonomyModel, calibrate_swe_pro
from margin.core.prices import InputError, PriceVector

M = AutonomyModel()
rho = st.floats(0.0, 50.0)
spend = st.floats(0.0, 5.0)


@given(r1=rho, r2=rho, t=spend, v=st.floats(1.0, 1000.0))
@settings(max_examples=200, deadline=None)
def test_autonomy_falls_as_rho_rises(r1: float, r2: float, t: float, v: float) -> None:
    lo, hi = sorted((r1, r2))
    a_lo = M.optimal_autonomy(PriceVector(v, risk_price=lo), t)
    a_hi = M.optimal_autonomy(PriceVector(v, risk_price=hi), t)
    assert float(a_hi) <= float(a_lo) + 1e-9


@given(r1=rho, r2=rho, v=st.floats(10.0, 500.0))
@settings(max_examples=60, deadline=None)
def test_joint_optimum_autonomy_falls_as_rho_or_rho_irr_rises(
    r1: float, r2: float, v: float
) -> None:
    lo, hi = sorted((r1, r2))
    a = M.solve(PriceVector(v, risk_price=lo)).autonomy
    b = M.solve(PriceVector(v, risk_price=hi)).autonomy
    c = M.solve(PriceVector(v, risk_price=lo, irreversible_risk_price=hi)).autonomy
    assert b <= a + 1e-6 and c <= a + 1e-6


@given(v1=st.floats(1.0, 1000.0), v2=st.floats(1.0, 1000.0), t=spend, r=st.floats(0.1, 20.0))
@settings(max_examples=150, deadline=None)
def test_autonomy_rises_with_value_and_falls_with_loss(
    v1: float, v2: float, t: float, r: float
) -> None:
    lo, hi = sorted((v1, v2))
    assert (
        float(M.optimal_autonomy(PriceVector(hi, risk_price=r), t))
        >= float(M.optimal_autonomy(PriceVector(lo, risk_price=r), t)) - 1e-9
    )
    big = M.with_params(loss=M.loss * 3)
    assert (
        float(big.optimal_autonomy(PriceVector(lo, risk_price=r), t))
        <= float(M.optimal_autonomy(PriceVector(lo, risk_price=r), t)) + 1e-9
    )


@pytest.mark.parametrize("r", [0.0, 1.0, 2.0, 5.0, 20.0])
def test_solve_matches_brute_force_and_eq7(r: float) -> None:
    prices = PriceVector(100.0, risk_price=r, irreversible_risk_price=2.0)
    sol = M.solve(prices)
    a, t = np.meshgrid(np.linspace(0, 1, 401), np.linspace(0, 5, 501))
    brute = M.utility(prices, a, t).max()
    assert sol.utility >= brute - 1e-3
    if 0 < sol.autonomy < 1:
        assert abs(sol.foc_residual) < 1e-6  # Eq. 7 holds at an interior a*
    elif sol.autonomy == 1.0:
        assert sol.foc_residual >= 0


def test_invalid_models() -> None:
    with pytest.raises(InputError, match="gamma"):
        AutonomyModel(gamma=1.0)
    with pytest.raises(InputError, match="p_max"):
        AutonomyModel(p_max=1.5)


def test_calibration_reproduces_defaults(shared_data) -> None:  # type: ignore[no-untyped-def]
    path = shared_data("agent/swebench_pro_sweagent_gpt5_sonnet45_per_instance.csv")
    m = calibrate_swe_pro(path, "gpt5")
    assert m.p_max == pytest.approx(AutonomyModel().p_max, abs=2e-3)
    assert m.tau == pytest.approx(AutonomyModel().tau, abs=2e-3)
    assert m.eps0 == pytest.approx(AutonomyModel().eps0, abs=1e-3)
    claude = calibrate_swe_pro(path, "claude")
    assert claude.p_max > m.p_max  # Sonnet 4.5 resolves more (43.7% vs 36.3%)
    with pytest.raises(InputError, match="fewer than 10 rows"):
        calibrate_swe_pro(path, "no-such-model")
