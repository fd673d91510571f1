"""Eviction strategies of the serving simulator's prefix cache.

A replica's prefix cache (:mod:`margin.serving.simulator`) keeps finished requests'
prompt blocks, keyed by block hash, and shares them by reference count. Only
*unreferenced* entries (no running request reads them) may be evicted; which one goes
when memory is needed is the strategy's choice. A strategy is a small
:class:`PrefixEviction` protocol: one main method, :meth:`~PrefixEviction.victim`, plus
the notifications it needs (a block was written with its writer's value V and tokens, a
cached block was hit, a block lost its last reference). Strategies are registered by
name in :data:`PREFIX_EVICTIONS`; ``lru`` is the default (vLLM's automatic prefix
caching evicts the least recently used free block).

The simulator builds one instance per replica from a zero-argument factory, so a
strategy defined elsewhere (the capital layer's value-aware policy,
:class:`margin.capital.cache.PricedPrefixEviction`) plugs in structurally:
``Simulator(config, eviction=factory)``.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable
from typing import Protocol, runtime_checkable

from margin.core.prices import InputError

__all__ = [
    "PREFIX_EVICTIONS",
    "LRUEviction",
    "PrefixEviction",
    "PrefixEvictionFactory",
    "make_prefix_eviction",
]


@runtime_checkable
class PrefixEviction(Protocol):
    """Chooses which unreferenced prefix-cache block a replica evicts.

    The simulator calls :meth:`written` when a finished request hands a new block to the
    cache (the block starts unreferenced), :meth:`hit` when an admitted request starts
    reading a cached block (referenced or not), :meth:`unreferenced` when a block's last
    reader lets go, and :meth:`victim` when it needs memory and ``len(policy) > 0``.
    Within one request, blocks are written in prompt order (parent first).
    ``now`` is the simulated time in seconds. ``len(policy)`` is the number of
    unreferenced (evictable) blocks it tracks.
    """

    name: str

    def victim(self) -> int:
        """Remove and return the evictable block to evict next."""
        ...

    def written(self, block: int, value: float, tokens: int, now: float, parent: int) -> None:
        """``block`` (``tokens`` prompt tokens, written for a request of value ``value``)
        entered the cache, unreferenced; ``parent`` is the block before it in the prompt
        (-1 for a first block): a block is only reusable while its whole prefix is."""
        ...

    def hit(self, block: int, now: float) -> None:
        """An admitted request reads ``block``: it is referenced (not evictable)."""
        ...

    def unreferenced(self, block: int, now: float) -> None:
        """The last request reading ``block`` released it: it is evictable."""
        ...

    def __len__(self) -> int: ...


#: A zero-argument factory building one replica's eviction strategy.
PrefixEvictionFactory = Callable[[], PrefixEviction]


class LRUEviction:
    """Least recently used: evict the unreferenced block whose last use is oldest.

    "Use" is the moment a block became unreferenced (written, or released by its last
    reader); a hit takes it out of the evictable set.

    Examples
    --------
    >>> p = LRUEviction()
    >>> p.written(1, 5.0, 512, 0.0, -1); p.written(2, 1.0, 512, 0.1, -1)
    >>> p.hit(1, 0.2); p.unreferenced(1, 0.3)
    >>> p.victim(), len(p)
    (2, 1)
    """

    name = "lru"
    __slots__ = ("_queue",)

    def __init__(self) -> None:
        self._queue: OrderedDict[int, None] = OrderedDict()

    @property
    def queue(self) -> OrderedDict[int, None]:
        """The evictable blocks, least recently used first (the simulator's fast path
        updates it in place, exactly as the methods below do)."""
        return self._queue

    def victim(self) -> int:
        return self._queue.popitem(last=False)[0]

    def written(self, block: int, value: float, tokens: int, now: float, parent: int) -> None:
        self._queue[block] = None

    def hit(self, block: int, now: float) -> None:
        self._queue.pop(block, None)

    def unreferenced(self, block: int, now: float) -> None:
        self._queue[block] = None

    def __len__(self) -> int:
        return len(self._queue)


#: Registry of prefix-cache eviction strategies by name (``ServingConfig.prefix_eviction``).
PREFIX_EVICTIONS: dict[str, PrefixEvictionFactory] = {"lru": LRUEviction}


def make_prefix_eviction(name: str) -> PrefixEvictionFactory:
    """The factory registered as ``name`` in :data:`PREFIX_EVICTIONS`.

    Examples
    --------
    >>> make_prefix_eviction("lru")().name
    'lru'
    """
    try:
        return PREFIX_EVICTIONS[name]
    except KeyError:
        raise InputError(
            f"serving config: field 'prefix_eviction': unknown policy {name!r}; "
            f"known: {', '.join(sorted(PREFIX_EVICTIONS))}"
        ) from None
