"""Screening menu (Eq. 5): IC, IR, optimality against brute force, rents, silent routing."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given, settings, strategies as st

from margin.core.prices import InputError
from margin.routing.menu import Tier, UserType, design_menu, silent_routing, virtual_values


def instance(values, probs, tiers):
    total = sum(probs)
    types = [
        UserType(f"t{k}", v, p / total) for k, (v, p) in enumerate(zip(values, probs, strict=True))
    ]
    return types, [Tier(f"m{j}", q, c) for j, (q, c) in enumerate(tiers)]


def brute_force_revenue(types, tiers):
    """Best revenue over every assignment of options to types, with the prices that make
    it IC and IR at least cost to the operator (checked explicitly)."""
    ts = sorted(types, key=lambda t: t.value)
    opts = [(0.0, 0.0), *[(t.quality, t.cost) for t in tiers]]
    best = 0.0
    for assign in itertools.product(range(len(opts)), repeat=len(ts)):
        qs = [opts[j][0] for j in assign]
        if any(a > b for a, b in itertools.pairwise(qs)):
            continue  # not implementable: IC needs quality non-decreasing in V
        prices, pq, pp = [], 0.0, 0.0
        for t, q in zip(ts, qs, strict=True):
            pp = pp + t.value * (q - pq)
            pq = q
            prices.append(pp)
        rev = sum(
            t.probability * (p - opts[j][1]) for t, p, j in zip(ts, prices, assign, strict=True)
        )
        best = max(best, rev)
    return best


values_st = st.lists(st.floats(0.0, 20.0), min_size=1, max_size=4)
tiers_st = st.lists(st.tuples(st.floats(0.0, 1.0), st.floats(0.0, 5.0)), min_size=1, max_size=3)


@settings(max_examples=80, deadline=None)
@given(values_st, tiers_st, st.data())
def test_menus_are_ic_ir_and_optimal(values, tier_specs, data):
    probs = data.draw(st.lists(st.floats(0.05, 1.0), min_size=len(values), max_size=len(values)))
    types, tiers = instance(values, probs, tier_specs)
    rev = design_menu(types, tiers, "revenue")
    wel = design_menu(types, tiers, "welfare")
    for m in (rev, wel):
        assert m.ic_violation() <= 1e-9
        assert m.ir_violation() <= 1e-9
        rents = [i.rent for i in m.items]  # types come sorted by value
        assert all(a <= b + 1e-9 for a, b in itertools.pairwise(rents))
        assert (
            abs(
                m.revenue
                + sum(t.probability * i.rent for t, i in zip(m.types, m.items, strict=True))
                - m.welfare
            )
            <= 1e-9
        )  # welfare = profit + rents
    first_best = sum(
        t.probability * max(0.0, *(t.value * x.quality - x.cost for x in tiers)) for t in types
    )
    assert wel.welfare == pytest.approx(first_best, abs=1e-9)
    assert rev.revenue == pytest.approx(brute_force_revenue(types, tiers), abs=1e-9)
    assert rev.revenue >= wel.revenue - 1e-9
    assert wel.welfare >= rev.welfare - 1e-9
    silent_rev, silent_w = silent_routing(types, tiers)
    assert rev.revenue >= silent_rev - 1e-9
    assert silent_w <= first_best + 1e-9


def test_information_rent_and_virtual_value_hand_computed():
    # V = 2, 4, 6 with probabilities .2 .3 .5; one tier q = 1 at cost 1, one q = 0.5 free
    types = [UserType("a", 2.0, 0.2), UserType("b", 4.0, 0.3), UserType("c", 6.0, 0.5)]
    phi = virtual_values(types)
    assert phi == pytest.approx([2 - 2 * 0.8 / 0.2, 4 - 2 * 0.5 / 0.3, 6.0])
    tiers = [Tier("cheap", 0.5, 0.0), Tier("frontier", 1.0, 1.0)]
    m = design_menu(types, tiers)
    # φ_a = -6 -> excluded; φ_b = 2/3: cheap gives .33 > frontier .67 - 1; top: frontier
    assert [i.tier for i in m.items] == [None, "cheap", "frontier"]
    # prices: p_b = 4·0.5 = 2 (IR binds), p_c = 2 + 6·0.5 = 5 (IC binds downward)
    assert [i.price for i in m.items] == pytest.approx([0.0, 2.0, 5.0])
    assert m.rents == pytest.approx({"a": 0.0, "b": 0.0, "c": 1.0})
    assert m.revenue == pytest.approx(0.3 * 2 + 0.5 * 4)
    # the top type is not distorted; b gets less quality than efficient (frontier: 3 > 2)
    w = design_menu(types, tiers, "welfare")
    assert [i.tier for i in w.items] == ["cheap", "frontier", "frontier"]


def test_menu_input_errors():
    with pytest.raises(InputError, match="sum to 1"):
        design_menu([UserType("a", 1.0, 0.5)], [Tier("x", 1.0, 0.0)])
    with pytest.raises(InputError, match="objective"):
        design_menu([UserType("a", 1.0, 1.0)], [Tier("x", 1.0, 0.0)], "profit")
    with pytest.raises(InputError, match="cost"):
        Tier("x", 1.0, -1.0)
