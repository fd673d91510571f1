"""The KV cache as priced inventory: eviction/admission policies, the Eq. 1 reuse rule,
and a trace replay that reports hit rate by value and tenant, value saved and misuse.

Sec. 3.4: a cache is inventory ``S_{t+1} = (1 − δ_S)·S_t + I_t`` (Eq. 10). Write a block
when the discounted expected savings exceed the cost of writing it; reuse a cached prefix
only when the reuse clears the Eq. 1 threshold; report δ_S and hit rate by V, not a bare
hit rate.

Policies follow one small protocol, :class:`CachePolicy`, and are registered by name in
:data:`CACHE_POLICIES`:

* ``lru`` — least recently used (evict the block idle the longest).
* ``lfu`` — least frequently used, ties by recency (evict the block with fewest accesses).
* ``priced`` — keeps blocks by expected discounted reuse value minus holding cost and
  admits by Eq. 10's rule; see :class:`PricedPolicy`.

Reuse rule (:class:`ReuseRule`). A block written for a request of value ``V_w`` carries
the quality that request paid for; the modelling assumption (the trace has no quality) is
that reusing it for a request of value ``V_r`` loses quality ``ℓ = ε·max(0, ln(V_r/V_w))``
(a cheaper KV tier, shorter context or looser guard chosen for a lower-value task). Eq. 1
compares *reuse* (ΔQ = −ℓ, ΔC = 0) with *recompute* (ΔQ = 0, ΔC = κ·tokens): reuse iff
``V_r·ℓ ≤ κ·tokens``. A reuse that fails the rule is a *cache misuse* (Table 2); the
priced policy refuses it and recomputes the block, which then carries ``V_r``.
"""

from __future__ import annotations

import heapq
import math
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

import numpy as np
import numpy.typing as npt

from margin.capital.depreciation import CacheDepreciation, trace_depreciation
from margin.capital.trace import MooncakeTrace, Provenance, ValueModel
from margin.core.prices import InputError, Option, PriceVector
from margin.ledger.records import LedgerRecord, RecordSink, TokenUsage

__all__ = [
    "CACHE_POLICIES",
    "BlockProvenance",
    "CachePolicy",
    "CacheReport",
    "LFUPolicy",
    "LRUPolicy",
    "PricedPolicy",
    "PricedPrefixEviction",
    "ReuseRule",
    "make_cache_policy",
    "replay",
]

MISS = -1.0

#: KV bytes per token of Llama-2-70B (80 layers x 8 KV heads x 128 dims x K,V x fp16).
LLAMA2_70B_KV_BYTES_PER_TOKEN = 2 * 80 * 8 * 128 * 2


@dataclass(frozen=True, slots=True)
class BlockProvenance:
    """Where a cached block came from: the writer's value V (USD), tenant and time."""

    value: float
    tenant: int
    written_at: float


@dataclass(frozen=True, slots=True)
class ReuseRule:
    """Eq. 1 threshold for reusing a block written at value ``V_w`` by a request of ``V_r``.

    ``reuse iff V_r·ε·max(0, ln(V_r/V_w)) ≤ κ·tokens``: the quality lost by reusing a
    block produced for a lower-value task must cost less than recomputing it.

    Parameters
    ----------
    quality_loss_per_log_value : float
        ε, quality lost per unit of ``ln(V_r/V_w)``.
    prefill_price_per_token : float
        κ, USD per recomputed prefill token.

    Examples
    --------
    >>> rule = ReuseRule(quality_loss_per_log_value=1e-4, prefill_price_per_token=2e-6)
    >>> rule.allows(reader=4.0, writer=2.0, tokens=512), rule.allows(40.0, 1.0, 512)
    (True, False)
    """

    quality_loss_per_log_value: float = 1e-4
    prefill_price_per_token: float = 2e-6

    def __post_init__(self) -> None:
        for name in ("quality_loss_per_log_value", "prefill_price_per_token"):
            v = getattr(self, name)
            if not (isinstance(v, int | float) and math.isfinite(v) and v >= 0):
                raise InputError(f"ReuseRule: field '{name}' must be a number >= 0, got {v!r}")

    def quality_loss(self, reader: float, writer: float) -> float:
        """ℓ = ε·max(0, ln(V_r/V_w))."""
        if reader <= writer or writer <= 0:
            return 0.0 if reader <= writer else math.inf
        return self.quality_loss_per_log_value * math.log(reader / writer)

    def allows(self, reader: float, writer: float, tokens: int) -> bool:
        """True when reuse clears Eq. 1: ``V_r·ℓ ≤ κ·tokens``."""
        return reader * self.quality_loss(reader, writer) <= (self.prefill_price_per_token * tokens)

    def options(self, reader: float, writer: float, tokens: int) -> tuple[Option, Option]:
        """The two Eq. 1 options, *reuse* and *recompute*, for the ledger."""
        loss = self.quality_loss(reader, writer)
        return (
            Option("reuse", quality=-min(loss, 1.0), cost=0.0),
            Option("recompute", quality=0.0, cost=self.prefill_price_per_token * tokens),
        )


@runtime_checkable
class CachePolicy(Protocol):
    """An eviction/admission policy over a cache of ``capacity`` blocks.

    The main method is :meth:`access`: look a block up and, on a miss, decide whether to
    write it (evicting as needed). ``rewrite`` replaces a cached block's provenance value
    (after a refused reuse the block is recomputed for the reader).
    """

    name: str
    capacity: int
    evictions: int
    enforces_reuse_rule: bool

    def access(self, block: int, tokens: int, value: float, now: int, last: bool) -> float:
        """Return the writer value of ``block`` if cached (a hit), else ``MISS`` (-1)."""
        ...

    def rewrite(self, block: int, value: float) -> None:
        """Set the provenance value of a cached ``block`` to ``value``."""
        ...


def _check_capacity(capacity: int) -> int:
    if isinstance(capacity, bool) or not isinstance(capacity, int) or capacity < 1:
        raise InputError(f"capacity_blocks: must be an integer >= 1, got {capacity!r}")
    return capacity


class LRUPolicy:
    """Least recently used: evict the block whose last access is oldest.

    Examples
    --------
    >>> p = LRUPolicy(2)
    >>> [p.access(b, 512, 1.0, i, False) >= 0 for i, b in enumerate([1, 2, 1, 3, 2, 1])]
    [False, False, True, False, False, False]
    """

    name = "lru"
    enforces_reuse_rule = False

    def __init__(self, capacity: int) -> None:
        self.capacity = _check_capacity(capacity)
        self.evictions = 0
        self._store: OrderedDict[int, float] = OrderedDict()

    def access(self, block: int, tokens: int, value: float, now: int, last: bool) -> float:
        store = self._store
        w = store.get(block)
        if w is not None:
            store.move_to_end(block)
            return w
        store[block] = value
        if len(store) > self.capacity:
            store.popitem(last=False)
            self.evictions += 1
        return MISS

    def rewrite(self, block: int, value: float) -> None:
        if block in self._store:
            self._store[block] = value

    def __contains__(self, block: object) -> bool:
        return block in self._store

    def __len__(self) -> int:
        return len(self._store)


class LFUPolicy:
    """Least frequently used (accesses since admission), ties broken by least recent.

    Examples
    --------
    >>> p = LFUPolicy(2)
    >>> [p.access(b, 512, 1.0, i, False) >= 0 for i, b in enumerate([1, 1, 2, 3, 2, 1])]
    [False, True, False, False, False, True]
    """

    name = "lfu"
    enforces_reuse_rule = False

    def __init__(self, capacity: int) -> None:
        self.capacity = _check_capacity(capacity)
        self.evictions = 0
        self._store: dict[int, list[Any]] = {}  # block -> [count, stamp, value]
        self._heap: list[tuple[int, int, int]] = []
        self._tick = 0

    def access(self, block: int, tokens: int, value: float, now: int, last: bool) -> float:
        self._tick += 1
        e = self._store.get(block)
        if e is not None:
            e[0] += 1
            e[1] = self._tick
            heapq.heappush(self._heap, (e[0], self._tick, block))
            return float(e[2])
        if len(self._store) >= self.capacity:
            heap, store = self._heap, self._store
            while True:
                cnt, stamp, b = heapq.heappop(heap)
                cur = store.get(b)
                if cur is not None and cur[0] == cnt and cur[1] == stamp:
                    del store[b]
                    self.evictions += 1
                    break
        self._store[block] = [1, self._tick, value]
        heapq.heappush(self._heap, (1, self._tick, block))
        return MISS

    def rewrite(self, block: int, value: float) -> None:
        e = self._store.get(block)
        if e is not None:
            e[2] = value

    def __contains__(self, block: object) -> bool:
        return block in self._store

    def __len__(self) -> int:
        return len(self._store)


class PricedPolicy:
    """Keep blocks by expected discounted reuse value minus holding cost (Eq. 10).

    The value of keeping block b at request clock t is

        W_b(t) = V_b·n_b·p̂(k_b, last_b)·exp(−(δ_S + r)·(t − t_b)) / (δ_S + r) − h/(δ_S + r)

    with V_b its provenance value, n_b its tokens, t_b its last access, k_b its hits,
    p̂(k, last) the online estimate of the probability that a block with k hits (and a
    request-final, partial block or not) is hit again (Laplace-smoothed counts of the
    hits observed so far), δ_S the depreciation rate per request (the
    :class:`~margin.capital.DepreciationEstimator` fit), r = −ln β the discount rate per
    request and h the holding cost per block and request. Because exp(−(δ+r)(t−t_b))
    factors, blocks are ranked by the static key ``ln(V_b·n_b·p̂) + (δ+r)·t_b`` in a heap;
    the block with the lowest key is the victim.

    Admission (Eq. 10's investment rule): a missed block is written iff its discounted
    expected savings exceed the write cost plus holding cost, ``W_new > c_w·n``, and —
    when the cache is full — exceed the value of the block it would displace.

    Examples
    --------
    A full cache of one high-value block keeps it against a low-value newcomer:

    >>> p = PricedPolicy(1, depreciation=0.0, discount=0.999)
    >>> p.access(1, 512, 10.0, 0, False), p.access(2, 512, 0.1, 1, False)
    (-1.0, -1.0)
    >>> p.access(1, 512, 10.0, 2, False)
    10.0
    """

    name = "priced"
    enforces_reuse_rule = True

    def __init__(
        self,
        capacity: int,
        *,
        depreciation: float,
        discount: float = 0.995,
        write_cost: float = 0.0,
        holding_cost: float = 0.0,
        max_hits: int = 16,
    ) -> None:
        self.capacity = _check_capacity(capacity)
        if not (math.isfinite(depreciation) and depreciation >= 0):
            raise InputError(f"priced: field 'depreciation' must be >= 0, got {depreciation}")
        if not 0 < discount <= 1:
            raise InputError(f"priced: field 'discount' must be in (0, 1], got {discount}")
        for nm, v in (("write_cost", write_cost), ("holding_cost", holding_cost)):
            if not (math.isfinite(v) and v >= 0):
                raise InputError(f"priced: field '{nm}' must be >= 0, got {v}")
        self.evictions = 0
        self.rate = depreciation - math.log(discount)
        self.write_cost = write_cost
        self.holding_cost = holding_cost
        self.max_hits = max_hits
        # block -> [key, hits, value, version, last_flag]
        self._store: dict[int, list[Any]] = {}
        self._heap: list[tuple[float, int, int]] = []
        self._seen = [[0] * (max_hits + 1) for _ in range(2)]
        self._again = [[0] * (max_hits + 1) for _ in range(2)]
        self._version = 0

    def reuse_probability(self, hits: int, last: bool) -> float:
        """p̂(k, last): smoothed share of blocks with k hits that were hit again."""
        k = min(hits, self.max_hits)
        seen, again = self._seen[int(last)][k], self._again[int(last)][k]
        return (again + 0.5) / (seen + 1.0)

    def _key(self, value: float, tokens: int, p: float, now: float) -> float:
        """Heap key ``ln(V·n·p̂) + (δ_S + r)·t`` (−∞ for a worthless block)."""
        x = value * tokens * p
        return math.log(x) + self.rate * now if x > 0 else -math.inf

    def _count_hit(self, hits: int, row: int) -> float:
        """Count a hit of a block that had ``hits`` hits; returns p̂ at its new count."""
        k = hits if hits < self.max_hits else self.max_hits
        again, seen = self._again[row], self._seen[row]
        again[k] += 1
        if k < self.max_hits:
            k += 1
        seen[k] += 1
        return (again[k] + 0.5) / (seen[k] + 1.0)

    def _count_write(self, row: int) -> float:
        """Count a newly written block; returns p̂(0, row)."""
        seen = self._seen[row]
        seen[0] += 1
        return (self._again[row][0] + 0.5) / (seen[0] + 1.0)

    def _victim(self) -> tuple[float, int]:
        heap, store = self._heap, self._store
        while True:
            key, version, b = heap[0]
            e = store.get(b)
            if e is not None and e[3] == version:
                return key, b
            heapq.heappop(heap)

    def access(self, block: int, tokens: int, value: float, now: int, last: bool) -> float:
        store = self._store
        e = store.get(block)
        if e is not None:
            # e = [key, hits, value, version, counter row]
            key = self._key(e[2], tokens, self._count_hit(e[1], e[4]), now)
            self._version += 1
            e[0] = key
            e[1] += 1
            e[3] = self._version
            heapq.heappush(self._heap, (key, self._version, block))
            return float(e[2])
        row = 1 if last else 0
        p = self._count_write(row)
        rate = self.rate
        if self.write_cost > 0 or self.holding_cost > 0:
            worth = value * tokens * p / rate if rate > 0 else math.inf
            if worth - self.holding_cost / max(rate, 1e-300) <= self.write_cost * tokens:
                return MISS
        key = self._key(value, tokens, p, now)
        if len(store) >= self.capacity:
            vkey, victim = self._victim()
            if vkey >= key:
                return MISS
            heapq.heappop(self._heap)
            del store[victim]
            self.evictions += 1
        self._version += 1
        store[block] = [key, 0, value, self._version, row]
        heapq.heappush(self._heap, (key, self._version, block))
        if len(self._heap) > 4 * self.capacity + 1024:
            self._heap = [(v[0], v[3], b) for b, v in store.items()]
            heapq.heapify(self._heap)
        return MISS

    def rewrite(self, block: int, value: float) -> None:
        e = self._store.get(block)
        if e is None:
            return
        e[0] += math.log(value / e[2]) if e[2] > 0 and value > 0 else 0.0
        e[2] = value
        self._version += 1
        e[3] = self._version
        heapq.heappush(self._heap, (e[0], self._version, block))

    def __contains__(self, block: object) -> bool:
        return block in self._store

    def __len__(self) -> int:
        return len(self._store)


class PricedPrefixEviction:
    """Value-aware eviction for a serving prefix cache: :class:`PricedPolicy`'s ranking.

    Structurally a :class:`margin.serving.prefix.PrefixEviction` (the capital layer does
    not import serving): the simulator notifies it when a block is ``written`` (with the
    writer's value V, its tokens n and the block before it in the prompt), ``hit`` and
    ``unreferenced``, and asks it for a ``victim``. The victim is the evictable block with
    the lowest value of keeping it (Eq. 10, as in :class:`PricedPolicy`),

        W_b(t) = V_b·n_b·p̂(k_b, last_b)·exp(−(δ_S + r)·(t − t_b)) / (δ_S + r) − h/(δ_S + r),

    with t_b the time the block last became unreferenced (a block being read does not
    depreciate), k_b its hits and p̂ the online reuse probability of a block with k hits,
    counted by the same :class:`PricedPolicy` code (its ``_count_write``, ``_count_hit``
    and ``_key``). Here t is the simulator's clock in seconds, so δ_S and r = −ln β are
    per second. Every entry of a prefix cache holds the same number of KV blocks, so the
    holding cost h shifts every W_b equally and does not change the ranking; the cache
    admits every finished prompt (the simulator's behaviour), so there is no admission
    test here. ``block_tokens`` marks a block with fewer tokens as a request-final
    partial block (``last``), which has its own p̂ row.

    A prefix block is reusable only while every block before it is cached, so only
    *leaves* (unreferenced blocks none of whose cached children remain) are evictable:
    a chain is given up from its tail, as vLLM's prefix cache does. Otherwise the most-hit
    head of a long chain (whose own p̂ is lowest: such blocks are the oldest) would go
    first and strand the whole chain behind it.

    Parameters
    ----------
    depreciation : float
        δ_S per second.
    discount : float
        β per second (r = −ln β).
    block_tokens : int or None
        Tokens of a full hash block (None: no partial-block row).

    Examples
    --------
    Two unreferenced blocks of equal size and age: the low-value one is evicted first.

    >>> p = PricedPrefixEviction(depreciation=0.0, discount=0.999)
    >>> p.written(1, 50.0, 512, 0.0, -1); p.written(2, 0.05, 512, 0.0, -1)
    >>> p.victim(), len(p)
    (2, 1)
    """

    name = "priced"

    def __init__(
        self,
        *,
        depreciation: float,
        discount: float = 0.995,
        block_tokens: int | None = None,
        max_hits: int = 16,
    ) -> None:
        self._rank = PricedPolicy(
            1, depreciation=depreciation, discount=discount, max_hits=max_hits
        )
        self.block_tokens = block_tokens
        # block -> [key, hits, value, version, row, tokens, unreferenced, parent, children]
        self._entries: dict[int, list[Any]] = {}
        self._heap: list[tuple[float, int, int]] = []
        self._evictable = 0  # unreferenced leaves
        self._version = 0

    def _push(self, block: int, e: list[Any]) -> None:
        self._version += 1
        e[3] = self._version
        heapq.heappush(self._heap, (e[0], self._version, block))

    def written(self, block: int, value: float, tokens: int, now: float, parent: int) -> None:
        rank = self._rank
        bt = self.block_tokens
        row = 1 if bt is not None and tokens < bt else 0
        key = rank._key(value, tokens, rank._count_write(row), now)
        pe = self._entries.get(parent)
        if pe is not None:
            if pe[6] and pe[8] == 0:
                self._evictable -= 1
            pe[8] += 1
        else:
            parent = -1
        e = [key, 0, value, 0, row, tokens, True, parent, 0]
        self._entries[block] = e
        self._evictable += 1
        self._push(block, e)

    def hit(self, block: int, now: float) -> None:
        e = self._entries.get(block)
        if e is None:
            return
        rank = self._rank
        e[0] = rank._key(e[2], e[5], rank._count_hit(e[1], e[4]), now)
        e[1] += 1
        self._version += 1
        e[3] = self._version  # invalidates its heap entries
        if e[6]:
            e[6] = False
            if e[8] == 0:
                self._evictable -= 1

    def unreferenced(self, block: int, now: float) -> None:
        e = self._entries.get(block)
        if e is None or e[6]:
            return
        rank = self._rank
        e[0] = rank._key(e[2], e[5], rank.reuse_probability(e[1], bool(e[4])), now)
        e[6] = True
        if e[8] == 0:
            self._evictable += 1
            self._push(block, e)
        if len(self._heap) > 4 * len(self._entries) + 1024:
            self._heap = [(v[0], v[3], b) for b, v in self._entries.items() if v[6]]
            heapq.heapify(self._heap)

    def victim(self) -> int:
        heap, entries = self._heap, self._entries
        while heap:
            _, version, b = heapq.heappop(heap)
            e = entries.get(b)
            if e is None or e[3] != version or not e[6] or e[8]:
                continue
            del entries[b]
            self._evictable -= 1
            pe = entries.get(e[7])
            if pe is not None:
                pe[8] -= 1
                if pe[8] == 0 and pe[6]:
                    # the parent is a leaf again
                    self._evictable += 1
                    self._push(e[7], pe)
            return b
        raise InputError("priced prefix eviction: no unreferenced block to evict")

    def value_of(self, block: int) -> float | None:
        """The provenance value V of a cached ``block`` (None when not cached)."""
        e = self._entries.get(block)
        return None if e is None else float(e[2])

    def __len__(self) -> int:
        return self._evictable


PolicyFactory = Callable[..., CachePolicy]

#: Registry of cache policies by name.
CACHE_POLICIES: dict[str, PolicyFactory] = {
    "lru": LRUPolicy,
    "lfu": LFUPolicy,
    "priced": PricedPolicy,
}


def make_cache_policy(
    name: str, capacity: int, *, depreciation: float | None = None, **kwargs: Any
) -> CachePolicy:
    """Build a registered policy; ``priced`` needs ``depreciation`` (δ_S per request)."""
    if name not in CACHE_POLICIES:
        raise InputError(f"policy: unknown cache policy {name!r}; known: {sorted(CACHE_POLICIES)}")
    if name == "priced":
        if depreciation is None:
            raise InputError("policy 'priced': needs the depreciation δ_S per request")
        return PricedPolicy(capacity, depreciation=depreciation, **kwargs)
    return CACHE_POLICIES[name](capacity)


@dataclass(frozen=True)
class CacheReport:
    """What a replay found (token-level figures; ``value_saved`` in USD·tokens).

    ``value_saved`` is Σ V_r·tokens over reused blocks (V-weighted reused tokens);
    ``misuse_loss`` is Σ V_r·ℓ over reuses that failed the Eq. 1 rule (USD);
    ``value_saved_per_gb_hour`` divides value saved by the cache size in GB times the
    trace duration in hours.
    """

    policy: str
    capacity_blocks: int
    hit_rate: float
    block_hit_rate: float
    hit_rate_by_value: dict[str, float]
    hit_rate_by_tenant: dict[str, float]
    value_saved: float
    value_saved_per_gb_hour: float
    evictions: int
    misuse_events: int
    misuse_loss: float
    refused_reuses: int
    depreciation: CacheDepreciation
    extras: Mapping[str, Any] = field(default_factory=dict)

    def as_json(self) -> dict[str, Any]:
        """The CLI's documented shape."""
        return {
            "hit_rate": self.hit_rate,
            "hit_rate_by_value": dict(self.hit_rate_by_value),
            "value_saved": self.value_saved,
            "evictions": self.evictions,
            "misuse_events": self.misuse_events,
            "depreciation": self.depreciation.per_minute,
        }


def _value_buckets(value: npt.NDArray[np.float64]) -> tuple[npt.NDArray[np.int64], list[str]]:
    q = np.quantile(value, [0.25, 0.5, 0.75]) if value.size else np.zeros(3)
    edges = np.unique(q)
    idx = np.searchsorted(edges, value, side="right").astype(np.int64)
    bounds = [0.0, *edges.tolist(), math.inf]
    labels = [
        f"V<{bounds[i + 1]:.3g}"
        if i == 0
        else (
            f"V>={bounds[i]:.3g}"
            if i == len(bounds) - 2
            else f"{bounds[i]:.3g}<=V<{bounds[i + 1]:.3g}"
        )
        for i in range(len(bounds) - 1)
    ]
    return idx, labels


def replay(
    trace: MooncakeTrace,
    policy: str | CachePolicy,
    capacity_blocks: int = 16_384,
    *,
    values: ValueModel | Provenance | None = None,
    rule: ReuseRule | None = None,
    depreciation: CacheDepreciation | None = None,
    kv_bytes_per_token: int = LLAMA2_70B_KV_BYTES_PER_TOKEN,
    sink: RecordSink | None = None,
    **policy_kwargs: Any,
) -> CacheReport:
    """Replay a trace through a cache policy and price what it saved.

    Every block of every request is looked up in order. A hit whose reuse fails the
    :class:`ReuseRule` is refused and recomputed under a policy that enforces the rule
    (``priced``), and counted as a *misuse event* under one that does not (``lru``,
    ``lfu``). With ``sink``, one ``LedgerRecord(layer="capital")`` per request with a
    cache hit records the reuse decision (``attributes["cache_misuse"]`` and the value
    mismatch ``ln(V_r / V_w)``).

    Examples
    --------
    >>> t = MooncakeTrace.from_requests([[0, 1], [0, 1, 2], [0, 3]])
    >>> r = replay(t, "lru", 8)
    >>> r.block_hit_rate, r.evictions
    (0.42857142857142855, 0)
    """
    prov = values if isinstance(values, Provenance) else (values or ValueModel()).attach(trace)
    rule = rule or ReuseRule()
    dep = depreciation or trace_depreciation(trace)
    pol = (
        make_cache_policy(policy, capacity_blocks, depreciation=dep.per_request, **policy_kwargs)
        if isinstance(policy, str)
        else policy
    )
    enforce = pol.enforces_reuse_rule
    offsets = trace.offsets.tolist()
    ids = trace.block_ids.tolist()
    toks = trace.block_tokens.tolist()
    vals = prov.value.tolist()
    n = trace.n_requests
    hit_tokens = np.zeros(n, dtype=np.int64)
    hit_blocks = 0
    misuse = refused = 0
    misuse_loss = 0.0
    eps = rule.quality_loss_per_log_value
    kappa = rule.prefill_price_per_token
    access, rewrite = pol.access, pol.rewrite
    log = math.log
    for i in range(n):
        v = vals[i]
        lo, hi = offsets[i], offsets[i + 1]
        h_tok = 0
        req_misuse = req_refused = 0
        worst = 0.0
        for j in range(lo, hi):
            tk = toks[j]
            w = access(ids[j], tk, v, i, j == hi - 1)
            if w < 0.0:
                continue
            if w < v and v * eps * log(v / w) > kappa * tk:
                gap = log(v / w)
                worst = max(worst, gap)
                if enforce:
                    refused += 1
                    req_refused += 1
                    rewrite(ids[j], v)
                    continue
                misuse += 1
                req_misuse += 1
                misuse_loss += v * eps * gap
            h_tok += tk
            hit_blocks += 1
        hit_tokens[i] = h_tok
        if sink is not None and (h_tok or req_refused):
            _record(sink, trace, prov, rule, pol.name, i, h_tok, req_misuse, req_refused, worst)
    total = trace.block_tokens.sum()
    tot_req = trace.input_length.astype(np.float64)
    value = prov.value
    b_idx, b_lab = _value_buckets(value)
    by_value = {
        lab: float(hit_tokens[b_idx == k].sum() / max(tot_req[b_idx == k].sum(), 1.0))
        for k, lab in enumerate(b_lab)
    }
    by_tenant = {
        name: float(hit_tokens[prov.tenant == k].sum() / max(tot_req[prov.tenant == k].sum(), 1))
        for k, name in enumerate(prov.tenant_names)
        if np.any(prov.tenant == k)
    }
    saved = float(np.dot(hit_tokens, value))
    gb = pol.capacity * trace.block_size * kv_bytes_per_token / 1e9
    hours = max(trace.duration_minutes / 60.0, 1e-12)
    return CacheReport(
        policy=pol.name,
        capacity_blocks=pol.capacity,
        hit_rate=float(hit_tokens.sum() / max(total, 1)),
        block_hit_rate=hit_blocks / max(trace.n_blocks, 1),
        hit_rate_by_value=by_value,
        hit_rate_by_tenant=by_tenant,
        value_saved=saved,
        value_saved_per_gb_hour=saved / (gb * hours),
        evictions=pol.evictions,
        misuse_events=misuse,
        misuse_loss=misuse_loss,
        refused_reuses=refused,
        depreciation=dep,
    )


def _record(
    sink: RecordSink,
    trace: MooncakeTrace,
    prov: Provenance,
    rule: ReuseRule,
    policy: str,
    i: int,
    hit_tokens: int,
    misuse: int,
    refused: int,
    worst_gap: float,
) -> None:
    v = float(prov.value[i])
    writer = v * math.exp(-worst_gap)
    tokens = int(trace.input_length[i])
    reuse, recompute = rule.options(v, writer, max(hit_tokens, 1))
    sink.append(
        LedgerRecord(
            request_id=f"{trace.source}#{i}",
            layer="capital",
            choice="reuse" if hit_tokens else "recompute",
            options=(reuse, recompute),
            prices=PriceVector(value=v),
            tenant=prov.tenant_names[int(prov.tenant[i])],
            usage=TokenUsage(input=tokens - hit_tokens, cached_input=hit_tokens),
            timestamp=float(trace.timestamp_ms[i]) / 1000.0,
            attributes={
                "kind": "cache_reuse",
                "policy": policy,
                "cache_misuse": misuse > 0,
                "misuse_blocks": misuse,
                "refused_blocks": refused,
                "value_reader": v,
                "value_writer": writer,
                "value_mismatch_log": worst_gap,
                "reused_tokens": hit_tokens,
            },
        )
    )
