"""Columnar view of a ledger and the aggregations of the token-aware dashboard (Sec. 4).

One pass over the records extracts numpy columns; every breakdown after that is a
vectorized group-by (``np.unique`` + ``np.bincount``). Money is also summed exactly, in
Python integers of nano-dollars, so the USD figures in the report are exact.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import numpy as np
import numpy.typing as npt

from margin.core.prices import InputError
from margin.ledger.records import LAYERS, LedgerRecord, nanos_to_usd

__all__ = [
    "TOKEN_BUCKETS",
    "GroupRow",
    "LedgerFrame",
    "RequestRow",
    "ValueBucket",
    "format_usd",
]

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]

#: The non-overlapping token buckets of :class:`~margin.ledger.TokenUsage`.
TOKEN_BUCKETS = ("input", "cached_input", "cache_write", "output", "reasoning")


def format_usd(nanos: int) -> str:
    """Exact USD string of an integer nano-dollar amount: thousands separators, at least
    two decimals, no rounding (every nonzero nano-dollar digit is kept).

    Examples
    --------
    >>> format_usd(2500), format_usd(1_000_000_000), format_usd(-1_234_567_890_000)
    ('$0.0000025', '$1.00', '−$1,234.56789')
    """
    sign = "−" if nanos < 0 else ""
    d: Decimal = nanos_to_usd(abs(nanos))
    whole, _, frac = format(d, "f").partition(".")
    frac = frac.rstrip("0").ljust(2, "0")
    return f"{sign}${int(whole):,}.{frac}"


@dataclass(frozen=True, slots=True)
class GroupRow:
    """One row of a per-layer or per-tenant breakdown.

    ``cost_nanos`` is the exact sum of the records' money; ``tokens`` maps each of
    :data:`TOKEN_BUCKETS` (and ``total``) to its sum; ``value_quality``, ``cost``,
    ``latency_cost`` and ``risk_cost`` are the sums of V·ΔQ, ΔC, λ·ΔL and ρ·ΔR (USD),
    whose difference is the realized surplus of Eq. 1.
    """

    key: str
    records: int
    requests: int
    cost_nanos: int
    tokens: dict[str, int]
    value_quality: float
    cost: float
    latency_cost: float
    risk_cost: float
    regret_total: float
    regret_count: int
    mean_latency_price: float
    mean_risk_price: float

    @property
    def cost_usd(self) -> str:
        return format_usd(self.cost_nanos)

    @property
    def surplus(self) -> float:
        """Σ (V·ΔQ − ΔC − λ·ΔL − ρ·ΔR), the realized bracket of Eq. 1."""
        return self.value_quality - self.cost - self.latency_cost - self.risk_cost

    @property
    def regret_mean(self) -> float | None:
        return self.regret_total / self.regret_count if self.regret_count else None


@dataclass(frozen=True, slots=True)
class RequestRow:
    """One request of the per-request table: the realized vector summed over its
    decisions (V is the value of its first decision) and its regret against the
    ex-post optimum; ``misses`` lists ``layer: choice → ex-post optimal`` where they
    differ (``?`` where a decision records a regret but not its optimum)."""

    request_id: str
    tenant: str
    layers: str
    value: float
    cost: float
    latency_cost: float
    risk_cost: float
    regret: float | None
    misses: str


@dataclass(frozen=True, slots=True)
class ValueBucket:
    """Regret of the requests whose V falls in ``[low, high]``."""

    low: float
    high: float
    requests: int
    regret_total: float
    regret_mean: float


class LedgerFrame:
    """The ledger as numpy columns, one row per record.

    Parameters
    ----------
    records : iterable of LedgerRecord

    Examples
    --------
    >>> from margin.core.prices import Option, PriceVector
    >>> opts = (Option("cheap", 0.7, 1.0), Option("frontier", 0.9, 5.0))
    >>> recs = [LedgerRecord("r1", "routing", "frontier", opts, PriceVector(10.0),
    ...                      tenant="acme", cost_nanos=5 * 10**9, regret=2.0,
    ...                      ex_post_optimal="cheap")]
    >>> f = LedgerFrame(recs)
    >>> row = f.breakdown("layer")[0]
    >>> row.key, row.records, row.cost_usd, row.surplus, row.regret_total
    ('routing', 1, '$5.00', 4.0, 2.0)
    """

    def __init__(self, records: Iterable[LedgerRecord]) -> None:
        request: list[str] = []
        layer: list[str] = []
        tenant: list[str] = []
        choice: list[str] = []
        optimum: list[str] = []
        nanos: list[int] = []
        rows: list[tuple[float, ...]] = []
        tokens: list[tuple[int, ...]] = []
        for k, r in enumerate(records):
            if not isinstance(r, LedgerRecord):
                raise InputError(
                    f"report: record {k + 1}: expected a LedgerRecord, got {type(r).__name__}"
                )
            vec = r.realized_vector()
            chosen = r.chosen
            quality = (
                r.outcome.quality
                if r.outcome is not None and r.outcome.quality is not None
                else (chosen.quality if chosen is not None else 0.0)
            )
            rows.append(
                (
                    vec["V"],
                    vec["V"] * float(quality),
                    vec["dC"],
                    vec["lambda_dL"],
                    vec["rho_dR"],
                    np.nan if r.regret is None else float(r.regret),
                    r.prices.latency_price,
                    r.prices.risk_price,
                )
            )
            u = r.usage
            tokens.append((u.input, u.cached_input, u.cache_write, u.output, u.reasoning))
            request.append(r.request_id)
            layer.append(r.layer)
            tenant.append(r.tenant)
            choice.append("" if r.choice is None else r.choice)
            optimum.append("" if r.ex_post_optimal is None else r.ex_post_optimal)
            nanos.append(r.cost_nanos)
        self.n = len(rows)
        table = np.asarray(rows, dtype=np.float64).reshape(self.n, 8)
        self.value: FloatArray = table[:, 0]
        self.value_quality: FloatArray = table[:, 1]
        self.cost: FloatArray = table[:, 2]
        self.latency_cost: FloatArray = table[:, 3]
        self.risk_cost: FloatArray = table[:, 4]
        self.regret: FloatArray = table[:, 5]
        self.latency_price: FloatArray = table[:, 6]
        self.risk_price: FloatArray = table[:, 7]
        self.tokens: IntArray = np.asarray(tokens, dtype=np.int64).reshape(self.n, 5)
        self.cost_nanos: list[int] = nanos
        self.request_id = np.asarray(request, dtype=object)
        self.layer = np.asarray(layer, dtype=object)
        self.tenant = np.asarray(tenant, dtype=object)
        self.choice = np.asarray(choice, dtype=object)
        self.optimum = np.asarray(optimum, dtype=object)
        self._req_keys, self._req_index = self._codes(self.request_id)

    @staticmethod
    def _codes(column: npt.NDArray[Any]) -> tuple[list[str], IntArray]:
        if column.size == 0:
            return [], np.zeros(0, dtype=np.int64)
        keys, inverse = np.unique(column.astype(str), return_inverse=True)
        return [str(k) for k in keys], inverse.astype(np.int64).reshape(-1)

    @property
    def requests(self) -> int:
        return len(self._req_keys)

    @property
    def cost_nanos_total(self) -> int:
        return sum(self.cost_nanos)

    def regret_total(self) -> float:
        return float(np.nansum(self.regret)) if self.n else 0.0

    def breakdown(self, by: str) -> list[GroupRow]:
        """Per-``layer`` or per-``tenant`` totals, one :class:`GroupRow` per group (sorted)."""
        if by not in ("layer", "tenant"):
            raise InputError(
                f"report: breakdown field 'by' must be 'layer' or 'tenant', got {by!r}"
            )
        keys, idx = self._codes(self.layer if by == "layer" else self.tenant)
        if by == "layer":  # the paper's order (Table 1), not the alphabet
            rank = np.array([LAYERS.index(k) for k in keys], dtype=np.int64)
            order = np.argsort(rank)
            keys = [keys[k] for k in order]
            idx = np.argsort(order)[idx]
        g = len(keys)
        if g == 0:
            return []

        def total(x: FloatArray) -> FloatArray:
            return np.bincount(idx, weights=x, minlength=g).astype(np.float64)

        count = np.bincount(idx, minlength=g)
        has_regret = ~np.isnan(self.regret)
        regret = np.bincount(idx[has_regret], weights=self.regret[has_regret], minlength=g)
        regret_n = np.bincount(idx[has_regret], minlength=g)
        tok = np.zeros((g, 5), dtype=np.int64)
        np.add.at(tok, idx, self.tokens)
        money = [0] * g
        for k, amount in zip(idx.tolist(), self.cost_nanos, strict=True):
            money[k] += amount
        pairs = np.unique(np.stack([idx, self._req_index]), axis=1)
        requests = np.bincount(pairs[0], minlength=g)
        sums = [
            total(x) for x in (self.value_quality, self.cost, self.latency_cost, self.risk_cost)
        ]
        lam, rho = total(self.latency_price) / count, total(self.risk_price) / count
        out = []
        for k, key in enumerate(keys):
            buckets = {b: int(tok[k, j]) for j, b in enumerate(TOKEN_BUCKETS)}
            buckets["total"] = sum(buckets.values())
            out.append(
                GroupRow(
                    key=key,
                    records=int(count[k]),
                    requests=int(requests[k]),
                    cost_nanos=money[k],
                    tokens=buckets,
                    value_quality=float(sums[0][k]),
                    cost=float(sums[1][k]),
                    latency_cost=float(sums[2][k]),
                    risk_cost=float(sums[3][k]),
                    regret_total=float(regret[k]),
                    regret_count=int(regret_n[k]),
                    mean_latency_price=float(lam[k]),
                    mean_risk_price=float(rho[k]),
                )
            )
        return out

    def request_arrays(self) -> dict[str, FloatArray]:
        """Per-request sums (in the order of the sorted request ids): ``value`` (V of the
        first decision), ``cost``, ``latency_cost``, ``risk_cost``, ``regret`` (NaN when
        no decision of the request has a regret)."""
        m = self.requests
        idx = self._req_index
        first = np.full(m, self.n, dtype=np.int64)
        np.minimum.at(first, idx, np.arange(self.n, dtype=np.int64))
        has = ~np.isnan(self.regret)
        regret = np.bincount(idx[has], weights=self.regret[has], minlength=m)
        known = np.bincount(idx[has], minlength=m) > 0
        return {
            "value": self.value[first] if m else np.zeros(0),
            "cost": np.bincount(idx, weights=self.cost, minlength=m),
            "latency_cost": np.bincount(idx, weights=self.latency_cost, minlength=m),
            "risk_cost": np.bincount(idx, weights=self.risk_cost, minlength=m),
            "regret": np.where(known, regret, np.nan),
            "first": first.astype(np.float64),
        }

    def top_requests(self, limit: int) -> list[RequestRow]:
        """The ``limit`` requests with the largest regret (unknown regret counts as 0; ties
        by larger ΔC), each with its realized vector summed over its decisions."""
        if limit < 0:
            raise InputError(f"report: field 'limit' must be >= 0, got {limit}")
        a = self.request_arrays()
        if not self.requests or limit == 0:
            return []
        order = np.lexsort((-a["cost"], -np.nan_to_num(a["regret"], nan=0.0)))[:limit]
        chosen = set(order.tolist())
        members: dict[int, list[int]] = {k: [] for k in chosen}
        for i, k in enumerate(self._req_index.tolist()):
            if k in chosen:
                members[k].append(i)
        out = []
        for k in order.tolist():
            rows = members[k]
            misses = [
                f"{self.layer[i]}: {self.choice[i] or '(none)'} → {self.optimum[i] or '?'}"
                for i in rows
                if (self.optimum[i] and self.optimum[i] != self.choice[i])
                or (not self.optimum[i] and self.regret[i] > 0)
            ]
            layers = list(dict.fromkeys(str(self.layer[i]) for i in rows))
            regret = float(a["regret"][k])
            out.append(
                RequestRow(
                    request_id=self._req_keys[k],
                    tenant=str(self.tenant[rows[0]]),
                    layers=", ".join(layers),
                    value=float(a["value"][k]),
                    cost=float(a["cost"][k]),
                    latency_cost=float(a["latency_cost"][k]),
                    risk_cost=float(a["risk_cost"][k]),
                    regret=None if np.isnan(regret) else regret,
                    misses="; ".join(misses),
                )
            )
        return out

    def value_buckets(self, bins: int = 6) -> list[ValueBucket]:
        """Regret of the requests grouped by quantiles of V (at most ``bins`` buckets; the
        requests with unknown regret are left out)."""
        a = self.request_arrays()
        keep = ~np.isnan(a["regret"])
        v, reg = a["value"][keep], a["regret"][keep]
        if v.size == 0:
            return []
        edges = np.unique(np.quantile(v, np.linspace(0.0, 1.0, bins + 1)))
        if edges.size == 1:
            return [
                ValueBucket(
                    float(v[0]), float(v[0]), int(v.size), float(reg.sum()), float(reg.mean())
                )
            ]
        which = np.clip(np.searchsorted(edges, v, side="right") - 1, 0, edges.size - 2)
        n = np.bincount(which, minlength=edges.size - 1)
        tot = np.bincount(which, weights=reg, minlength=edges.size - 1)
        return [
            ValueBucket(
                float(edges[k]),
                float(edges[k + 1]),
                int(n[k]),
                float(tot[k]),
                float(tot[k] / n[k]) if n[k] else 0.0,
            )
            for k in range(edges.size - 1)
            if n[k]
        ]
