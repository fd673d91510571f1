"""The Eq. 4 router: choices, comparative statics, risk/CVaR, guard, ledger."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from margin.core.prices import InputError
from margin.core.risk import CVaR, bernoulli_loss
from margin.ledger.records import LedgerRecord, RecordSink
from margin.routing.data import RoutingDataset
from margin.routing.estimators import TaskPrior
from margin.routing.router import VALUE_TIERS, MarginalRouter, bernoulli_cvar, value_tier


@pytest.fixture(scope="module")
def fitted():
    rng = np.random.default_rng(0)
    n = 160
    prompts, q = [], []
    for k in range(n):
        hard = k % 2 == 1
        prompts.append(f"{'hard tricky proof' if hard else 'easy simple sum'} item {k}")
        q.append([0.0, float(rng.random() < 0.5), 1.0] if hard else [1.0, 1.0, 1.0])
    d = RoutingDataset.from_arrays(
        prompts,
        ("small", "medium", "large"),
        q,
        np.tile([0.001, 0.004, 0.02], (n, 1)),
        tasks=["t"] * n,
    )
    return d, MarginalRouter(guard=False).fit(d)


def test_routes_by_difficulty_and_value(fitted):
    d, r = fitted
    easy, hard = d.subset([0]), d.subset([1])
    assert r.route(easy, 1.0).names() == ["small"]
    assert r.route(hard, 1.0).names() == ["large"]
    # at a tiny value quality is worth less than the price gap: the cheapest model wins
    assert r.route(hard, 1e-4).names() == ["small"]


def test_worked_example_of_section_2_through_the_router():
    # q̂ comes from a prior over a single task: cheap 0.7 at 1, frontier 0.9 at 5 (USD)
    n = 10
    q = np.array([[1.0, 1.0]] * 7 + [[0.0, 1.0]] * 2 + [[0.0, 0.0]])
    d = RoutingDataset.from_arrays(
        [f"p{k}" for k in range(n)],
        ["cheap", "frontier"],
        q,
        np.tile([1.0, 5.0], (n, 1)),
        tasks=["t"] * n,
    )
    r = MarginalRouter(TaskPrior(alpha=0.0), guard=False).fit(d)
    one = d.subset([0])
    assert r.route(one, 10.0).names() == ["cheap"]  # 6 vs 4
    assert r.route(one, 100.0).names() == ["frontier"]  # 69 vs 85
    assert r.route(one, 19.0).names() == ["cheap"]  # crossover V* = 20
    assert r.route(one, 21.0).names() == ["frontier"]
    # risk: r_c = 0.3·K, r_f = 0.1·K with K = 0.25, ρ = 40 shrinks the gap by 2: V* = 10
    r2 = MarginalRouter(TaskPrior(alpha=0.0), guard=False, consequence={"default": 0.25}).fit(d)
    assert r2.route(one, 9.0, risk_price=40.0).names() == ["cheap"]
    assert r2.route(one, 11.0, risk_price=40.0).names() == ["frontier"]


@settings(max_examples=30, deadline=None)
@given(st.floats(1e-4, 100.0), st.floats(1.0, 50.0), st.floats(0.0, 5.0))
def test_quality_of_choice_is_monotone_in_value_and_risk_price(fitted, v, factor, rho):
    d, r = fitted
    X = r.features(d)
    q, _, _ = r.estimates(X)
    rows = np.arange(d.n)
    lo = r.decide(X, v)[0]
    hi = r.decide(X, v * factor)[0]
    assert np.all(q[rows, hi] >= q[rows, lo] - 1e-12)
    with_risk = r.decide(X, v, risk_price=rho)[0]
    assert np.all(q[rows, with_risk] >= q[rows, lo] - 1e-12)


@settings(max_examples=40, deadline=None)
@given(st.floats(0.0, 1.0), st.floats(0.0, 1e4), st.floats(0.0, 0.99))
def test_bernoulli_cvar_matches_core(p, k, level):
    losses, probs = bernoulli_loss(p, k)
    assert bernoulli_cvar(p, k, level) == pytest.approx(
        CVaR(level).measure(losses, probs), rel=1e-9, abs=1e-9
    )


def test_cvar_classes_raise_the_risk_of_weak_models(fitted):
    d, _ = fitted
    r = MarginalRouter(
        guard=False,
        consequence={"default": 1.0, "deploy": 1.0},
        cvar_classes=["deploy"],
        cvar_level=0.9,
    ).fit(d)
    p_wrong = np.array([[0.05, 0.5]])
    assert r.risk(p_wrong, ["read"]).tolist() == [[0.05, 0.5]]
    np.testing.assert_allclose(r.risk(p_wrong, ["deploy"]), [[0.5, 1.0]])


def test_guard_falls_back_to_best_fixed_without_signal():
    rng = np.random.default_rng(3)
    n = 200
    prompts = [f"w{rng.integers(500)} z{rng.integers(500)}" for _ in range(n)]
    q = (rng.random((n, 2)) < [0.5, 0.8]).astype(float)
    d = RoutingDataset.from_arrays(
        prompts, ["a", "b"], q, np.tile([0.01, 0.02], (n, 1)), tasks=["t"] * n
    )
    r = MarginalRouter().fit(d)
    for v in (0.001, 0.1, 10.0):
        b = int(np.argmax(v * q.mean(axis=0) - [0.01, 0.02]))
        choice = r.route(d, v).choice
        assert np.mean(choice == b) >= 0.95, v


def test_ledger_records_and_model_subsets(fitted):
    d, r = fitted
    sink: list[LedgerRecord] = []
    assert isinstance(sink, RecordSink)
    out = r.route(d.subset([0, 1, 2]), 1.0, sink=sink)
    assert len(sink) == 3
    assert {rec.layer for rec in sink} == {"routing"}
    assert [rec.choice for rec in sink] == out.names()
    assert all(rec.regret is not None and rec.regret >= 0 for rec in sink)
    assert sink[0].prices.value == 1.0 and len(sink[0].options) == 3
    # input listing only some models: only those are candidates
    only = d.subset([1]).select_models(["small", "medium"])
    assert r.route(only, 10.0).names()[0] in ("small", "medium")
    alien = RoutingDataset.from_arrays(["x"], ["gpt-9"], [[1]], [[1]])
    with pytest.raises(InputError, match="none of the input's models"):
        r.route(alien, 1.0)


def test_value_tiers_and_row_values(fitted):
    d, r = fitted
    assert [VALUE_TIERS[i] for i in value_tier([1e-9, 0.001, 1e9])] == [
        VALUE_TIERS[0],
        0.001,
        VALUE_TIERS[-1],
    ]
    rows = d.subset([1, 1])
    own = RoutingDataset(
        rows.sample_ids,
        rows.prompts,
        rows.tasks,
        rows.models,
        rows.quality,
        rows.cost,
        value=np.array([1e-4, np.nan]),
    )
    assert r.route(own, 10.0).names() == ["small", "large"]
    with pytest.raises(InputError, match="value"):
        r.route(d, -1.0)


def test_calibration_report_of_router(fitted):
    d, r = fitted
    rep = r.calibration(d)
    assert rep.models == d.models
    assert rep.mean_brier < np.mean(rep.brier_prior)


def test_latency_price_from_speed_table_and_from_data(fitted):
    d, _ = fitted
    speeds = {
        "small": {"ttft": 0.1, "prefill": 5000, "decode": 100},
        "medium": {"ttft": 0.2, "prefill": 4000, "decode": 60},
        "large": {"ttft": 1.0, "prefill": 1000, "decode": 10},  # ~27 s per answer
    }
    r = MarginalRouter(guard=False, speed_table=speeds).fit(d)
    hard = d.subset([1])
    assert r.route(hard, 1.0).names() == ["large"]
    # at λ = 0.1 USD/s the large model's extra ~24 s outweigh its quality
    assert r.route(hard, 1.0, latency_price=0.1).names() != ["large"]
    with pytest.raises(InputError, match="no entry for model 'medium'"):
        MarginalRouter(speed_table={"small": speeds["small"]}).fit(d)
    # measured latency in the data is learned instead
    lat = np.tile([0.5, 1.0, 30.0], (d.n, 1))
    timed = RoutingDataset(
        d.sample_ids, d.prompts, d.tasks, d.models, d.quality, d.cost, latency=lat
    )
    r2 = MarginalRouter(guard=False).fit(timed)
    assert r2.route(timed.subset([1]), 1.0, latency_price=0.1).names() != ["large"]
    assert r2.route(timed.subset([1]), 1.0).names() == ["large"]


def test_selection_rule_on_hand_computed_gains():
    r = MarginalRouter(guard_z=2.0)
    # three candidates on k = 4 rows: gains (1, 1, 1, 1), (3, -1, 3, -1), (2, 2, 2, 2.4)
    D = np.array([[1.0, 1, 1, 1], [3, -1, 3, -1], [2, 2, 2, 2.4]])
    s1, gram = D.sum(axis=1), D @ D.T
    # candidate 1 (mean 1, SE 0) and 3 (mean 2.1, SE 0.1) qualify; 2 (mean 1, SE 1.15) does
    # not; the best is 3 and candidate 1 is not within one paired SE (0.1) of it: pick 3
    assert r._select(s1, gram, 4) == 3
    # gains (1, 1, 1, 1) and (0.9, 1.1, 1, 1.2): the better second one leads by 0.05 < its
    # paired SE 0.065, so the one-standard-error rule keeps the first (more conservative)
    D2 = np.array([[1.0, 1, 1, 1], [0.9, 1.1, 1, 1.2]])
    assert r._select(D2.sum(axis=1), D2 @ D2.T, 4) == 1
    # nothing beats the population choice by 2 SE: 0
    D3 = np.array([[1.0, -1, 1, -1]])
    assert r._select(D3.sum(axis=1), D3 @ D3.T, 4) == 0


def test_guard_departs_only_with_a_cross_validated_significant_gain(fitted):
    d, _ = fitted
    r = MarginalRouter(seed=0).fit(d)
    departs = np.isfinite(r.kappa_)
    # easy prompts are solved by the small model: at V = 1 the text model must be used
    assert departs[VALUE_TIERS.index(1.0)]
    assert r.route(d.subset([0, 1]), 1.0).names() == ["small", "large"]
    # every departing tier passed the cross-validated test of the selection rule
    assert np.all(r.guard_gain_[departs] > r.guard_z * r.guard_se_[departs])
    strict = MarginalRouter(seed=0, guard_z=50.0).fit(d)
    assert not np.isfinite(strict.kappa_).any()
    b = int(np.argmax(1.0 * d.quality.mean(axis=0) - d.cost.mean(axis=0)))
    assert np.all(strict.route(d, 1.0).choice == b)
