"""Shared fixtures: a small economy and one run of it with both ledgers (session-scoped)."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from margin.economy import EconomyConfig, EconomyResult, run_economy
from margin.ledger.records import LedgerRecord

SMALL = {
    "n_coding": 12,
    "horizon_s": 240.0,
    "interval_s": 60.0,
    "chat_rate": 0.5,
    "long_rate": 0.05,
    "replicas": 2,
}


def _small(seed: int = 0, **changes: object) -> EconomyConfig:
    return EconomyConfig.from_dict({**SMALL, "seed": seed, **changes})


@pytest.fixture(scope="session")
def small_config() -> Callable[..., EconomyConfig]:
    """``small_config(seed, **changes)``: a 12-task economy that runs in a few seconds."""
    return _small


@pytest.fixture(scope="session")
def economy_run() -> tuple[EconomyResult, list[LedgerRecord], list[LedgerRecord]]:
    siloed: list[LedgerRecord] = []
    shared: list[LedgerRecord] = []
    result = run_economy(_small(0), sink_siloed=siloed, sink_shared=shared)
    return result, siloed, shared
