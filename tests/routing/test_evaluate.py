"""Regret, gap closed, convex hull, AIQ, PGR/APGR/CPT on hand-computed cases; compare."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from margin.core.prices import InputError
from margin.routing.data import RoutingDataset
from margin.routing.evaluate import (
    aiq,
    apgr,
    compare,
    convex_hull,
    cpt,
    gap_closed,
    pgr,
    plot_frontier,
    plot_regret_by_tier,
    realized_utility,
    regret,
)
from margin.routing.peers import BestFixed, Cheapest, Oracle, RandomRouter
from margin.routing.router import MarginalRouter, Routing


def two_rows() -> RoutingDataset:
    # row 0: both right; row 1: only y right. costs x=1, y=3
    return RoutingDataset.from_arrays(
        ["a", "b"], ["x", "y"], [[1, 1], [0, 1]], [[1.0, 3.0], [1.0, 3.0]]
    )


def test_regret_hand_computed():
    d = two_rows()
    all_x = Routing(d.models, np.array([0, 0]))
    # V = 10: utilities x: [9, -1], y: [7, 7]; optimum [9, 7]
    assert realized_utility(d, all_x, 10.0).tolist() == [9.0, -1.0]
    assert regret(d, all_x, 10.0).tolist() == [0.0, 8.0]
    # V = 1 on row 1: x gives -1, y gives -2, so x is optimal ...
    assert regret(d, all_x, np.array([10.0, 1.0])).tolist() == [0.0, 0.0]
    # ... until risk is priced: ρ = 2, K = 1 costs x (wrong) 2 more: -3 vs -2
    assert regret(d, all_x, np.array([10.0, 1.0]), risk_price=2.0).tolist() == [0.0, 1.0]
    # a cascade that called both models pays both
    both = Routing(d.models, np.array([1, 1]), np.array([[True, True], [True, True]]))
    assert realized_utility(d, both, 10.0).tolist() == [6.0, 6.0]


def test_gap_closed_hand_computed():
    assert gap_closed(3.0, 2.0, 6.0) == 0.25
    assert gap_closed(2.0, 2.0, 6.0) == 0.0
    assert math.isnan(gap_closed(2.0, 2.0, 2.0))


def test_convex_hull_and_aiq_hand_computed():
    c, q = convex_hull([1.0, 2.0, 3.0, 2.0, 4.0], [0.2, 0.5, 0.6, 0.3, 0.6])
    # (2, 0.3) is dominated; (4, 0.6) adds nothing; (2, .5) is above the chord (1,.2)-(3,.6)
    assert c.tolist() == [1.0, 2.0, 3.0] and q.tolist() == [0.2, 0.5, 0.6]
    # area on [1, 3]: trapezoids 0.35 + 0.55 = 0.9 over a width of 2
    assert aiq([1.0, 2.0, 3.0], [0.2, 0.5, 0.6]) == pytest.approx(0.45)
    # on [0, 4]: zero before cost 1, flat 0.6 after cost 3 -> (0 + 0.9 + 0.6)/4
    assert aiq([1.0, 2.0, 3.0], [0.2, 0.5, 0.6], 0.0, 4.0) == pytest.approx(0.375)
    with pytest.raises(InputError):
        convex_hull([], [])


@settings(max_examples=50, deadline=None)
@given(st.lists(st.tuples(st.floats(0, 10), st.floats(0, 1)), min_size=1, max_size=12))
def test_hull_is_non_decreasing_concave_and_dominates(points):
    c = [p[0] for p in points]
    q = [p[1] for p in points]
    hc, hq = convex_hull(c, q)
    assert np.all(np.diff(hc) > 0) and np.all(np.diff(hq) > 0)
    slopes = np.diff(hq) / np.diff(hc)
    assert np.all(np.diff(slopes) <= 1e-9)
    # every point lies on or below the hull at its cost (flat after the hull's last point)
    for ci, qi in points:
        if ci >= hc[0]:
            assert qi <= np.interp(ci, hc, hq) + 1e-9
    a = aiq(c, q, 0.0, 10.0)
    assert 0.0 <= a <= max(q) + 1e-12


def test_pgr_apgr_cpt_hand_computed():
    assert pgr(0.75, 0.6, 0.9) == pytest.approx(0.5)
    # curve (0,0) (0.5,0.8) (1,1): area 0.2 + 0.45
    assert apgr([0.5], [0.8]) == pytest.approx(0.65)
    assert cpt([0.5], [0.8], 0.4) == pytest.approx(0.25)
    assert cpt([0.5], [0.8], 0.9) == pytest.approx(0.75)
    # random routing (PGR = share) has APGR 0.5 and CPT(x) = x
    s = np.linspace(0.1, 0.9, 9)
    assert apgr(s, s) == pytest.approx(0.5)
    assert cpt(s, s, 0.5) == pytest.approx(0.5)


def test_compare_on_toy(toy, tmp_path):
    from margin.routing.data import train_test_split

    tr, te = train_test_split(toy, 0.3, seed=0)
    routers = {
        "marginal": MarginalRouter().fit(tr),
        "best_fixed": BestFixed().fit(tr),
        "cheapest": Cheapest().fit(tr),
        "random": RandomRouter().fit(tr),
        "oracle": Oracle().fit(tr),
    }
    res = compare(routers, te, (0.001, 0.1, 10.0))
    assert res.routers() == list(routers)
    for v in res.values:
        g = res.score("oracle", v).gap_closed
        assert math.isnan(g) if v == 0.001 else g == pytest.approx(1.0)  # no gap at V=0.001
        assert res.score("oracle", v).regret == pytest.approx(0.0, abs=1e-12)
        assert res.score("marginal", v).utility >= res.score("best_fixed", v).utility - 1e-12
    # difficulty is visible in the text: our router recovers most of the gap at V = 10
    assert res.score("marginal", 10.0).gap_closed > 0.5
    # a cost-minimizing router's regret is concentrated on high-V requests (Sec. 3.1)
    tiers = res.regret_by_tier["cheapest"]
    assert tiers[10.0] > tiers[0.1] > tiers[0.001]
    assert set(res.aiq) == set(routers)
    d = res.as_dict()
    assert {"values", "rows", "aiq", "mean_gap_closed", "regret_by_tier", "best_fixed"} <= set(d)
    plot_frontier(res, tmp_path / "f.png")
    plot_regret_by_tier(res, tmp_path / "r.png")
    assert (tmp_path / "f.png").read_bytes()[:4] == b"\x89PNG"
    assert (tmp_path / "r.png").stat().st_size > 1000


def test_compare_two_models_reports_apgr():
    rng = np.random.default_rng(1)
    n = 80
    hard = np.arange(n) % 2 == 1
    q = np.column_stack([~hard, np.ones(n)]).astype(float)
    q[rng.random(n) < 0.1, 0] = 1.0
    d = RoutingDataset.from_arrays(
        [("hard x" if h else "easy y") + f" {k}" for k, h in enumerate(hard)],
        ["weak", "strong"],
        q,
        np.tile([0.01, 0.1], (n, 1)),
        tasks=["t"] * n,
    )
    res = compare({"marginal": MarginalRouter().fit(d), "random": RandomRouter().fit(d)}, d)
    assert set(res.two_model) == {"marginal", "random"}
    # a perfect router reaches PGR 1 at a strong share of about 0.45: APGR ≈ 0.775
    assert res.two_model["marginal"]["apgr"] > 0.7
    assert res.two_model["random"]["apgr"] < 0.6
    assert res.two_model["marginal"]["cpt50"] < 0.5
