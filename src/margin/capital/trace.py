"""Mooncake-format KV-cache traces and the value/tenant provenance attached to them.

A Mooncake trace (kvcache-ai/Mooncake, FAST'25 release) is JSON Lines, one request per
line: ``{"timestamp": ms, "input_length": int, "output_length": int, "hash_ids": [int,
...]}``. ``hash_ids`` are prefix blocks of ``block_size`` (512) tokens: equal ids are
shareable KV. The reader uses only the standard ``json`` module and numpy.

The trace carries no task value V, which the capital layer needs (Sec. 3.4: hit rate by
V, cache misuse). :class:`ValueModel` attaches V and a tenant to every request
deterministically, from a hash of its *conversation key*: the first block of the request
that is shared by fewer than ``shared_fraction`` of all requests (the system prompt,
shared by everybody, is skipped). Every turn of a conversation thus gets the same V and
tenant; the tenant picks a median value and V is lognormal around it.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt
from scipy.special import ndtri

from margin.core.prices import InputError

__all__ = ["BLOCK_TOKENS", "MooncakeTrace", "Provenance", "ValueModel", "load_mooncake"]

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]

#: Tokens per Mooncake prefix block.
BLOCK_TOKENS = 512


@dataclass(frozen=True, eq=False)
class MooncakeTrace:
    """A request trace with prefix-block ids, in flat (CSR) numpy arrays.

    Attributes
    ----------
    timestamp_ms : ndarray of float, shape (n,)
        Arrival time of each request in milliseconds.
    input_length, output_length : ndarray of int, shape (n,)
        Prompt and completion lengths in tokens.
    offsets : ndarray of int, shape (n + 1,)
        Request ``i`` owns ``block_ids[offsets[i]:offsets[i + 1]]``.
    block_ids : ndarray of int
        Concatenated ``hash_ids``.
    block_tokens : ndarray of int
        Tokens in each block (``block_size`` except a request's partial last block).
    source : str
        Where the trace came from (for messages).
    """

    timestamp_ms: FloatArray
    input_length: IntArray
    output_length: IntArray
    offsets: IntArray
    block_ids: IntArray
    block_tokens: IntArray
    source: str = "<memory>"
    block_size: int = BLOCK_TOKENS

    @property
    def n_requests(self) -> int:
        return int(self.input_length.size)

    @property
    def n_blocks(self) -> int:
        return int(self.block_ids.size)

    @property
    def request_of_block(self) -> IntArray:
        """Index of the request that each flat block access belongs to."""
        out: IntArray = np.repeat(np.arange(self.n_requests, dtype=np.int64), np.diff(self.offsets))
        return out

    @property
    def duration_minutes(self) -> float:
        if self.n_requests == 0:
            return 0.0
        return float(self.timestamp_ms[-1] - self.timestamp_ms[0]) / 60_000.0

    @classmethod
    def from_requests(
        cls,
        hash_ids: list[list[int]],
        timestamp_ms: npt.ArrayLike | None = None,
        input_length: npt.ArrayLike | None = None,
        output_length: npt.ArrayLike | None = None,
        *,
        block_size: int = BLOCK_TOKENS,
        source: str = "<memory>",
    ) -> MooncakeTrace:
        """Build a trace from Python lists (input lengths default to full blocks).

        Examples
        --------
        >>> t = MooncakeTrace.from_requests([[0, 1], [0, 1, 2]])
        >>> t.n_requests, t.n_blocks, t.block_tokens.tolist()
        (2, 5, [512, 512, 512, 512, 512])
        """
        n = len(hash_ids)
        lens = np.fromiter((len(h) for h in hash_ids), dtype=np.int64, count=n)
        offsets = np.zeros(n + 1, dtype=np.int64)
        np.cumsum(lens, out=offsets[1:])
        flat = (
            np.fromiter((b for h in hash_ids for b in h), dtype=np.int64, count=int(offsets[-1]))
            if n
            else np.zeros(0, dtype=np.int64)
        )
        ts = (
            np.arange(n, dtype=np.float64)
            if timestamp_ms is None
            else np.asarray(timestamp_ms, dtype=np.float64)
        )
        inp = (
            lens * block_size if input_length is None else np.asarray(input_length, dtype=np.int64)
        )
        out = np.zeros(n, dtype=np.int64) if output_length is None else np.asarray(output_length)
        if ts.shape != (n,) or inp.shape != (n,) or np.shape(out) != (n,):
            raise InputError(f"{source}: timestamp, input_length and output_length need {n} rows")
        return cls(
            timestamp_ms=ts,
            input_length=inp,
            output_length=np.asarray(out, dtype=np.int64),
            offsets=offsets,
            block_ids=flat,
            block_tokens=_block_tokens(offsets, inp, block_size),
            source=source,
            block_size=block_size,
        )


def _block_tokens(offsets: IntArray, input_length: IntArray, block_size: int) -> IntArray:
    lens = np.diff(offsets)
    tok = np.full(int(offsets[-1]), block_size, dtype=np.int64)
    has = lens > 0
    last = offsets[1:][has] - 1
    rem = input_length[has] - block_size * (lens[has] - 1)
    tok[last] = np.clip(rem, 1, block_size)
    return tok


def _field_int(obj: dict[str, object], key: str, where: str) -> int:
    if key not in obj:
        raise InputError(f"{where}: missing field '{key}'")
    v = obj[key]
    if isinstance(v, bool) or not isinstance(v, int | float) or not math.isfinite(v) or v < 0:
        raise InputError(f"{where}: field '{key}' must be a number >= 0, got {v!r}")
    if isinstance(v, float) and not v.is_integer():
        raise InputError(f"{where}: field '{key}' must be an integer, got {v!r}")
    return int(v)


def load_mooncake(path: str | Path, *, block_size: int = BLOCK_TOKENS) -> MooncakeTrace:
    """Read a Mooncake JSONL trace; a malformed line raises InputError naming file and line.

    Blank lines are skipped. Each line must be a JSON object with ``timestamp``,
    ``input_length``, ``output_length`` (numbers >= 0) and ``hash_ids`` (a list of
    integers >= 0); timestamps must not decrease.

    Examples
    --------
    >>> import tempfile, os
    >>> d = tempfile.mkdtemp(); p = os.path.join(d, "t.jsonl")
    >>> _ = open(p, "w").write('{"timestamp": 0, "input_length": 600, '
    ...                        '"output_length": 5, "hash_ids": [7, 8]}\\n')
    >>> load_mooncake(p).block_tokens.tolist()
    [512, 88]
    >>> _ = open(p, "a").write('{"timestamp": 1, "hash_ids": [7]}\\n')
    >>> load_mooncake(p)
    Traceback (most recent call last):
    ...
    margin.core.prices.InputError: ...t.jsonl line 2: missing field 'input_length'
    """
    p = Path(path)
    if not p.is_file():
        raise InputError(f"trace: file {p} does not exist")
    ts: list[int] = []
    inp: list[int] = []
    outl: list[int] = []
    flat: list[int] = []
    lens: list[int] = []
    prev = -1
    try:
        fh = p.open("r", encoding="utf-8")
    except OSError as e:
        raise InputError(f"trace: cannot read {p}: {e.strerror}") from None
    with fh:
        for lineno, line in enumerate(fh, start=1):
            if not line.strip():
                continue
            where = f"{p} line {lineno}"
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as e:
                raise InputError(f"{where}: not valid JSON ({e.msg})") from None
            if not isinstance(obj, dict):
                raise InputError(f"{where}: expected a JSON object, got {type(obj).__name__}")
            t = _field_int(obj, "timestamp", where)
            if t < prev:
                raise InputError(f"{where}: field 'timestamp' decreases ({t} after {prev})")
            prev = t
            il = _field_int(obj, "input_length", where)
            ol = _field_int(obj, "output_length", where)
            h = obj.get("hash_ids")
            if not isinstance(h, list) or not all(
                isinstance(x, int) and not isinstance(x, bool) and x >= 0 for x in h
            ):
                raise InputError(f"{where}: field 'hash_ids' must be a list of integers >= 0")
            if len(h) * block_size < il or (h and (len(h) - 1) * block_size >= il):
                raise InputError(
                    f"{where}: field 'hash_ids' has {len(h)} blocks of {block_size} tokens, "
                    f"inconsistent with input_length {il}"
                )
            ts.append(t)
            inp.append(il)
            outl.append(ol)
            lens.append(len(h))
            flat.extend(h)
    if not ts:
        raise InputError(f"trace: {p} holds no requests")
    n = len(ts)
    offsets = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(np.asarray(lens, dtype=np.int64), out=offsets[1:])
    input_length = np.asarray(inp, dtype=np.int64)
    return MooncakeTrace(
        timestamp_ms=np.asarray(ts, dtype=np.float64),
        input_length=input_length,
        output_length=np.asarray(outl, dtype=np.int64),
        offsets=offsets,
        block_ids=np.asarray(flat, dtype=np.int64),
        block_tokens=_block_tokens(offsets, input_length, block_size),
        source=str(p),
        block_size=block_size,
    )


def _splitmix64(x: npt.NDArray[np.uint64]) -> npt.NDArray[np.uint64]:
    z = x + np.uint64(0x9E3779B97F4A7C15)
    z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    out: npt.NDArray[np.uint64] = z ^ (z >> np.uint64(31))
    return out


@dataclass(frozen=True, eq=False)
class Provenance:
    """Per-request value V (USD), tenant index and conversation key."""

    value: FloatArray
    tenant: IntArray
    conversation: IntArray
    tenant_names: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class ValueModel:
    """Deterministic V and tenant for a trace that has none (documented modelling choice).

    For request ``i`` with conversation key ``c`` (see module docstring),
    ``h = splitmix64(c XOR seed)``; tenant ``= h mod K``;
    ``V = median[tenant] · exp(sigma · Φ⁻¹(u))`` with ``u`` the uniform read from
    ``splitmix64(h)``. Defaults: four tenants with medians 1, 2, 4 and 8 USD and
    ``sigma = 0.5`` (a 90/10 value ratio of about 10 across the trace).

    Examples
    --------
    >>> t = MooncakeTrace.from_requests([[0, 1], [0, 1, 2], [0, 5]])
    >>> p = ValueModel(shared_fraction=0.9).attach(t)
    >>> bool(p.value[0] == p.value[1]), bool(p.conversation[2] == 5)
    (True, True)
    """

    tenant_medians: tuple[float, ...] = (1.0, 2.0, 4.0, 8.0)
    tenant_names: tuple[str, ...] = ("free", "pro", "team", "enterprise")
    sigma: float = 0.5
    seed: int = 0
    shared_fraction: float = 0.01

    def __post_init__(self) -> None:
        if not self.tenant_medians or any(
            not (math.isfinite(m) and m > 0) for m in self.tenant_medians
        ):
            raise InputError("ValueModel: field 'tenant_medians' must be positive numbers")
        if len(self.tenant_names) != len(self.tenant_medians):
            raise InputError("ValueModel: 'tenant_names' and 'tenant_medians' differ in length")
        if not (math.isfinite(self.sigma) and self.sigma >= 0):
            raise InputError(f"ValueModel: field 'sigma' must be >= 0, got {self.sigma}")
        if not 0 < self.shared_fraction <= 1:
            raise InputError("ValueModel: field 'shared_fraction' must be in (0, 1]")

    def conversation_keys(self, trace: MooncakeTrace) -> IntArray:
        """First block of each request shared by < ``shared_fraction`` of requests."""
        n = trace.n_requests
        flat = trace.block_ids
        if flat.size == 0:
            return np.arange(n, dtype=np.int64)
        req = trace.request_of_block
        # document frequency: number of distinct requests holding each block id
        _, inv = np.unique(flat, return_inverse=True)
        pair = np.unique(inv.astype(np.int64) * n + req)
        freq = np.bincount(pair // n, minlength=int(inv.max()) + 1)[inv]
        rare = freq < self.shared_fraction * n
        lens = np.diff(trace.offsets)
        keys = np.full(n, -1, dtype=np.int64)
        pos = np.flatnonzero(rare)
        first_req, first_idx = np.unique(req[pos], return_index=True)
        keys[first_req] = flat[pos[first_idx]]
        # requests with only common blocks: their last block (or their index if empty)
        miss = keys < 0
        last = trace.offsets[1:] - 1
        has = miss & (lens > 0)
        keys[has] = flat[last[has]]
        empty = miss & (lens == 0)
        keys[empty] = -1 - np.flatnonzero(empty)
        return keys

    def attach(self, trace: MooncakeTrace) -> Provenance:
        """V, tenant and conversation key for every request of ``trace``."""
        keys = self.conversation_keys(trace)
        h = _splitmix64(keys.view(np.uint64) ^ np.uint64(self.seed & 0xFFFFFFFFFFFFFFFF))
        k = len(self.tenant_medians)
        tenant = (h % np.uint64(k)).astype(np.int64)
        u = ((_splitmix64(h) >> np.uint64(11)).astype(np.float64) + 0.5) / 2.0**53
        med = np.asarray(self.tenant_medians, dtype=np.float64)
        value = med[tenant] * np.exp(self.sigma * ndtri(u))
        return Provenance(
            value=value, tenant=tenant, conversation=keys, tenant_names=self.tenant_names
        )
