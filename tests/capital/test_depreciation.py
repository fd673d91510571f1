from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from margin.capital.depreciation import (
    DepreciationEstimator,
    reuse_spells,
    simulate_spells,
    trace_depreciation,
)
from margin.capital.trace import load_mooncake
from margin.core.prices import InputError


def test_reuse_spells_hand_computed() -> None:
    d, r = reuse_spells([1, 2, 1, 1, 3], [0.0, 1.0, 2.0, 7.0, 8.0], horizon=10.0)
    assert d.tolist() == [2.0, 9.0, 5.0, 3.0, 2.0]
    assert r.tolist() == [True, False, True, False, False]


@settings(max_examples=10, deadline=None)
@given(
    delta=st.floats(0.005, 0.1),
    ratio=st.floats(0.5, 3.0),
)
def test_estimator_recovers_known_hazard(delta: float, ratio: float) -> None:
    rng = np.random.default_rng(1)
    h0 = ratio * delta
    d, r = simulate_spells(rng, 40_000, hazard0=h0, delta=delta, horizon=5.0 / delta)
    est = DepreciationEstimator().fit(d, r)
    assert est.delta_ == pytest.approx(delta, rel=0.12)
    assert est.hazard0_ == pytest.approx(h0, rel=0.12)
    assert est.never_reused_ == pytest.approx(np.exp(-ratio), abs=0.03)


def _synthetic_trace(path: Path, delta: float, h0: float, n_blocks: int, seed: int) -> Path:
    """One block per request; each block is reused with hazard h0·exp(−δ·age) after each
    access (age on the request clock, one request per time unit)."""
    rng = np.random.default_rng(seed)
    horizon = 3000.0
    events: list[tuple[float, int]] = []
    for b in range(n_blocks):
        t = rng.uniform(0, horizon)
        while t < horizon:
            events.append((t, b))
            e = rng.exponential()
            if e >= h0 / delta:
                break
            t += -np.log1p(-delta * e / h0) / delta
    events.sort()
    # the request clock is the event index: rescale the intended gaps onto it
    with path.open("w") as fh:
        for i, (_, b) in enumerate(events):
            fh.write(
                json.dumps(
                    {"timestamp": i, "input_length": 512, "output_length": 1, "hash_ids": [b]}
                )
                + "\n"
            )
    return path


def test_trace_depreciation_on_synthetic_trace_with_known_delta(tmp_path: Path) -> None:
    # events arrive at rate n_blocks·(1 + reuses)/horizon per time unit; the request clock
    # is the event index, so δ per request = δ_time / event_rate.
    delta, h0, n = 0.01, 0.02, 4000
    p = _synthetic_trace(tmp_path / "syn.jsonl", delta, h0, n, seed=3)
    t = load_mooncake(p)
    rate = t.n_requests / 3000.0
    dep = trace_depreciation(t)
    assert dep.per_request * rate == pytest.approx(delta, rel=0.15)
    # one request per millisecond: per minute = per request x 60,000
    assert dep.per_minute == pytest.approx(dep.per_request * 60_000, rel=1e-3)
    assert 0 < dep.reusable < 1


def test_estimator_rejects_bad_input() -> None:
    with pytest.raises(InputError, match="no block is ever reused"):
        DepreciationEstimator().fit([1.0, 2.0], [False, False])
    with pytest.raises(InputError, match="finite"):
        DepreciationEstimator().fit([1.0, np.nan], [True, False])


@pytest.mark.data
def test_mooncake_depreciation(shared_data) -> None:  # type: ignore[no-untyped-def]
    t = load_mooncake(shared_data("serving/mooncake_conversation_trace.jsonl"))
    dep = trace_depreciation(t)
    assert dep.reusable == pytest.approx(0.366, abs=0.01)  # ~37% reusable (README)
    assert 0.05 < dep.per_minute < 1.0
    assert 1e-4 < dep.per_request < 1e-2
