"""The capital layer's value-aware prefix eviction (PricedPolicy's ranking) in a serving
prefix cache."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from margin.capital.cache import PricedPolicy, PricedPrefixEviction
from margin.core.prices import InputError


def test_victim_is_the_lowest_expected_discounted_reuse_value() -> None:
    """W_b ∝ V·n·p̂·e^{−(δ+r)(t−t_b)}: with δ + r = ln 2 per second, a block of V = 8
    unreferenced 4 s earlier is worth 8/16 = 0.5 against 1.0 for a fresh V = 1 block."""
    p = PricedPrefixEviction(depreciation=math.log(2.0), discount=1.0)
    p.written(1, 8.0, 512, 0.0, -1)
    p.written(2, 1.0, 512, 4.0, -1)
    p.written(3, 2.0, 512, 4.0, -1)
    assert len(p) == 3
    assert [p.victim(), p.victim(), p.victim()] == [1, 2, 3]
    assert len(p) == 0
    with pytest.raises(InputError, match="no unreferenced block"):
        p.victim()


def test_tokens_enter_the_value_and_referenced_blocks_are_never_victims() -> None:
    p = PricedPrefixEviction(depreciation=0.0, discount=1.0)
    p.written(1, 1.0, 100, 0.0, -1)  # V·n = 100
    p.written(2, 1.0, 512, 0.0, -1)  # V·n = 512
    p.written(3, 0.1, 512, 0.0, -1)  # V·n = 51.2
    p.hit(3, 1.0)  # referenced: not evictable
    assert len(p) == 2
    assert p.victim() == 1
    p.unreferenced(3, 2.0)
    assert len(p) == 2
    assert p.victim() == 3
    assert p.value_of(2) == 1.0 and p.value_of(3) is None


def test_hits_raise_the_reuse_probability_estimate() -> None:
    """p̂(k) is PricedPolicy's Laplace-smoothed count of blocks hit again."""
    p = PricedPrefixEviction(depreciation=0.0, discount=1.0)
    for b in range(4):
        p.written(b, 1.0, 512, 0.0, -1)
    for b in (0, 1):
        p.hit(b, 1.0)
        p.unreferenced(b, 1.0)
    # blocks 2 and 3 keep the p̂(0) of their write (0.5/4, 0.5/5); blocks 0 and 1, hit
    # once, are re-keyed at p̂(1) = 0.5/3 when released; p̂(0) has risen to 2.5/5
    assert p._rank.reuse_probability(1, False) == pytest.approx(0.5 / 3)
    assert p._rank.reuse_probability(0, False) == pytest.approx(2.5 / 5)
    assert {p.victim(), p.victim()} == {2, 3}


def test_shares_priced_policy_counts() -> None:
    """The prefix policy's ranking is PricedPolicy's: same rate, same p̂ bookkeeping."""
    pp = PricedPrefixEviction(depreciation=0.01, discount=0.99)
    ref = PricedPolicy(8, depreciation=0.01, discount=0.99)
    assert pp._rank.rate == pytest.approx(ref.rate)
    pp.written(7, 3.0, 512, 0.0, -1)
    ref.access(7, 512, 3.0, 0, False)
    pp.hit(7, 1.0)
    ref.access(7, 512, 3.0, 1, False)
    assert pp._rank._seen == ref._seen and pp._rank._again == ref._again


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.floats(0.01, 1e3), min_size=2, max_size=30),
    st.data(),
    st.floats(1.0, 100.0),
)
def test_a_more_valuable_block_is_never_evicted_earlier(
    values: list[float], data: st.DataObject, factor: float
) -> None:
    """Monotone comparative static: raising one block's writer value V (all else equal)
    can only move it later in the eviction order."""
    i = data.draw(st.integers(0, len(values) - 1))

    def position(vals: list[float]) -> int:
        p = PricedPrefixEviction(depreciation=0.01, discount=0.99)
        for b, v in enumerate(vals):
            p.written(b, v, 512, float(b), -1)
        return [p.victim() for _ in vals].index(i)

    raised = list(values)
    raised[i] *= factor
    assert position(raised) >= position(values)


def test_priced_keeps_the_high_value_blocks_in_the_simulator() -> None:
    """The serving simulator with this policy (plugged in as a factory). A (V = 100) and
    B (V = 0.01) leave 4 cache entries each; C (V = 1) needs 4 evicted: priced drops B's
    (LRU would drop A's, see tests/serving/test_prefix.py), so A' reuses 63 tokens; B'
    then evicts C's entries, not A's."""
    from margin.serving.prefix import PrefixEviction
    from margin.serving.schedulers import FCFS
    from margin.serving.simulator import ServingConfig, Simulator
    from margin.serving.traces import Trace

    blocks = [[1, 2, 3, 4], [5, 6, 7, 8], list(range(10, 18)), [1, 2, 3, 4], [5, 6, 7, 8]]
    off = np.concatenate([[0], np.cumsum([len(b) for b in blocks])])
    trace = Trace(
        arrival=np.arange(5) * 10.0,
        prompt=np.array([64, 64, 128, 64, 64]),
        output=np.ones(5, dtype=np.int64),
        value=np.array([100.0, 0.01, 1.0, 100.0, 0.01]),
        hash_offsets=off,
        hash_ids=np.concatenate([np.array(b) for b in blocks]),
        hash_block_tokens=16,
    )
    cfg = ServingConfig(replicas=1, kv_blocks=13, watermark_blocks=0, block_size=16)
    pols: list[PricedPrefixEviction] = []

    def factory() -> PricedPrefixEviction:
        pols.append(PricedPrefixEviction(depreciation=1e-3, discount=0.999, block_tokens=16))
        return pols[-1]

    assert isinstance(factory(), PrefixEviction)
    pols.clear()
    res = Simulator(cfg, eviction=factory).run(trace, FCFS())
    assert res.cached_tokens.tolist() == [0, 0, 0, 63, 0]
    assert res.prefix_evictions == 8 and res.prefix_policy == "priced"
    assert pols[0].value_of(1) == 100.0 and pols[0].value_of(5) == 0.01
