"""Request traces for the serving simulator: loaders for real traces and synthetic arrivals.

A :class:`Trace` stores one request per index in numpy arrays (arrival time, prompt and
output lengths, tenant, value, latency price, prefix-block hashes in CSR form), never as
per-request Python objects, so that a 20,000-request trace loads and rescales in
milliseconds.

Supported formats (the column names are those of the public sources):

* ``azure``: ``TIMESTAMP, ContextTokens, GeneratedTokens`` (Azure LLM inference trace,
  Azure/AzurePublicDataset, CC-BY 4.0); timestamps are datetimes, converted to seconds
  from the first request.
* ``mooncake``: JSON lines with ``timestamp`` (milliseconds), ``input_length``,
  ``output_length``, ``hash_ids`` (kvcache-ai/Mooncake FAST'25 traces, Apache-2.0);
  equal hash ids are shareable 512-token KV blocks.
* ``vidur``: ``arrived_at, num_prefill_tokens, num_decode_tokens`` (microsoft/vidur
  processed traces, MIT).
* ``synthetic``: Poisson or Gamma arrivals with lognormal length distributions
  (:func:`synthetic_trace`; a JSON file of its keyword arguments can be loaded by
  :func:`load_trace`).
"""

from __future__ import annotations

import csv
import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from margin.core.prices import InputError

__all__ = [
    "TRACE_FORMATS",
    "Trace",
    "load_azure",
    "load_mooncake",
    "load_trace",
    "load_vidur",
    "synthetic_trace",
    "tag_context_tenants",
]

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]

#: Trace file formats understood by :func:`load_trace` (and ``serve simulate --format``).
TRACE_FORMATS = ("azure", "mooncake", "vidur", "synthetic")


def _ro(a: npt.NDArray[Any]) -> npt.NDArray[Any]:
    a = np.ascontiguousarray(a)
    a.setflags(write=False)
    return a


@dataclass(frozen=True, slots=True, eq=False)
class Trace:
    """An immutable request trace held as numpy arrays (one entry per request).

    Parameters
    ----------
    arrival : ndarray of float, shape (n,)
        Arrival times in seconds, non-decreasing, first at or after 0.
    prompt : ndarray of int, shape (n,)
        Prompt (prefill) tokens, >= 1.
    output : ndarray of int, shape (n,)
        Output (decode) tokens, >= 1.
    tenant : ndarray of int, shape (n,), optional
        Index into ``tenants`` (default: every request belongs to ``"default"``).
    tenants : tuple of str
        Tenant names.
    value : ndarray of float, shape (n,), optional
        Task value V of each request in USD (Eq. 1); default 1.0.
    latency_price : ndarray of float, shape (n,), optional
        λ of each request, USD per second of end-to-end latency; default 1.0.
    hash_offsets, hash_ids : ndarray of int, optional
        Prefix-block hashes in CSR form: the hashes of request ``i`` are
        ``hash_ids[hash_offsets[i]:hash_offsets[i + 1]]`` (Mooncake ``hash_ids``).
    hash_block_tokens : int
        Tokens per hashed block (512 in the Mooncake traces).
    source : str
        Where the trace came from (file path or ``"synthetic"``).
    accept_rate : ndarray of float, shape (n,), optional
        Speculative-decoding acceptance rate α of each request's draft tokens, in
        [0, 1] (used when ``ServingConfig.spec_gamma > 0``; None: the config's α).

    Examples
    --------
    >>> t = Trace(arrival=np.array([0.0, 1.0, 2.0]), prompt=np.array([10, 20, 30]),
    ...           output=np.array([5, 5, 5]))
    >>> len(t), t.rate
    (3, 1.0)
    >>> t.scaled(2.0).arrival.tolist()
    [0.0, 0.5, 1.0]
    """

    arrival: FloatArray
    prompt: IntArray
    output: IntArray
    tenant: IntArray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    tenants: tuple[str, ...] = ("default",)
    value: FloatArray = field(default_factory=lambda: np.zeros(0))
    latency_price: FloatArray = field(default_factory=lambda: np.zeros(0))
    hash_offsets: IntArray | None = None
    hash_ids: IntArray | None = None
    hash_block_tokens: int = 512
    source: str = ""
    accept_rate: FloatArray | None = None

    def __post_init__(self) -> None:
        arrival = np.asarray(self.arrival, dtype=np.float64).ravel()
        n = arrival.size
        prompt = np.asarray(self.prompt).ravel()
        output = np.asarray(self.output).ravel()
        where = f"trace {self.source}" if self.source else "trace"
        for name, arr in (("prompt", prompt), ("output", output)):
            if arr.size != n:
                raise InputError(f"{where}: field '{name}' has {arr.size} entries, expected {n}")
            if n and (not np.all(np.isfinite(arr)) or np.any(arr != np.round(arr))):
                raise InputError(f"{where}: field '{name}' must hold whole numbers")
            if n and arr.min() < 1:
                raise InputError(f"{where}: field '{name}' must be >= 1 token")
        if n and (not np.all(np.isfinite(arrival)) or arrival[0] < 0):
            raise InputError(f"{where}: field 'arrival' must be finite and >= 0")
        if n > 1 and np.any(np.diff(arrival) < 0):
            raise InputError(f"{where}: field 'arrival' must be non-decreasing")
        tenant = np.asarray(self.tenant, dtype=np.int64).ravel()
        if tenant.size == 0:
            tenant = np.zeros(n, dtype=np.int64)
        if tenant.size != n:
            raise InputError(f"{where}: field 'tenant' has {tenant.size} entries, expected {n}")
        tenants = tuple(str(t) for t in self.tenants)
        if not tenants or (n and (tenant.min() < 0 or tenant.max() >= len(tenants))):
            raise InputError(f"{where}: field 'tenant' indexes outside 'tenants'")
        for name in ("value", "latency_price"):
            farr = np.asarray(getattr(self, name), dtype=np.float64).ravel()
            if farr.size == 0:
                farr = np.ones(n)
            if farr.size != n:
                raise InputError(f"{where}: field '{name}' has {farr.size} entries, expected {n}")
            if n and (not np.all(np.isfinite(farr)) or farr.min() < 0):
                raise InputError(f"{where}: field '{name}' must be finite and >= 0")
            object.__setattr__(self, name, _ro(farr))
        if (self.hash_offsets is None) != (self.hash_ids is None):
            raise InputError(f"{where}: 'hash_offsets' and 'hash_ids' go together")
        if self.hash_offsets is not None and self.hash_ids is not None:
            off = np.asarray(self.hash_offsets, dtype=np.int64).ravel()
            ids = np.asarray(self.hash_ids, dtype=np.int64).ravel()
            if off.size != n + 1 or off[0] != 0 or off[-1] != ids.size or np.any(np.diff(off) < 0):
                raise InputError(f"{where}: field 'hash_offsets' is not a valid CSR index")
            object.__setattr__(self, "hash_offsets", _ro(off))
            object.__setattr__(self, "hash_ids", _ro(ids))
        if self.hash_block_tokens < 1:
            raise InputError(f"{where}: field 'hash_block_tokens' must be >= 1")
        if self.accept_rate is not None:
            acc = np.asarray(self.accept_rate, dtype=np.float64).ravel()
            if acc.size != n:
                raise InputError(
                    f"{where}: field 'accept_rate' has {acc.size} entries, expected {n}"
                )
            if n and (not np.all(np.isfinite(acc)) or acc.min() < 0 or acc.max() > 1):
                raise InputError(f"{where}: field 'accept_rate' must be in [0, 1]")
            object.__setattr__(self, "accept_rate", _ro(acc))
        object.__setattr__(self, "arrival", _ro(arrival))
        object.__setattr__(self, "prompt", _ro(prompt.astype(np.int64)))
        object.__setattr__(self, "output", _ro(output.astype(np.int64)))
        object.__setattr__(self, "tenant", _ro(tenant))
        object.__setattr__(self, "tenants", tenants)

    def __len__(self) -> int:
        return int(self.arrival.size)

    @property
    def duration(self) -> float:
        """Seconds from the first to the last arrival."""
        return float(self.arrival[-1] - self.arrival[0]) if len(self) > 1 else 0.0

    @property
    def rate(self) -> float:
        """Mean arrival rate in requests per second, (n − 1) / duration."""
        d = self.duration
        return (len(self) - 1) / d if d > 0 else math.inf

    def hashes(self, i: int) -> IntArray:
        """Prefix-block hashes of request ``i`` (empty when the trace has none)."""
        if self.hash_offsets is None or self.hash_ids is None:
            return np.zeros(0, dtype=np.int64)
        return self.hash_ids[self.hash_offsets[i] : self.hash_offsets[i + 1]]

    def scaled(self, rate_scale: float) -> Trace:
        """The same requests arriving ``rate_scale`` times as fast (arrival / rate_scale)."""
        if not (isinstance(rate_scale, int | float) and math.isfinite(rate_scale)) or (
            rate_scale <= 0
        ):
            raise InputError(f"trace: field 'rate_scale' must be > 0, got {rate_scale!r}")
        return replace(self, arrival=self.arrival / float(rate_scale))

    def take(self, index: npt.ArrayLike) -> Trace:
        """The sub-trace of the requests at the sorted positions ``index``."""
        idx = np.sort(np.asarray(index, dtype=np.int64).ravel())
        off = ids = None
        if self.hash_offsets is not None and self.hash_ids is not None:
            lens = np.diff(self.hash_offsets)[idx]
            off = np.concatenate([[0], np.cumsum(lens)])
            ids = (
                np.concatenate(
                    [self.hash_ids[self.hash_offsets[i] : self.hash_offsets[i + 1]] for i in idx]
                )
                if idx.size
                else np.zeros(0, dtype=np.int64)
            )
        a = self.arrival[idx]
        return replace(
            self,
            arrival=a - (a[0] if a.size else 0.0),
            prompt=self.prompt[idx],
            output=self.output[idx],
            tenant=self.tenant[idx],
            value=self.value[idx],
            latency_price=self.latency_price[idx],
            hash_offsets=off,
            hash_ids=ids,
            accept_rate=None if self.accept_rate is None else self.accept_rate[idx],
        )

    def head(self, n: int) -> Trace:
        """The first ``n`` requests."""
        return self.take(np.arange(min(n, len(self))))

    def with_accept_rate(self, alpha: npt.ArrayLike) -> Trace:
        """Attach a speculative-decoding acceptance rate α per request (a scalar: all).

        Examples
        --------
        >>> t = Trace(arrival=np.array([0.0, 1.0]), prompt=np.array([5, 5]),
        ...           output=np.array([3, 3]))
        >>> t.with_accept_rate(0.7).accept_rate.tolist()
        [0.7, 0.7]
        """
        a = np.broadcast_to(np.asarray(alpha, dtype=np.float64), (len(self),)).copy()
        return replace(self, accept_rate=a)

    def with_tenants(
        self,
        tenant: npt.ArrayLike,
        tenants: Sequence[str],
        value: npt.ArrayLike | None = None,
        latency_price: npt.ArrayLike | None = None,
    ) -> Trace:
        """Attach tenants (and optionally per-request value V and latency price λ)."""
        return replace(
            self,
            tenant=np.asarray(tenant, dtype=np.int64),
            tenants=tuple(tenants),
            value=self.value if value is None else np.asarray(value, dtype=np.float64),
            latency_price=(
                self.latency_price
                if latency_price is None
                else np.asarray(latency_price, dtype=np.float64)
            ),
        )


def tag_context_tenants(
    trace: Trace,
    threshold: int | None = None,
    *,
    value: Mapping[str, float] | None = None,
    latency_price: Mapping[str, float] | None = None,
) -> Trace:
    """Split requests into a ``"short-context"`` and a ``"long-context"`` tenant.

    Requests with ``prompt <= threshold`` (default: the median prompt) belong to
    ``short-context``. ``value`` and ``latency_price`` map tenant name to V (USD) and λ
    (USD/s); defaults: V = 1 for both, λ = 1.0 for short and 0.25 for long context
    (interactive chat is latency-sensitive, long-document jobs less so).

    Examples
    --------
    >>> t = Trace(arrival=np.arange(4.0), prompt=np.array([10, 4000, 20, 9000]),
    ...           output=np.ones(4, dtype=int))
    >>> tt = tag_context_tenants(t, 100)
    >>> [tt.tenants[i] for i in tt.tenant], tt.latency_price.tolist()
    (['short-context', 'long-context', 'short-context', 'long-context'], [1.0, 0.25, 1.0, 0.25])
    """
    thr = float(np.median(trace.prompt)) if threshold is None else float(threshold)
    names = ("short-context", "long-context")
    v = {"short-context": 1.0, "long-context": 1.0, **(value or {})}
    lp = {"short-context": 1.0, "long-context": 0.25, **(latency_price or {})}
    idx = (trace.prompt > thr).astype(np.int64)
    return trace.with_tenants(
        idx,
        names,
        value=np.array([v[n] for n in names])[idx],
        latency_price=np.array([lp[n] for n in names])[idx],
    )


# --------------------------------------------------------------------------- loaders


def _open_text(path: str | Path) -> tuple[Path, list[str]]:
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise InputError(f"{p}: trace file not found") from None
    except IsADirectoryError:
        raise InputError(f"{p}: is a directory, expected a trace file") from None
    except UnicodeDecodeError as e:
        raise InputError(f"{p}: not UTF-8 text ({e.reason})") from None
    except OSError as e:
        raise InputError(f"{p}: cannot read trace file ({e.strerror})") from None
    return p, text.splitlines()


def _int_field(p: Path, line: int, name: str, raw: str, minimum: int) -> int:
    try:
        v = int(raw.strip())
    except (ValueError, AttributeError):
        raise InputError(f"{p}:{line}: field '{name}' must be an integer, got {raw!r}") from None
    if v < minimum:
        raise InputError(f"{p}:{line}: field '{name}' must be >= {minimum}, got {v}")
    return v


def _csv_rows(p: Path, lines: list[str], columns: tuple[str, ...]) -> tuple[list[list[str]], int]:
    if not lines:
        raise InputError(f"{p}:1: empty file, expected a header with {', '.join(columns)}")
    header = [h.strip() for h in next(csv.reader([lines[0]]))]
    missing = [c for c in columns if c not in header]
    if missing:
        raise InputError(f"{p}:1: missing column '{missing[0]}' (header: {', '.join(header)})")
    cols = [header.index(c) for c in columns]
    rows: list[list[str]] = []
    for lineno, row in enumerate(csv.reader(lines[1:]), start=2):
        if not row or all(not c.strip() for c in row):
            continue
        if len(row) != len(header):
            raise InputError(f"{p}:{lineno}: expected {len(header)} fields, got {len(row)}")
        rows.append([row[c] for c in cols] + [str(lineno)])
    if not rows:
        raise InputError(f"{p}:2: no requests in trace")
    return rows, len(header)


def _check_sorted(p: Path, arrival: FloatArray, lines: Sequence[int], name: str) -> None:
    bad = np.flatnonzero(np.diff(arrival) < 0)
    if bad.size:
        raise InputError(
            f"{p}:{lines[int(bad[0]) + 1]}: field '{name}' goes back in time "
            "(arrivals must be sorted)"
        )


def load_azure(path: str | Path) -> Trace:
    """Load an Azure LLM inference trace CSV (``TIMESTAMP, ContextTokens, GeneratedTokens``).

    Timestamps are datetimes (e.g. ``2023-11-16 18:15:46.6805900``), converted to seconds
    from the first request. Raises :class:`InputError` naming file, line and field.
    """
    p, lines = _open_text(path)
    rows, _ = _csv_rows(p, lines, ("TIMESTAMP", "ContextTokens", "GeneratedTokens"))
    stamps = [r[0].strip() for r in rows]
    try:
        ts = np.array(stamps, dtype="datetime64[ns]")
    except ValueError:
        for r in rows:
            try:
                np.datetime64(r[0].strip(), "ns")
            except ValueError:
                raise InputError(
                    f"{p}:{r[3]}: field 'TIMESTAMP' is not a datetime, got {r[0]!r}"
                ) from None
        raise  # pragma: no cover - numpy rejected the batch but accepted every row
    prompt = np.array([_int_field(p, int(r[3]), "ContextTokens", r[1], 1) for r in rows])
    output = np.array([_int_field(p, int(r[3]), "GeneratedTokens", r[2], 1) for r in rows])
    arrival = (ts - ts[0]).astype(np.int64) / 1e9
    lines_no = [int(r[3]) for r in rows]
    _check_sorted(p, arrival, lines_no, "TIMESTAMP")
    return Trace(arrival=arrival, prompt=prompt, output=output, source=str(p))


def load_vidur(path: str | Path) -> Trace:
    """Load a Vidur trace CSV (``arrived_at, num_prefill_tokens, num_decode_tokens``)."""
    p, lines = _open_text(path)
    rows, _ = _csv_rows(p, lines, ("arrived_at", "num_prefill_tokens", "num_decode_tokens"))
    arrival = np.empty(len(rows))
    for i, r in enumerate(rows):
        try:
            x = float(r[0])
        except ValueError:
            raise InputError(
                f"{p}:{r[3]}: field 'arrived_at' must be a number, got {r[0]!r}"
            ) from None
        if not math.isfinite(x) or x < 0:
            raise InputError(f"{p}:{r[3]}: field 'arrived_at' must be finite and >= 0, got {x}")
        arrival[i] = x
    prompt = np.array([_int_field(p, int(r[3]), "num_prefill_tokens", r[1], 1) for r in rows])
    output = np.array([_int_field(p, int(r[3]), "num_decode_tokens", r[2], 1) for r in rows])
    _check_sorted(p, arrival, [int(r[3]) for r in rows], "arrived_at")
    return Trace(arrival=arrival - arrival[0], prompt=prompt, output=output, source=str(p))


def load_mooncake(path: str | Path, hash_block_tokens: int = 512) -> Trace:
    """Load a Mooncake JSONL trace (``timestamp`` ms, ``input_length``, ``output_length``,
    ``hash_ids``)."""
    p, lines = _open_text(path)
    ts: list[float] = []
    prompt: list[int] = []
    output: list[int] = []
    offsets = [0]
    ids: list[int] = []
    line_of: list[int] = []
    for lineno, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as e:
            raise InputError(f"{p}:{lineno}: invalid JSON ({e.msg})") from None
        if not isinstance(obj, dict):
            raise InputError(f"{p}:{lineno}: expected a JSON object per line")
        for key in ("timestamp", "input_length", "output_length"):
            if key not in obj:
                raise InputError(f"{p}:{lineno}: missing field '{key}'")
        t = obj["timestamp"]
        if isinstance(t, bool) or not isinstance(t, int | float) or not math.isfinite(t) or t < 0:
            raise InputError(f"{p}:{lineno}: field 'timestamp' must be a number >= 0, got {t!r}")
        vals = []
        for key in ("input_length", "output_length"):
            v = obj[key]
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise InputError(f"{p}:{lineno}: field '{key}' must be an integer >= 1, got {v!r}")
            vals.append(v)
        h = obj.get("hash_ids", [])
        if not isinstance(h, list) or any(isinstance(x, bool) or not isinstance(x, int) for x in h):
            raise InputError(f"{p}:{lineno}: field 'hash_ids' must be a list of integers")
        ts.append(float(t) / 1000.0)
        prompt.append(vals[0])
        output.append(vals[1])
        ids.extend(h)
        offsets.append(len(ids))
        line_of.append(lineno)
    if not ts:
        raise InputError(f"{p}:1: no requests in trace")
    arrival = np.array(ts)
    _check_sorted(p, arrival, line_of, "timestamp")
    return Trace(
        arrival=arrival - arrival[0],
        prompt=np.array(prompt),
        output=np.array(output),
        hash_offsets=np.array(offsets),
        hash_ids=np.array(ids, dtype=np.int64),
        hash_block_tokens=hash_block_tokens,
        source=str(p),
    )


def synthetic_trace(
    n: int,
    rate: float,
    *,
    arrival: str = "poisson",
    cv: float = 1.0,
    prompt_mean: float = 1000.0,
    prompt_sigma: float = 1.0,
    output_mean: float = 200.0,
    output_sigma: float = 1.0,
    max_tokens: int = 16384,
    tenants: Sequence[str] = ("default",),
    seed: int = 0,
) -> Trace:
    """Synthetic trace: Poisson (``cv = 1``) or Gamma renewal arrivals, lognormal lengths.

    Inter-arrival gaps are Gamma with shape k = 1/cv² and mean 1/rate (``arrival="gamma"``;
    ``"poisson"`` is the exponential case k = 1). Lengths are lognormal with the given
    mean and log-sd, rounded and clipped to ``[1, max_tokens]``. Tenants are drawn
    uniformly.

    Examples
    --------
    >>> t = synthetic_trace(2000, rate=4.0, seed=1)
    >>> len(t), round(t.rate, 1)
    (2000, 4.0)
    """
    if not isinstance(n, int) or n < 1:
        raise InputError(f"synthetic: field 'n' must be an integer >= 1, got {n!r}")
    for name, v in (
        ("rate", rate),
        ("cv", cv),
        ("prompt_mean", prompt_mean),
        ("output_mean", output_mean),
    ):
        if not (isinstance(v, int | float) and math.isfinite(v) and v > 0):
            raise InputError(f"synthetic: field '{name}' must be > 0, got {v!r}")
    if arrival not in ("poisson", "gamma"):
        raise InputError(
            f"synthetic: field 'arrival' must be 'poisson' or 'gamma', got {arrival!r}"
        )
    rng = np.random.default_rng(seed)
    k = 1.0 if arrival == "poisson" else 1.0 / (cv * cv)
    gaps = rng.gamma(k, 1.0 / (rate * k), size=n)
    gaps[0] = 0.0
    t = np.cumsum(gaps)

    def lengths(mean: float, sigma: float) -> IntArray:
        mu = math.log(mean) - sigma * sigma / 2
        x = np.rint(rng.lognormal(mu, sigma, size=n))
        return np.clip(x, 1, max_tokens).astype(np.int64)

    prompt = lengths(prompt_mean, prompt_sigma)
    output = lengths(output_mean, output_sigma)
    tenant = rng.integers(0, len(tenants), size=n)
    return Trace(
        arrival=t,
        prompt=prompt,
        output=output,
        tenant=tenant,
        tenants=tuple(tenants),
        source="synthetic",
    )


def load_trace(path: str | Path, fmt: str) -> Trace:
    """Load a trace file in one of :data:`TRACE_FORMATS`.

    For ``synthetic`` the file is a JSON object of :func:`synthetic_trace` keyword
    arguments (``{"n": 1000, "rate": 5.0, ...}``).
    """
    if fmt == "azure":
        return load_azure(path)
    if fmt == "mooncake":
        return load_mooncake(path)
    if fmt == "vidur":
        return load_vidur(path)
    if fmt == "synthetic":
        p, lines = _open_text(path)
        try:
            spec = json.loads("\n".join(lines))
        except json.JSONDecodeError as e:
            raise InputError(f"{p}:{e.lineno}: invalid JSON ({e.msg})") from None
        if not isinstance(spec, dict):
            raise InputError(f"{p}:1: expected a JSON object of synthetic_trace arguments")
        allowed = {
            "n",
            "rate",
            "arrival",
            "cv",
            "prompt_mean",
            "prompt_sigma",
            "output_mean",
            "output_sigma",
            "max_tokens",
            "tenants",
            "seed",
        }
        for key in spec:
            if key not in allowed:
                raise InputError(f"{p}:1: unknown field '{key}' for a synthetic trace")
        for key in ("n", "rate"):
            if key not in spec:
                raise InputError(f"{p}:1: missing field '{key}'")
        try:
            return synthetic_trace(**spec)
        except InputError as e:
            raise InputError(f"{p}: {e}") from None
        except TypeError as e:
            raise InputError(f"{p}: {e}") from None
    raise InputError(
        f"trace: field 'format' must be one of {', '.join(TRACE_FORMATS)}, got {fmt!r}"
    )
