"""The end-to-end economy: welfare, attribution, ledgers and diagnostics."""

from __future__ import annotations

import math

import numpy as np
import pytest

from margin.core.prices import InputError
from margin.diagnose import diagnose
from margin.economy import (
    LAYER_NAMES,
    REGIMES,
    EconomyConfig,
    Regime,
    draw_stream,
    run_economy,
    run_regime,
)


def test_shared_prices_beat_siloed_on_every_seed(small_config):
    gains = []
    for seed in range(4):
        r = run_economy(small_config(seed), attribute=False, regret=False)
        gains.append(r.welfare_gain)
        assert r.shared.total.welfare > r.siloed.total.welfare, (seed, r.as_dict())
    assert min(gains) > 0


def test_attribution_and_layers_add_up(economy_run):
    r, _, _ = economy_run
    assert set(r.attribution) == {*LAYER_NAMES, "interaction"}
    assert math.isclose(
        r.siloed.total.welfare + sum(r.attribution.values()),
        r.shared.total.welfare,
        rel_tol=1e-9,
        abs_tol=1e-6,
    )
    for res in (r.siloed, r.shared, *r.swaps.values()):
        assert math.isclose(
            sum(x.welfare for x in res.layers.values()), res.total.welfare, abs_tol=1e-6
        )
        assert all(x.regret >= -1e-9 for x in res.layers.values())
    # a swap run differs from siloed in exactly one layer
    for layer, res in r.swaps.items():
        assert res.regime.shared(layer)
        assert sum(res.regime.shared(x) for x in LAYER_NAMES) == 1


def test_reproducible_and_common_random_numbers(small_config):
    cfg = small_config(3)
    a, b = draw_stream(cfg), draw_stream(cfg)
    assert np.array_equal(a.value, b.value) and np.array_equal(a.u_success, b.u_success)
    assert np.array_equal(a.background.arrival, b.background.arrival)
    regime = REGIMES["siloed"].swap("routing")
    r1 = run_regime(cfg, a, regime, regret=False)
    r2 = run_regime(cfg, b, regime, regret=False)
    assert r1.total.welfare == r2.total.welfare
    assert np.array_equal(r1.tier_choice, r2.tier_choice)
    other = draw_stream(small_config(4))
    assert not np.array_equal(a.value, other.value)


def test_routers(economy_run):
    r, siloed, shared = economy_run
    cfg = r.config
    bar = min(
        (j for j, t in enumerate(cfg.tiers) if t.quality >= cfg.quality_bar),
        key=lambda j: cfg.tiers[j].cost,
    )
    assert np.all(r.siloed.tier_choice == bar)
    # the shared router varies its tier with V: Eq. 4 is not a fixed choice
    assert len(set(r.shared.tier_choice.tolist())) > 1
    for rec in shared:
        if rec.layer == "routing":
            s = {o.name: o.surplus(rec.prices) for o in rec.options}
            assert s[rec.choice] >= max(s.values()) - 1e-9
    # siloed records are judged at the social prices: V equals the task's value
    stream = draw_stream(cfg)
    vals = sorted(rec.prices.value for rec in siloed if rec.layer == "routing")
    assert np.allclose(vals, sorted(stream.value))


def test_one_record_per_decision(economy_run):
    r, siloed, shared = economy_run
    for res, recs in ((r.siloed, siloed), (r.shared, shared)):
        by = {layer: [x for x in recs if x.layer == layer] for layer in LAYER_NAMES}
        n = r.config.n_coding
        assert len(by["routing"]) == n and len(by["agent"]) == n
        assert len(by["serving"]) == res.calls
        assert len(by["capital"]) == res.layers["capital"].decisions
        assert all(x.request_id.startswith(res.regime.name) for x in recs)
        assert len({x.record_id for x in recs}) == len(recs)


def test_diagnose_fires_on_siloed_and_not_on_shared(economy_run):
    _, siloed, shared = economy_run
    found = {f.mode: f for f in diagnose(siloed)}
    for mode in ("under-routing", "serving-congestion", "stale-rollouts"):
        assert found[mode].count > 0 and found[mode].loss > 0, mode
    clean = {f.mode: f.count for f in diagnose(shared)}
    assert sum(clean.values()) == 0, clean


def test_shared_prices_are_published_every_interval(economy_run):
    r, _, _ = economy_run
    assert len(r.shared.prices) == r.config.n_intervals
    assert all(min(p) >= 0 for p in r.shared.prices)


def test_tight_budget_raises_the_price_of_money(small_config):
    cfg = small_config(1, cost_budget_per_task=0.01)
    stream = draw_stream(cfg)
    regime = REGIMES["siloed"].swap("routing")
    tight = run_regime(cfg, stream, regime, regret=False)
    loose = run_regime(small_config(1, cost_budget_per_task=100.0), stream, regime, regret=False)
    assert max(p[0] for p in tight.prices) > 0
    assert max(p[0] for p in loose.prices) == 0
    assert tight.layers["routing"].cost <= loose.layers["routing"].cost + 1e-9


def test_regime_validation():
    with pytest.raises(InputError, match="routing"):
        Regime(routing="central")
    with pytest.raises(InputError, match="unknown layer"):
        Regime().swap("planner")
    assert Regime().swap("agent").name == "siloed+agent"


def test_default_config_is_the_builtin_workload():
    cfg = EconomyConfig()
    assert cfg.n_intervals == 10 and cfg.tiers[0].cost < cfg.tiers[-1].cost
