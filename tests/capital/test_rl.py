from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from margin.capital.rl import (
    FIXED_RATIOS,
    CapabilityModel,
    CESGain,
    CobbDouglasGain,
    admit_rollouts,
    allocate_investment,
    budget_report,
    calibrate_staleness,
    efficient_frontier,
    group_marginal_value,
    model_from_config,
    rl_asset,
    simulate_capability,
    simulate_staleness,
    staleness_threshold,
    tokens_to_reach,
    verifier_cut_effect,
    zero_advantage_filter,
)
from margin.core.prices import InputError
from margin.core.production import cobb_douglas_allocation
from margin.diagnose import diagnose
from margin.ledger.records import LedgerRecord

alphas = st.floats(0.05, 0.3)
prices = st.floats(0.1, 10.0)


@settings(max_examples=30, deadline=None)
@given(
    a=st.tuples(alphas, alphas, alphas), k=st.tuples(prices, prices, prices), b=st.floats(1.0, 1e4)
)
def test_allocator_equimarginal_and_closed_form(
    a: tuple[float, float, float], k: tuple[float, float, float], b: float
) -> None:
    g = CobbDouglasGain(1.0, a)
    alloc = allocate_investment(g, k, b)
    x = np.array(list(alloc.tokens.values()))
    assert float(np.dot(x, k)) == pytest.approx(b, rel=1e-6)
    mg = np.array(list(alloc.marginal_gain_per_token.values()))
    assert mg.max() / mg.min() == pytest.approx(1.0, abs=1e-4)  # ∂g/∂x_i / κ_i equal
    np.testing.assert_allclose(x, cobb_douglas_allocation(a, k, b), rtol=1e-4)


@settings(max_examples=20, deadline=None)
@given(
    k=st.tuples(prices, prices, prices), rho=st.floats(-3.0, 0.8).filter(lambda r: abs(r) > 0.05)
)
def test_ces_allocator_equimarginal(k: tuple[float, float, float], rho: float) -> None:
    g = CESGain(1.0, (0.5, 0.3, 0.2), rho=rho, returns=0.7)
    alloc = allocate_investment(g, k, 100.0)
    mg = np.array(list(alloc.marginal_gain_per_token.values()))
    assert mg.max() / mg.min() == pytest.approx(1.0, abs=1e-3)
    # moving 5% of the verifier budget to rollouts or updates (same spend) does not help
    x = np.array(list(alloc.tokens.values()))
    moved = 0.05 * x[1] * k[1]
    for j in (0, 2):
        y = x.copy()
        y[1] -= moved / k[1]
        y[j] += moved / k[j]
        assert g.gain(y) <= alloc.gain + 1e-9


def test_bellman_optimum_matches_cobb_douglas_closed_form() -> None:
    m = CapabilityModel(CobbDouglasGain(2.0, (0.3, 0.1, 0.2)), (1.0, 2.0, 1.5), 0.05, 0.95)
    x = np.array(list(m.optimal_spend().tokens.values()))
    q = m.discount * m.shadow_value
    a, k, nu = np.array([0.3, 0.1, 0.2]), np.array([1.0, 2.0, 1.5]), 0.6
    closed = a / k * (q * 2.0 * np.prod((a / k) ** a)) ** (1 / (1 - nu))
    np.testing.assert_allclose(x, closed, rtol=1e-5)
    # q·∂g/∂x_i = κ_i at the optimum (Eq. 12 first-order condition)
    np.testing.assert_allclose(q * m.technology.gradient(x), k, rtol=1e-5)


def test_marginal_allocator_reaches_capability_with_fewer_tokens() -> None:
    m = CapabilityModel()
    paths = {p: simulate_capability(m, p, 100.0, 300) for p in ["marginal", *FIXED_RATIOS]}
    target = 0.9 * paths["marginal"][-1]
    need = {p: tokens_to_reach(a, target, 100.0) for p, a in paths.items()}
    for p in FIXED_RATIOS:
        assert need["marginal"] < need[p]
    assert np.all(np.diff(paths["marginal"]) >= 0)
    assert paths["marginal"][-1] == pytest.approx(
        m.technology.gain(list(allocate_investment(m.technology, m.kappa, 100.0).tokens.values()))
        / m.depreciation,
        rel=0.01,
    )


def test_stale_rl_flag_in_ledger() -> None:
    m = CapabilityModel(depreciation=0.2)
    sink: list[LedgerRecord] = []
    simulate_capability(m, "fixed-equal", 10.0, 5, initial=1000.0, sink=sink)
    assert len(sink) == 5 and all(r.layer == "capital" for r in sink)
    assert sink[0].attributes["stale_rl"]  # δA = 200 far exceeds g
    with pytest.raises(InputError, match="unknown RL budget policy"):
        simulate_capability(m, "nope", 10.0, 5)


@settings(max_examples=40, deadline=None)
@given(
    w1=st.floats(0.01, 2.0), w2=st.floats(0.01, 2.0), v=st.floats(1.0, 10.0), c=st.floats(0.1, 1.0)
)
def test_more_drift_drops_rollouts_earlier(w1: float, w2: float, v: float, c: float) -> None:
    lo, hi = sorted((w1, w2))
    assert staleness_threshold(hi, v, c) <= staleness_threshold(lo, v, c)
    lags = np.arange(0, 40)
    keep_lo, keep_hi = admit_rollouts(lags, lo, v, c), admit_rollouts(lags, hi, v, c)
    assert np.all(keep_hi <= keep_lo)  # everything kept under more drift is kept under less
    first_drop_hi = np.argmin(keep_hi) if not keep_hi.all() else 40
    first_drop_lo = np.argmin(keep_lo) if not keep_lo.all() else 40
    assert first_drop_hi <= first_drop_lo


def test_admission_records_stale_rollouts() -> None:
    sink: list[LedgerRecord] = []
    keep = admit_rollouts([0, 1, 10], 0.5, 1.0, 0.3, sink=sink)
    assert keep.tolist() == [True, True, False]
    assert [r.attributes["stale_rollout"] for r in sink] == [False, False, True]
    assert sink[2].choice is None
    for r, ok in zip(sink, keep.tolist(), strict=True):  # admit ⟺ gain ≥ δ·A
        assert (r.attributes["gain"] >= r.attributes["depreciation"]) == ok
    assert not [f for f in diagnose(sink) if f.count]  # the rule admits nothing stale
    forced = [dataclasses.replace(sink[2], choice="admit")]  # a stale rollout trained on
    (finding,) = [f for f in diagnose(forced) if f.count]
    assert finding.mode == "stale-rollouts"
    assert finding.loss == pytest.approx((1.0 - math.exp(-5.0)) - (1.0 - 0.3))  # δ·A − g


def test_staleness_rule_dominates_best_fixed_eta() -> None:
    out = simulate_staleness([0.02, 0.05, 0.1, 0.2, 0.4, 0.8, 1.6], [0, 1, 2, 4, 8, 16, 32])
    assert out["rule_dominates"]
    for eta, vals in out["fixed"].items():
        for r, f in zip(out["rule"], vals, strict=True):
            assert r >= f - 1e-12, eta
    # and strictly beats the best single η somewhere on the grid
    best = out["fixed"][out["best_fixed_eta"]]
    assert any(r > f + 1e-3 for r, f in zip(out["rule"], best, strict=True))


@pytest.mark.data
def test_calibration_on_areal_and_verl(shared_data) -> None:  # type: ignore[no-untyped-def]
    cal = calibrate_staleness(shared_data("rl/rl_staleness_ablations.csv"))
    # decoupled PPO tolerates staleness far better than naive PPO (AReaL v0.3 table 3)
    assert cal.omega["decoupled_ppo"] < cal.omega["naive_ppo"]
    assert cal.rmse["decoupled_ppo"] < 0.03
    # verl staleness_threshold=0.5 lost ~1.5% vs sync; the fit predicts a loss under 3%
    assert 0.97 < cal.verl_predicted <= 1.0
    assert cal.verl_observed == pytest.approx(0.3521 / 0.3573)


def test_calibration_bad_file(tmp_path) -> None:  # type: ignore[no-untyped-def]
    p = tmp_path / "x.csv"
    p.write_text("a,b\n1,2\n")
    with pytest.raises(InputError, match="line 1: header"):
        calibrate_staleness(p)


def test_zero_advantage_group_has_zero_value_and_noise_lowers_value() -> None:
    v = group_marginal_value([[1, 1, 1, 1], [0, 0, 0, 0], [1, 0, 0, 0]])
    assert v.tolist()[:2] == [0.0, 0.0] and v[2] > 0
    clean = group_marginal_value([[1, 0, 1, 0]], 0.0)[0]
    noisy = group_marginal_value([[1, 0, 1, 0]], 0.2)[0]
    assert noisy < clean
    easy = zero_advantage_filter([0.98] * 500, 8, 0.0, 1000.0)
    mid = zero_advantage_filter([0.5] * 500, 8, 0.0, 1000.0)
    assert easy["update_tokens_saved"] > mid["update_tokens_saved"]
    assert easy["dropped_share"] == pytest.approx(0.98**8, abs=0.05)
    clean_f = zero_advantage_filter([0.3, 0.5, 0.7] * 500, 8, 0.0, 1000.0)
    noisy_f = zero_advantage_filter([0.3, 0.5, 0.7] * 500, 8, 0.2, 1000.0)
    assert noisy_f["mean_signal"] < 0.8 * clean_f["mean_signal"]


def test_portfolio_frontier_and_verifier_cut() -> None:
    f = efficient_frontier(points=9)
    means = [r["mean"] for r in f]
    sds = [r["sd"] for r in f]
    assert means == sorted(means) and sds == sorted(sds)
    for r in f:
        assert sum(r["weights"].values()) == pytest.approx(1.0)
    # the minimum-variance point is a mix, not a corner
    assert max(f[0]["weights"].values()) < 0.99
    cut = verifier_cut_effect((0.2, 0.1, 0.05))
    assert cut[0]["rl_mean"] < cut[1]["rl_mean"] < cut[2]["rl_mean"]  # cheaper
    assert cut[0]["top_cvar95"] < cut[1]["top_cvar95"] < cut[2]["top_cvar95"]  # riskier
    with pytest.raises(InputError):
        rl_asset(0.0)


def test_config_and_budget_report() -> None:
    m, b = model_from_config(
        {"kappa": [1, 1, 1], "budget": 30, "technology_params": {"alpha": [0.2, 0.2, 0.2]}}
    )
    rep = budget_report(m, b)
    assert rep["allocation"]["rollout"] == pytest.approx(10.0, rel=1e-4)
    assert rep["closed_form"] == pytest.approx({"rollout": 10.0, "verifier": 10.0, "update": 10.0})
    with pytest.raises(InputError, match="unknown field"):
        model_from_config({"bogus": 1})
    with pytest.raises(InputError, match="sum to < 1"):
        model_from_config({"technology_params": {"alpha": [0.5, 0.5, 0.5]}})
    with pytest.raises(InputError, match="kappa"):
        model_from_config({"kappa": [1, 2]})
