"""Each Table 2 detector fires on a planted failure and stays silent on the Eq. 1 choice."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings, strategies as st

from margin.core.allocation import allocate
from margin.core.prices import InputError, Option, PriceVector
from margin.diagnose import DETECTORS, diagnose, make_detector
from margin.ledger.records import LedgerRecord

CHEAP = Option("cheap", 0.7, 1.0, risk=0.05)
FRONTIER = Option("frontier", 0.9, 5.0, risk=0.01)


def rec(
    layer: str, choice: str, options: tuple[Option, ...], prices: PriceVector, **attrs: Any
) -> LedgerRecord:
    return LedgerRecord(
        request_id="r", layer=layer, choice=choice, options=options, prices=prices, attributes=attrs
    )


def flagged(records: list[LedgerRecord]) -> dict[str, tuple[int, float]]:
    return {f.mode: (f.count, f.loss) for f in diagnose(records) if f.count}


def test_over_and_under_routing() -> None:
    low, high = PriceVector(10.0), PriceVector(100.0)
    assert flagged([rec("routing", "frontier", (CHEAP, FRONTIER), low)]) == {
        "over-routing": (1, pytest.approx(2.0))
    }
    # With risk priced at ρ = 50 the crossover is V* = 10: cheap at V = 100 under-routes.
    risky = PriceVector(100.0, risk_price=50.0)
    out = flagged([rec("routing", "cheap", (CHEAP, FRONTIER), risky)])
    assert out == {"under-routing": (1, pytest.approx(84.5 - 66.5))}
    # The Eq. 1 choice is never flagged.
    for p in (low, high, risky):
        choice = allocate(p, [CHEAP, FRONTIER]).choice
        assert choice is not None
        assert flagged([rec("routing", choice, (CHEAP, FRONTIER), p)]) == {}


def test_agent_modes() -> None:
    act = Option("act", quality=0.9, cost=0.0, risk=0.02, irreversible_risk=0.02)
    ask = Option("ask", quality=0.9, cost=2.0)
    p = PriceVector(50.0, risk_price=100.0, irreversible_risk_price=400.0)
    assert flagged([rec("agent", "act", (act, ask), p)]) == {
        "over-delegation": (1, pytest.approx(8.0))
    }
    assert flagged([rec("agent", "ask", (act, ask), p)]) == {}
    verify = Option("verify", quality=0.2, cost=0.5)
    stop = Option("stop", quality=0.0, cost=0.0)
    p2 = PriceVector(20.0)
    assert flagged([rec("agent", "stop", (verify, stop), p2, verify_tokens=0)]) == {
        "under-verification": (1, pytest.approx(3.5))
    }
    # Verification already paid for, or worthless at this V: no finding.
    assert flagged([rec("agent", "stop", (verify, stop), p2, verify_tokens=900)]) == {}
    assert flagged([rec("agent", "stop", (verify, stop), PriceVector(1.0))]) == {}


def test_serving_capital_modes() -> None:
    serve = (Option("serve", 1.0, 0.01),)
    p = PriceVector(1.0, latency_price=0.5)
    assert flagged([rec("serving", "serve", serve, p, external_delay_s=4.0)]) == {
        "serving-congestion": (1, pytest.approx(2.0))
    }
    assert (
        flagged([rec("serving", "serve", serve, p, external_delay_s=4.0, congestion_charge=2.0)])
        == {}
    )
    admit = (Option("admit", 0.0, 0.0), Option("drop", 0.0, 0.0))
    assert flagged([rec("capital", "admit", admit, p, depreciation=0.3, gain=0.1)]) == {
        "stale-rollouts": (1, pytest.approx(0.2))
    }
    assert flagged([rec("capital", "admit", admit, p, depreciation=0.1, gain=0.3)]) == {}
    reuse = (Option("reuse", 0.6, 0.0), Option("recompute", 0.9, 0.2))
    assert flagged([rec("capital", "reuse", reuse, PriceVector(10.0))]) == {
        "cache-misuse": (1, pytest.approx(2.8))
    }
    assert flagged([rec("capital", "reuse", reuse, PriceVector(0.1))]) == {}


@settings(max_examples=200, deadline=None)
@given(
    v=st.floats(0.0, 1e3),
    rho=st.floats(0.0, 100.0),
    qs=st.lists(st.floats(0.0, 1.0), min_size=2, max_size=5),
    cs=st.lists(st.floats(0.0, 10.0), min_size=5, max_size=5),
)
def test_eq1_choice_is_never_a_routing_failure(
    v: float, rho: float, qs: list[float], cs: list[float]
) -> None:
    opts = tuple(Option(f"m{i}", q, cs[i], risk=1 - q) for i, q in enumerate(qs))
    p = PriceVector(v, risk_price=rho)
    choice = allocate(p, opts).choice
    assert choice is not None
    assert flagged([rec("routing", choice, opts, p)]) == {}


def test_registry_and_json() -> None:
    assert set(DETECTORS) == {
        "over-routing",
        "under-routing",
        "over-delegation",
        "under-verification",
        "serving-congestion",
        "stale-rollouts",
        "cache-misuse",
    }
    finding = make_detector("over-routing").detect(
        [rec("routing", "frontier", (CHEAP, FRONTIER), PriceVector(10.0))]
    )
    out = finding.to_json()
    assert out["count"] == 1 and out["examples"][0]["better"] == "cheap"
    with pytest.raises(InputError, match="unknown mode"):
        make_detector("over-thinking")


def test_choice_outside_recorded_options_is_skipped() -> None:
    # Telemetry imports know the model that ran but not always the alternatives.
    r = LedgerRecord(
        request_id="t", layer="routing", choice="gpt-x", options=(CHEAP,), prices=PriceVector(10.0)
    )
    assert flagged([r]) == {}
