"""Each peer router on small hand-built datasets."""

from __future__ import annotations

import numpy as np
import pytest

from margin.core.prices import InputError
from margin.routing.data import RoutingDataset
from margin.routing.evaluate import realized_utility
from margin.routing.peers import (
    PEERS,
    ROUTERS,
    BestFixed,
    Cheapest,
    FrugalGPTCascade,
    Oracle,
    RandomRouter,
    RouteLLMThreshold,
    RouterBenchKNN,
    RouterBenchMLP,
    make_router,
)
from margin.routing.router import Router, value_tier


def test_registry_holds_every_router(toy):
    assert set(PEERS) == {
        "best_fixed",
        "cheapest",
        "random",
        "oracle",
        "routerbench_knn",
        "routerbench_mlp",
        "routellm_threshold",
        "frugalgpt_cascade",
    }
    assert set(ROUTERS) == set(PEERS) | {"marginal"}
    for name in ROUTERS:
        assert isinstance(make_router(name).fit(toy), Router)
    with pytest.raises(InputError, match="unknown 'nope'"):
        make_router("nope")


def test_best_fixed_cheapest_random_oracle(toy):
    # toy: small right on easy rows only, large always right; costs 0.001/0.004/0.02
    assert BestFixed().fit(toy).route(toy, 1e-3).names()[0] == "small"
    assert set(BestFixed().fit(toy).route(toy, 10.0).names()) == {"large"}
    assert set(Cheapest().fit(toy).route(toy, 10.0).names()) == {"small"}
    c = RandomRouter(seed=0).fit(toy).route(toy, 1.0).choice
    assert set(c.tolist()) == {0, 1, 2}
    assert np.array_equal(c, RandomRouter(seed=0).fit(toy).route(toy, 1.0).choice)
    orc = Oracle().fit(toy).route(toy, 10.0)
    u = 10.0 * toy.quality - toy.cost
    assert np.allclose(realized_utility(toy, orc, 10.0), u.max(axis=1))
    with pytest.raises(InputError, match="models"):
        BestFixed().fit(toy).route(toy.select_models(["large", "small", "medium"]), 1.0)


@pytest.mark.parametrize("cls", [RouterBenchKNN, RouterBenchMLP])
def test_routerbench_predictive_routers_learn_difficulty(toy, cls):
    r = cls().fit(toy)
    names = r.route(toy.subset([0, 1]), 10.0).names()  # row 0 easy, row 1 hard
    assert names[1] == "large"
    # at a low willingness to pay, the cheap model is always picked
    assert set(r.route(toy, 1e-4).names()) == {"small"}
    if isinstance(r, RouterBenchMLP):
        p = r.predict_proba(toy.subset([0, 1]))
        assert p[0, 0] > 0.8 > 0.2 > p[1, 0]
    else:
        assert names[0] == "small"  # exact neighbours: P̂ = 1 for every model


def test_routellm_threshold_calibrated_by_strong_share(toy):
    default = RouteLLMThreshold().fit(toy)
    # strongest model, and the best one costing at most a fifth of it
    assert (toy.models[default.strong_], toy.models[default.weak_]) == ("large", "medium")
    r = RouteLLMThreshold(strong="large", weak="small").fit(toy)
    hi = r.route(toy, 10.0).choice
    assert np.array_equal(hi == r.strong_, np.arange(toy.n) % 2 == 1)  # hard rows go strong
    assert 0.4 <= r.share_[value_tier(10.0)[0]] <= 0.6  # half the rows are hard
    lo = r.route(toy, 1e-4).choice
    assert np.all(lo == r.weak_)  # at tiny V the best share of strong calls is 0
    with pytest.raises(InputError, match="strong"):
        RouteLLMThreshold(strong="large", weak="large").fit(toy)


def test_frugalgpt_cascade_pays_for_every_call():
    n = 60
    q = np.array([[1.0, 1.0]] * (n // 2) + [[0.0, 1.0]] * (n // 2))
    resp = (("confident answer", "ok"),) * (n // 2) + (("unsure maybe", "ok"),) * (n // 2)
    base = RoutingDataset.from_arrays(
        [f"q{k}" for k in range(n)],
        ["cheap", "big"],
        q,
        np.tile([0.1, 1.0], (n, 1)),
        tasks=["t"] * n,
    )
    d = RoutingDataset(
        base.sample_ids,
        base.prompts,
        base.tasks,
        base.models,
        base.quality,
        base.cost,
        responses=resp,
    )
    r = FrugalGPTCascade().fit(d)
    out = r.route(d, 10.0)
    assert out.called is not None
    # confident cheap answers are accepted; unsure ones escalate and pay for both calls
    assert out.names()[0] == "cheap" and out.names()[-1] == "big"
    assert out.paid(d.cost)[0] == pytest.approx(0.1)
    assert out.paid(d.cost)[-1] == pytest.approx(1.1)
    u = realized_utility(d, out, 10.0)
    assert u[-1] == pytest.approx(10.0 - 1.1)
    # with V tiny, the cascade is just the cheap model
    assert set(r.route(d, 1e-4).names()) == {"cheap"}
