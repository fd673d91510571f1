"""Fixtures for the ledger tests."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from margin.core.prices import Option, PriceVector
from margin.ledger.records import LedgerRecord, Outcome, TokenUsage


def _make(i: int = 0, **kw: Any) -> LedgerRecord:
    base: dict[str, Any] = {
        "request_id": f"req-{i}",
        "layer": "routing",
        "choice": "cheap",
        "options": (
            Option("cheap", 0.7, 1.0, latency=0.5, risk=0.05),
            Option("frontier", 0.9, 5.0, latency=2.0, risk=0.01, irreversible_risk=0.002),
        ),
        "prices": PriceVector(100.0, latency_price=0.1, risk_price=50.0),
        "tenant": "acme",
        "usage": TokenUsage(input=120, cached_input=1000, cache_write=30, output=44, reasoning=256),
        "cost_nanos": 1_234_567 + i,
        "outcome": Outcome(quality=1.0, cost_nanos=1_234_000, latency=0.61, risk=0.0),
        "ex_post_optimal": "frontier",
        "regret": 16.0,
        "timestamp": 1_700_000_000.25 + i,
        "record_id": f"rec-{i:06d}",
        "attributes": {"action_class": "read", "queue": [1, 2.5, None], "nested": {"a": True}},
    }
    base.update(kw)
    return LedgerRecord(**base)


@pytest.fixture
def make_record() -> Callable[..., LedgerRecord]:
    """``make_record(i, **overrides)`` -> a LedgerRecord with every field set."""
    return _make
