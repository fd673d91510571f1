"""The prefix cache's eviction strategy: protocol, registry, LRU unchanged."""

from __future__ import annotations

import numpy as np
import pytest

from margin.core.prices import InputError
from margin.serving.prefix import (
    PREFIX_EVICTIONS,
    LRUEviction,
    PrefixEviction,
    make_prefix_eviction,
)
from margin.serving.schedulers import FCFS, PricedScheduler
from margin.serving.simulator import ServingConfig, Simulator
from margin.serving.traces import Trace


def _pressure_trace(values: tuple[float, float, float, float, float]) -> Trace:
    """A (V=values[0], 4 blocks), B (values[1], 4 blocks), C (8 new blocks, forces four
    evictions), then A' and B' repeating A's and B's prompts; one request at a time."""
    blocks = [[1, 2, 3, 4], [5, 6, 7, 8], list(range(10, 18)), [1, 2, 3, 4], [5, 6, 7, 8]]
    off = np.concatenate([[0], np.cumsum([len(b) for b in blocks])])
    return Trace(
        arrival=np.arange(5) * 10.0,
        prompt=np.array([64, 64, 128, 64, 64]),
        output=np.ones(5, dtype=np.int64),
        value=np.array(values),
        hash_offsets=off,
        hash_ids=np.concatenate([np.array(b) for b in blocks]),
        hash_block_tokens=16,
    )


# one hash block = one KV block; 13 blocks: A and B cached (8) leave 5, C needs 9
_TINY = ServingConfig(replicas=1, kv_blocks=13, watermark_blocks=0, block_size=16)


def test_lru_default_registry_and_config_validation() -> None:
    assert ServingConfig().prefix_eviction == "lru"
    assert PREFIX_EVICTIONS["lru"] is LRUEviction
    assert isinstance(make_prefix_eviction("lru")(), PrefixEviction)
    with pytest.raises(InputError, match=r"prefix_eviction.*unknown policy 'mru'"):
        ServingConfig(prefix_eviction="mru")
    with pytest.raises(InputError, match="prefix_eviction"):
        ServingConfig.from_dict({"prefix_eviction": 3})


def test_lru_evicts_the_oldest_unreferenced_blocks_by_hand() -> None:
    """C's admission needs 9 blocks with 5 free: LRU drops A's four entries (written
    first). C then caches 8 entries (12 cached, 1 free), so A' (no hit, needs 5) drops the
    next-oldest four, B's, and B' drops C's oldest four: nothing is ever reused."""
    res = Simulator(_TINY).run(_pressure_trace((100.0, 0.01, 1.0, 100.0, 0.01)), FCFS())
    assert res.completed.all()
    assert res.cached_tokens.tolist() == [0, 0, 0, 0, 0]
    assert res.prefix_policy == "lru"
    assert res.prefix_evictions == 12


class _MostRecentlyUsed:
    """A test-only strategy (MRU) proving the simulator follows the factory's order."""

    name = "mru"

    def __init__(self) -> None:
        self.order: list[int] = []
        self.written_values: dict[int, float] = {}

    def victim(self) -> int:
        return self.order.pop()

    def written(self, block: int, value: float, tokens: int, now: float, parent: int) -> None:
        self.written_values[block] = value
        self.order.append(block)

    def hit(self, block: int, now: float) -> None:
        if block in self.order:
            self.order.remove(block)

    def unreferenced(self, block: int, now: float) -> None:
        self.order.append(block)

    def __len__(self) -> int:
        return len(self.order)


def test_simulator_follows_a_custom_strategy_and_reports_writer_values() -> None:
    made: list[_MostRecentlyUsed] = []

    def factory() -> _MostRecentlyUsed:
        made.append(_MostRecentlyUsed())
        return made[-1]

    res = Simulator(_TINY, eviction=factory).run(
        _pressure_trace((100.0, 0.01, 1.0, 100.0, 0.01)), FCFS()
    )
    assert len(made) == 1 and isinstance(made[0], PrefixEviction)
    # MRU drops B's entries (most recent) for C: A' hits, B' does not
    assert res.cached_tokens.tolist()[3] == 63
    assert res.cached_tokens.tolist()[4] == 0
    assert res.prefix_policy == "mru"
    assert made[0].written_values[1] == 100.0 and made[0].written_values[10] == 1.0


def test_lru_strategy_is_bit_identical_to_the_built_in_lru(shared_data) -> None:  # type: ignore[no-untyped-def]
    """Reference figures of the simulator before eviction became a strategy, from the
    default (inline) LRU and from LRU through the protocol's methods (FCFS and priced
    scheduling on 800 Mooncake requests, two replicas of 3,000 KV blocks, 0.3x
    the real rate: 14,825 and 110 evictions)."""
    from margin.serving.traces import load_mooncake

    t = load_mooncake(shared_data("serving/mooncake_conversation_trace.jsonl")).head(800)
    ref = {
        "fcfs": (364032, 7877615, 22, 82107, 5737, 626133.9366393653, 41),
        "priced": (104813, 144794, 0, 53736, 4960, 760.6648614957086, 610),
    }

    class ThroughProtocol(LRUEviction):
        """LRU driven through the protocol's methods (not the simulator's inline path)."""

    runs = [
        (name, sched, factory)
        for name, sched in (("fcfs", FCFS()), ("priced", PricedScheduler()))
        for factory in (None, ThroughProtocol)
    ]
    for name, sched, factory in runs:
        sim = Simulator(ServingConfig(replicas=2, kv_blocks=3000), eviction=factory)
        res = sim.run(t.scaled(0.3), sched)
        got = (
            int(res.cached_tokens.sum()),
            int(res.prefill_tokens.sum()),
            res.preemptions,
            res.iterations,
            res.events,
            float(np.nansum(res.ttft)),
            int(res.rejected.sum()),
        )
        assert got == ref[name]
        assert res.prefix_evictions > 100
