from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, strategies as st

from margin.core.prices import InputError
from margin.serving.costmodel import DistServeCostModel
from margin.serving.predictor import OutputLengthPredictor
from margin.serving.schedulers import SJF
from margin.serving.speculative import SpeculationPolicy, expected_tokens, speculative_speedup
from margin.serving.traces import Trace, synthetic_trace


@given(alpha=st.floats(0.0, 0.999), gamma=st.integers(1, 8))
def test_expected_tokens_is_geometric_sum(alpha, gamma):
    assert expected_tokens(alpha, gamma) == pytest.approx(sum(alpha**i for i in range(gamma + 1)))


@given(a1=st.floats(0.0, 0.98), a2=st.floats(0.0, 0.98), gamma=st.integers(1, 8))
def test_speedup_monotone_in_acceptance(a1, a2, gamma):
    lo, hi = sorted((a1, a2))
    assert speculative_speedup(lo, gamma, 0.05, 1.0) <= speculative_speedup(hi, gamma, 0.05, 1.0)


def test_speculation_turns_off_with_load():
    pol = SpeculationPolicy(DistServeCostModel.default(), gamma=4, draft_cost=0.05)
    assert pol.verify_cost(1, 1000) < pol.verify_cost(64, 1000)
    off = pol.turn_off_batch(0.4, 1000)
    assert off is not None and 1 < off < 4096
    assert pol.enabled(0.4, off - 1, 1000) and not pol.enabled(0.4, off, 1000)
    assert pol.turn_off_batch(0.05, 1000) == 1
    with pytest.raises(InputError):
        expected_tokens(1.5, 2)


def test_predictor_ranks_tenant_lengths():
    rng = np.random.default_rng(0)
    n = 2000
    tenant = rng.integers(0, 3, n)
    out = np.maximum(1, (np.array([20, 200, 800])[tenant] * rng.lognormal(0, 0.3, n))).astype(int)
    t = Trace(
        arrival=np.arange(n, dtype=float),
        prompt=rng.integers(10, 2000, n),
        output=out,
        tenant=tenant,
        tenants=("a", "b", "c"),
    )
    p = OutputLengthPredictor(max_iter=30).fit(t.head(1000))
    assert p.score(t.take(np.arange(1000, n))) > 0.6
    # SJF reports the ranking quality of its predictor
    sjf = SJF()
    sjf.priorities(t, DistServeCostModel.default())
    assert sjf.kendall_tau_ > 0.6
    with pytest.raises(InputError):
        OutputLengthPredictor().predict(synthetic_trace(5, rate=1.0))
