from __future__ import annotations

import math

import numpy as np
import pytest

from margin.capital.cache import (
    CACHE_POLICIES,
    MISS,
    CachePolicy,
    LFUPolicy,
    LRUPolicy,
    PricedPolicy,
    ReuseRule,
    make_cache_policy,
    replay,
)
from margin.capital.depreciation import trace_depreciation
from margin.capital.trace import MooncakeTrace, Provenance, ValueModel, load_mooncake
from margin.core.allocation import allocate
from margin.core.prices import InputError, PriceVector
from margin.ledger.records import LedgerRecord


def _run(policy: CachePolicy, blocks: list[int], values: list[float] | None = None) -> list[bool]:
    vals = values or [1.0] * len(blocks)
    return [
        policy.access(b, 512, v, i, False) != MISS
        for i, (b, v) in enumerate(zip(blocks, vals, strict=True))
    ]


def test_lru_eviction_order() -> None:
    p = LRUPolicy(3)
    hits = _run(p, [1, 2, 3, 1, 4, 2, 1, 3])
    # 4 evicts 2 (LRU after 1 was touched); 2 evicts 3; 1 hits; 3 evicts 4
    assert hits == [False, False, False, True, False, False, True, False]
    assert {b for b in (1, 2, 3, 4) if b in p} == {1, 2, 3}
    assert p.evictions == 3


def test_lfu_eviction_order() -> None:
    p = LFUPolicy(2)
    hits = _run(p, [1, 1, 2, 3, 2, 1])
    # 3 evicts 2 (count 1 < 2); 2 evicts 3 (count 1); 1 survives throughout
    assert hits == [False, True, False, False, False, True]
    assert 1 in p and 2 in p and 3 not in p
    assert p.evictions == 2


def test_priced_keeps_high_value_and_refuses_low_value_admission() -> None:
    p = PricedPolicy(2, depreciation=0.0, discount=0.999)
    hits = _run(p, [1, 2, 3, 4, 1, 2], values=[10.0, 1.0, 5.0, 0.5, 10.0, 1.0])
    # 3 (V=5) displaces 2 (V=1); neither 4 (V=0.5) nor the returning 2 (V=1) is worth
    # displacing 3: they are not written
    assert hits == [False, False, False, False, True, False]
    assert 1 in p and 3 in p and 4 not in p and 2 not in p
    assert p.evictions == 1


def test_priced_depreciation_makes_it_recency_driven() -> None:
    # with a large δ the old high-value block loses to a fresh low-value one
    p = PricedPolicy(1, depreciation=1.0)
    _run(p, [1], [10.0])
    assert p.access(2, 512, 1.0, 10, False) == MISS
    assert 2 in p and 1 not in p


def test_priced_write_cost_blocks_admission() -> None:
    p = PricedPolicy(4, depreciation=0.1, discount=1.0, write_cost=1e9)
    _run(p, [1, 1])
    assert 1 not in p and len(p) == 0


def test_registry_and_factory() -> None:
    assert set(CACHE_POLICIES) == {"lru", "lfu", "priced"}
    with pytest.raises(InputError, match="unknown cache policy"):
        make_cache_policy("fifo", 4)
    with pytest.raises(InputError, match="depreciation"):
        make_cache_policy("priced", 4)
    with pytest.raises(InputError, match="capacity_blocks"):
        make_cache_policy("lru", 0)


def test_reuse_rule_agrees_with_eq1_allocate() -> None:
    rule = ReuseRule(quality_loss_per_log_value=1e-3, prefill_price_per_token=1e-6)
    for reader, writer in [(1.0, 1.0), (2.0, 1.0), (50.0, 1.0), (3.0, 9.0), (400.0, 2.0)]:
        opts = rule.options(reader, writer, 512)
        choice = allocate(PriceVector(value=reader), list(opts)).choice
        assert (choice == "reuse") == rule.allows(reader, writer, 512)
    assert rule.allows(3.0, 9.0, 512)  # a lower-value reader never loses quality
    assert not rule.allows(400.0, 2.0, 512)


def _hand_trace() -> tuple[MooncakeTrace, Provenance]:
    reqs = [[0, 1, 2], [0, 1, 2, 3], [0, 5], [0, 1, 2, 3, 4]]
    inp = [1300, 1900, 700, 2100]
    t = MooncakeTrace.from_requests(reqs, input_length=inp)
    prov = Provenance(
        value=np.array([1.0, 1.0, 100.0, 1.0]),
        tenant=np.array([0, 0, 1, 0]),
        conversation=np.array([1, 1, 5, 1]),
        tenant_names=("a", "b"),
    )
    return t, prov


def test_lru_hit_accounting_token_level() -> None:
    t, prov = _hand_trace()
    rule = ReuseRule(quality_loss_per_log_value=0.0)  # no misuse possible
    r = replay(t, "lru", 100, values=prov, rule=rule)
    # block tokens: [512,512,276], [512,512,512,364], [512,188], [512,512,512,512,52]
    # hits: req1 -> 0,1,2 (512+512+512: block 2 is full here), req2 -> 0, req3 -> 0,1,2,3
    hit_tokens = (512 + 512 + 512) + 512 + (512 * 4)
    assert r.hit_rate == pytest.approx(hit_tokens / 6000)
    assert r.block_hit_rate == pytest.approx(8 / 14)
    assert r.evictions == 0 and r.misuse_events == 0
    assert r.value_saved == pytest.approx(1536 * 1.0 + 512 * 100.0 + 2048 * 1.0)
    assert r.hit_rate_by_tenant["b"] == pytest.approx(512 / 700)


def test_misuse_counted_by_lru_refused_by_priced() -> None:
    t, prov = _hand_trace()
    rule = ReuseRule(quality_loss_per_log_value=1e-3, prefill_price_per_token=1e-6)
    sink: list[LedgerRecord] = []
    lru = replay(t, "lru", 100, values=prov, rule=rule, sink=sink)
    # request 2 (V=100) reuses block 0 written at V=1: 100·1e-3·ln 100 > 1e-6·512
    assert lru.misuse_events == 1 and lru.refused_reuses == 0
    assert lru.misuse_loss == pytest.approx(100 * 1e-3 * math.log(100))
    flagged = [r for r in sink if r.attributes["cache_misuse"]]
    assert len(flagged) == 1 and flagged[0].layer == "capital"
    assert flagged[0].attributes["value_mismatch_log"] == pytest.approx(math.log(100))
    assert flagged[0].prices.value == 100.0
    dep = trace_depreciation(t)
    sink2: list[LedgerRecord] = []
    pr = replay(t, "priced", 100, values=prov, rule=rule, depreciation=dep, sink=sink2)
    assert pr.misuse_events == 0 and pr.refused_reuses == 1
    assert not any(r.attributes["cache_misuse"] for r in sink2)
    assert any(r.attributes["refused_blocks"] == 1 for r in sink2)


def test_replay_evicts_under_small_capacity() -> None:
    t, prov = _hand_trace()
    r = replay(t, "lru", 3, values=prov)
    assert r.evictions > 0
    assert r.hit_rate < replay(t, "lru", 100, values=prov).hit_rate


@pytest.mark.data
def test_mooncake_priced_beats_lru_on_value(shared_data) -> None:  # type: ignore[no-untyped-def]
    full = load_mooncake(shared_data("serving/mooncake_conversation_trace.jsonl"))
    n = 4000  # a prefix of the trace keeps the test fast
    end = int(full.offsets[n])
    t = MooncakeTrace(
        timestamp_ms=full.timestamp_ms[:n],
        input_length=full.input_length[:n],
        output_length=full.output_length[:n],
        offsets=full.offsets[: n + 1],
        block_ids=full.block_ids[:end],
        block_tokens=full.block_tokens[:end],
        source="mooncake[:4000]",
    )
    prov = ValueModel().attach(t)
    dep = trace_depreciation(t)
    out = {p: replay(t, p, 4096, values=prov, depreciation=dep) for p in ("lru", "lfu", "priced")}
    assert out["priced"].value_saved > out["lru"].value_saved
    assert out["priced"].value_saved > out["lfu"].value_saved
    assert out["priced"].hit_rate > out["lru"].hit_rate - 0.02
    assert out["lru"].misuse_events > 0 and out["priced"].misuse_events == 0
