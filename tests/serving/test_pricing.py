from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from margin.core.prices import InputError
from margin.serving.costmodel import DistServeCostModel
from margin.serving.pricing import (
    PriorityQueueModel,
    cobham_waits,
    externality_by_removal,
    mendelson_whang_prices,
    pk_wait,
    request_work,
    simulate_priority_queue,
)


def two_class_path(n: int, seed: int):
    rng = np.random.default_rng(seed)
    lam = np.array([0.3, 0.35])
    k = (rng.random(n) >= lam[0] / lam.sum()).astype(np.int64)
    a = np.cumsum(rng.exponential(1 / lam.sum(), n))
    s = np.where(k == 0, rng.exponential(0.5, n), rng.exponential(1.0, n))
    rates = lam.sum() * np.bincount(k, minlength=2) / n
    return a, s, k, rates, np.array([0.5, 1.0]), np.array([0.5, 2.0])


def test_cobham_against_brute_force_simulation():
    a, s, k, rates, m1, m2 = two_class_path(150_000, 0)
    w = simulate_priority_queue(a, s, k)
    expect = cobham_waits(rates, m1, m2)
    for j in (0, 1):
        assert w[k == j].mean() == pytest.approx(expect[j], rel=0.06)


def test_mendelson_whang_prices_against_brute_force_externality():
    a, s, k, rates, m1, m2 = two_class_path(150_000, 1)
    rng = np.random.default_rng(2)
    jobs = rng.choice(a.size, 6000, replace=False)
    ext = externality_by_removal(a, s, k, jobs)
    prices = mendelson_whang_prices(rates, m1, m2, [1.0, 1.0])
    for j in (0, 1):
        e = ext[k[jobs] == j]
        se = e.std() / np.sqrt(e.size)
        assert abs(e.mean() - prices[j]) < 3.5 * se + 0.05 * prices[j]
    # low-priority jobs impose a larger external delay per job here (longer service)
    assert prices[1] > prices[0]


@settings(max_examples=40, deadline=None)
@given(
    lam=st.lists(st.floats(0.01, 0.3), min_size=1, max_size=4),
    m1=st.floats(0.1, 1.0),
    c=st.floats(0.1, 3.0),
)
def test_price_is_derivative_of_total_delay_cost(lam, m1, c):
    lam_a = np.array(lam)
    k = lam_a.size
    mean = np.full(k, m1) * np.linspace(1.0, 1.5, k)
    second = 2 * mean**2
    if np.sum(lam_a * mean) >= 0.95:
        lam_a = lam_a * 0.9 / np.sum(lam_a * mean)
    cost = np.full(k, c)
    prices = mendelson_whang_prices(lam_a, mean, second, cost)

    def external(lam_v, cls):
        w = cobham_waits(lam_v, mean, second)
        return float(np.sum(lam_v * cost * w))

    for cls in range(k):
        h = 1e-6
        up, dn = lam_a.copy(), lam_a.copy()
        up[cls] += h
        dn[cls] -= h
        # d/dλ_k Σ_j λ_j c_j W_j = c_k W_k + p_k: own delay plus the externality
        fd = (external(up, cls) - external(dn, cls)) / (2 * h)
        own = cost[cls] * cobham_waits(lam_a, mean, second)[cls]
        assert fd == pytest.approx(own + prices[cls], rel=1e-4, abs=1e-7)


@settings(max_examples=30, deadline=None)
@given(lam=st.floats(0.05, 0.4), bump=st.floats(1.01, 1.5))
def test_prices_and_waits_rise_with_load(lam, bump):
    m1, m2 = np.array([0.5, 1.0]), np.array([0.5, 2.0])
    r = np.array([lam, lam])
    p0 = mendelson_whang_prices(r, m1, m2, [1, 1])
    p1 = mendelson_whang_prices(r * bump, m1, m2, [1, 1])
    assert np.all(p1 > p0)
    assert np.all(cobham_waits(r * bump, m1, m2) > cobham_waits(r, m1, m2))


def test_single_class_reduces_to_pollaczek_khinchine():
    assert cobham_waits([0.4], [1.0], [3.0])[0] == pytest.approx(pk_wait(0.4, 1.0, 3.0))
    assert np.isinf(pk_wait(1.0, 1.0, 2.0))
    assert np.all(np.isinf(mendelson_whang_prices([0.6, 0.6], [1, 1], [2, 2], [1, 1])))
    with pytest.raises(InputError):
        cobham_waits([0.1], [1.0], [0.5])  # E[S^2] < E[S]^2


def test_queue_model_quote():
    work = request_work(
        np.array([200, 2000, 500, 8000]),
        np.array([50, 400, 100, 900]),
        DistServeCostModel.default(),
    )
    assert np.all(np.diff(work[[0, 2, 1, 3]]) > 0)
    m = PriorityQueueModel.fit(work, rate=0.05, n_classes=2, usd_per_second=0.01)
    cheap = m.quote(float(work.min()))
    dear = m.quote(float(work.max()))
    d_c, d_l = cheap
    assert d_c == pytest.approx(0.01 * work.min() + cheap.price)
    assert cheap.priority_class < dear.priority_class
    assert d_l < dear.latency


def test_quote_request_for_upstream_layers():
    from margin.core.prices import PriceVector
    from margin.serving.traces import synthetic_trace

    model = DistServeCostModel.default()
    t = synthetic_trace(800, rate=1.5, prompt_mean=1000, output_mean=200, seed=3)
    q = PriorityQueueModel.from_trace(t, model, n_classes=3, usd_per_second=0.001)
    sink: list = []
    short = q.quote_request(
        200, 20, model, sink=sink, request_id="r1", prices=PriceVector(value=5.0, latency_price=1.0)
    )
    long = q.quote_request(8000, 900, model)
    assert short.latency < long.latency
    assert short.price < long.price  # the long request imposes more delay on others
    assert (
        len(sink) == 1
        and sink[0].layer == "serving"
        and sink[0].option("serve").cost == (pytest.approx(short.cost))
    )
    busier = PriorityQueueModel.from_trace(t.scaled(1.5), model, n_classes=3)
    assert busier.quote_request(200, 20, model).price > q.quote_request(200, 20, model).price
