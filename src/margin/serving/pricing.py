"""Congestion prices of a priority queue: Pollaczek–Khinchine, Cobham, Mendelson–Whang.

The serving layer is abstracted as an M/G/1 queue whose service time ``S`` is the replica
time a request consumes (its *work*, seconds; see :func:`request_work`). With classes
``k = 1..K`` served by non-preemptive priority (1 first), arrival rates ``λ_k``, service
moments ``E[S_k]``, ``E[S_k²]``, loads ``ρ_k = λ_k E[S_k]`` and ``σ_k = Σ_{j≤k} ρ_j``:

* mean residual work ``W0 = Σ_k λ_k E[S_k²] / 2``;
* Cobham's mean waiting time ``W_k = W0 / ((1 − σ_{k−1})(1 − σ_k))`` (one class: the
  Pollaczek–Khinchine formula ``W = λE[S²] / (2(1 − ρ))``);
* the Mendelson–Whang (Oper. Res. 1990) incentive-compatible priority price of class ``k``
  is the marginal external delay cost of one more class-``k`` job,
  ``p_k = Σ_j λ_j c_j ∂W_j/∂λ_k`` with ``c_j`` the delay cost rate (USD/s) of class ``j``
  and

  ``∂W_j/∂λ_k = (E[S_k²]/2) / ((1−σ_{j−1})(1−σ_j))
  + W_j E[S_k] ([k ≤ j−1]/(1−σ_{j−1}) + [k ≤ j]/(1−σ_j))``.

This is the ``λ·ΔL`` term of Eq. 1 seen from the other tenants: the first-best serving
policy charges each request the delay it imposes (Sec. 3.3, congestion pricing).
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from margin.core.prices import InputError, Option, PriceVector
from margin.ledger.records import LedgerRecord, RecordSink, usd_to_nanos
from margin.serving.costmodel import CostModel
from margin.serving.traces import Trace

__all__ = [
    "PriorityQueueModel",
    "Quote",
    "cobham_waits",
    "externality_by_removal",
    "mendelson_whang_prices",
    "pk_wait",
    "request_work",
    "simulate_priority_queue",
]

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]


def _moments(
    rates: npt.ArrayLike, mean_service: npt.ArrayLike, second_moment: npt.ArrayLike
) -> tuple[FloatArray, FloatArray, FloatArray]:
    lam = np.asarray(rates, dtype=np.float64).ravel()
    m1 = np.asarray(mean_service, dtype=np.float64).ravel()
    m2 = np.asarray(second_moment, dtype=np.float64).ravel()
    if not (lam.size == m1.size == m2.size) or lam.size == 0:
        raise InputError("queue model: rates and service moments must have the same length >= 1")
    if np.any(lam < 0) or np.any(m1 < 0) or np.any(m2 < m1 * m1 - 1e-12):
        raise InputError("queue model: need rates >= 0, E[S] >= 0 and E[S^2] >= E[S]^2")
    return lam, m1, m2


def pk_wait(rate: float, mean_service: float, second_moment: float) -> float:
    """Pollaczek–Khinchine mean wait of M/G/1 FCFS, ``λE[S²] / (2(1 − ρ))`` (inf if ρ ≥ 1).

    Examples
    --------
    >>> pk_wait(0.5, 1.0, 2.0)  # M/M/1 with ρ = 0.5: W = ρ/(μ − λ) = 1
    1.0
    """
    rho = rate * mean_service
    return float("inf") if rho >= 1 else rate * second_moment / (2.0 * (1.0 - rho))


def cobham_waits(
    rates: npt.ArrayLike, mean_service: npt.ArrayLike, second_moment: npt.ArrayLike
) -> FloatArray:
    """Cobham's non-preemptive priority waits ``W_k = W0 / ((1 − σ_{k−1})(1 − σ_k))``.

    Class 0 has the highest priority. Classes at or beyond saturation get ``inf``.

    Examples
    --------
    >>> cobham_waits([0.3, 0.3], [1.0, 1.0], [2.0, 2.0]).round(4).tolist()
    [0.8571, 2.1429]
    """
    lam, m1, m2 = _moments(rates, mean_service, second_moment)
    w0 = float(np.sum(lam * m2)) / 2.0
    sigma = np.cumsum(lam * m1)
    prev = np.concatenate([[0.0], sigma[:-1]])
    with np.errstate(divide="ignore"):
        w = w0 / ((1.0 - prev) * (1.0 - sigma))
    w[sigma >= 1.0] = np.inf
    return w


def mendelson_whang_prices(
    rates: npt.ArrayLike,
    mean_service: npt.ArrayLike,
    second_moment: npt.ArrayLike,
    delay_cost: npt.ArrayLike,
) -> FloatArray:
    """Incentive-compatible priority prices ``p_k = Σ_j λ_j c_j ∂W_j/∂λ_k`` (module docstring).

    ``delay_cost[j]`` is c_j in USD per second of waiting. The result is in USD per job.

    Examples
    --------
    One class, M/M/1 with μ = 1: ``p = λ ∂W/∂λ = λ(1/(1−ρ)²)·... = ρ/(1−ρ)²`` for c = 1.

    >>> round(float(mendelson_whang_prices([0.5], [1.0], [2.0], [1.0])[0]), 6)
    2.0
    """
    lam, m1, m2 = _moments(rates, mean_service, second_moment)
    c = np.asarray(delay_cost, dtype=np.float64).ravel()
    if c.size != lam.size or np.any(c < 0):
        raise InputError("queue model: delay_cost must have one entry >= 0 per class")
    w = cobham_waits(lam, m1, m2)
    sigma = np.cumsum(lam * m1)
    prev = np.concatenate([[0.0], sigma[:-1]])
    if sigma[-1] >= 1.0:
        return np.full(lam.size, np.inf)
    k = np.arange(lam.size)
    # dW[j, k] = ∂W_j/∂λ_k
    base = (m2[None, :] / 2.0) / ((1.0 - prev) * (1.0 - sigma))[:, None]
    above_prev = (k[None, :] <= k[:, None] - 1) / (1.0 - prev)[:, None]
    above_cur = (k[None, :] <= k[:, None]) / (1.0 - sigma)[:, None]
    dw = base + w[:, None] * m1[None, :] * (above_prev + above_cur)
    return np.asarray((lam * c) @ dw, dtype=np.float64)


@dataclass(frozen=True, slots=True)
class Quote:
    """What one more request costs: ΔC (USD) and ΔL (seconds) of Eq. 1.

    ``cost`` = compute cost + congestion price; ``price`` is the congestion part alone
    (the delay cost the request imposes on others); ``latency`` = expected wait + service.
    """

    cost: float
    latency: float
    price: float
    priority_class: int

    def __iter__(self) -> Iterator[float]:
        """Unpack as ``(ΔC, ΔL)``."""
        yield self.cost
        yield self.latency


def request_work(
    prompt: npt.ArrayLike, output: npt.ArrayLike, model: CostModel, batch_ref: float = 32.0
) -> FloatArray:
    """Replica seconds one request consumes: its service time in the M/G/1 abstraction.

    ``S = t(prompt alone) + output·(α(B)/B + β·(prompt + output/2))`` where ``α(B), β`` are
    the decode coefficients of the cost model at the reference batch ``B`` (the fixed
    iteration cost is shared by the batch, the context-proportional cost is not).

    Examples
    --------
    >>> from margin.serving.costmodel import DistServeCostModel
    >>> m = DistServeCostModel.default()
    >>> request_work([512], [1], m, batch_ref=1).round(4).tolist()
    [0.0924]
    """
    p = np.asarray(prompt, dtype=np.float64).ravel()
    o = np.asarray(output, dtype=np.float64).ravel()
    b = max(round(batch_ref), 1)
    alpha, beta = model.decode_coefficients(b)
    pre = np.array([model.iteration_time(float(x), float(x) * x, 0.0, 0) for x in np.unique(p)])
    pre_of = dict(zip(np.unique(p).tolist(), pre.tolist(), strict=True))
    prefill = np.array([pre_of[x] for x in p.tolist()])
    return np.asarray(prefill + o * (alpha / b + beta * (p + o / 2.0)), dtype=np.float64)


@dataclass(frozen=True, slots=True)
class PriorityQueueModel:
    """An M/G/1 priority queue fitted to a request population, for quotes.

    Classes are quantile buckets of the work ``S`` (shortest first, the cμ order when delay
    costs are equal); ``quote`` returns (ΔC, ΔL) of Eq. 1 for a new request.

    Parameters
    ----------
    edges : ndarray
        Upper work bound (seconds) of each class but the last.
    rates, mean_service, second_moment, delay_cost : ndarray
        λ_k (1/s), E[S_k], E[S_k²], c_k (USD/s) per class.
    usd_per_second : float
        Compute price of one replica-second (the operator's ΔC per unit of work).
    """

    edges: FloatArray
    rates: FloatArray
    mean_service: FloatArray
    second_moment: FloatArray
    delay_cost: FloatArray
    usd_per_second: float = 0.0

    @classmethod
    def fit(
        cls,
        work: npt.ArrayLike,
        rate: float,
        delay_cost: npt.ArrayLike | float = 1.0,
        n_classes: int = 4,
        usd_per_second: float = 0.0,
    ) -> PriorityQueueModel:
        """Fit classes from sample works arriving at total ``rate`` per second.

        Examples
        --------
        >>> m = PriorityQueueModel.fit([1.0, 1.0, 3.0, 3.0], rate=0.2, n_classes=2)
        >>> m.waits().round(3).tolist()
        [0.556, 0.926]
        """
        s = np.asarray(work, dtype=np.float64).ravel()
        if s.size == 0 or np.any(s < 0) or not np.all(np.isfinite(s)):
            raise InputError("queue model: field 'work' must be finite, >= 0 and non-empty")
        if not rate > 0:
            raise InputError(f"queue model: field 'rate' must be > 0, got {rate}")
        c = np.broadcast_to(np.asarray(delay_cost, dtype=np.float64), s.shape)
        k = max(1, min(int(n_classes), s.size))
        edges = np.quantile(s, np.arange(1, k) / k) if k > 1 else np.zeros(0)
        edges = np.unique(edges)
        cls_of = np.searchsorted(edges, s, side="left")
        kk = edges.size + 1
        counts = np.bincount(cls_of, minlength=kk).astype(np.float64)
        keep = counts > 0
        sums = np.bincount(cls_of, weights=s, minlength=kk)
        sq = np.bincount(cls_of, weights=s * s, minlength=kk)
        cs = np.bincount(cls_of, weights=c, minlength=kk)
        n = float(s.size)
        safe = np.maximum(counts, 1.0)
        return cls(
            edges=edges,
            rates=np.where(keep, rate * counts / n, 0.0),
            mean_service=np.where(keep, sums / safe, 0.0),
            second_moment=np.where(keep, sq / safe, 0.0),
            delay_cost=np.where(keep, cs / safe, 0.0),
            usd_per_second=usd_per_second,
        )

    @classmethod
    def from_trace(
        cls,
        trace: Trace,
        model: CostModel,
        n_classes: int = 4,
        usd_per_second: float = 0.0,
        replicas: int = 1,
    ) -> PriorityQueueModel:
        """Fit to a trace's requests (work from ``model``), arrival rate split over
        ``replicas``, delay costs from the trace's latency prices.

        Examples
        --------
        >>> from margin.serving.costmodel import DistServeCostModel
        >>> from margin.serving.traces import synthetic_trace
        >>> q = PriorityQueueModel.from_trace(synthetic_trace(500, rate=0.5, seed=0),
        ...                                   DistServeCostModel.default(), replicas=1)
        >>> dC, dL = q.quote_request(prompt=800, output=100, model=DistServeCostModel.default())
        >>> dC > 0 and dL > 0
        True
        """
        if replicas < 1:
            raise InputError(f"queue model: field 'replicas' must be >= 1, got {replicas}")
        work = request_work(trace.prompt, trace.output, model)
        return cls.fit(work, trace.rate / replicas, trace.latency_price, n_classes, usd_per_second)

    def quote_request(
        self,
        prompt: int,
        output: float,
        model: CostModel,
        *,
        prices: PriceVector | None = None,
        sink: RecordSink | None = None,
        request_id: str = "quote",
        tenant: str = "default",
    ) -> Quote:
        """Quote (ΔC, ΔL) for a request of ``prompt`` tokens and (expected) ``output`` tokens,
        the call a router or agent makes before sending. With a ``sink``, the quote is
        recorded as a ``LedgerRecord(layer="serving")`` at ``prices``."""
        work = float(request_work([prompt], [output], model)[0])
        q = self.quote(work)
        if sink is not None:
            sink.append(
                LedgerRecord(
                    request_id=request_id,
                    layer="serving",
                    choice="serve",
                    options=(Option("serve", 1.0, q.cost, q.latency),),
                    prices=prices if prices is not None else PriceVector(value=0.0),
                    tenant=tenant,
                    cost_nanos=usd_to_nanos(q.cost) if math.isfinite(q.cost) else 0,
                    attributes={
                        "kind": "quote",
                        "congestion_price": q.price,
                        "priority_class": q.priority_class,
                        "work_s": work,
                    },
                )
            )
        return q

    def classify(self, work: npt.ArrayLike) -> IntArray:
        return np.searchsorted(self.edges, np.asarray(work, dtype=np.float64), side="left")

    def waits(self) -> FloatArray:
        """Cobham waits per class."""
        return cobham_waits(self.rates, self.mean_service, self.second_moment)

    def prices(self) -> FloatArray:
        """Mendelson–Whang prices per class (USD per job)."""
        return mendelson_whang_prices(
            self.rates, self.mean_service, self.second_moment, self.delay_cost
        )

    def quote(self, work: float) -> Quote:
        """(ΔC, ΔL) for one request of the given work: ΔC = usd_per_second·S + p_k and
        ΔL = W_k + S."""
        k = int(self.classify(np.array([work]))[0])
        price = float(self.prices()[k])
        return Quote(
            cost=self.usd_per_second * work + price,
            latency=float(self.waits()[k]) + work,
            price=price,
            priority_class=k,
        )


def simulate_priority_queue(
    arrival: npt.ArrayLike, service: npt.ArrayLike, klass: npt.ArrayLike
) -> FloatArray:
    """Brute-force single-server non-preemptive priority queue; returns each job's wait.

    Jobs are served in (class, arrival) order whenever the server frees up; ties in class
    go first-come first-served. Used to check :func:`cobham_waits` and the prices.

    Examples
    --------
    >>> simulate_priority_queue([0.0, 0.1, 0.2], [1.0, 1.0, 1.0], [1, 1, 0]).round(2).tolist()
    [0.0, 1.9, 0.8]
    """
    a = np.asarray(arrival, dtype=np.float64).ravel()
    s = np.asarray(service, dtype=np.float64).ravel()
    k = np.asarray(klass, dtype=np.int64).ravel()
    n = a.size
    wait = np.zeros(n)
    order = np.argsort(a, kind="stable")
    heap: list[tuple[int, float, int]] = []
    t = 0.0
    i = 0
    al, kl, sl = a.tolist(), k.tolist(), s.tolist()
    ol = order.tolist()
    while i < n or heap:
        if not heap:
            j = ol[i]
            t = max(t, al[j])
            while i < n and al[ol[i]] <= t:
                jj = ol[i]
                heapq.heappush(heap, (kl[jj], al[jj], jj))
                i += 1
        _, _, j = heapq.heappop(heap)
        wait[j] = t - al[j]
        t += sl[j]
        while i < n and al[ol[i]] <= t:
            jj = ol[i]
            heapq.heappush(heap, (kl[jj], al[jj], jj))
            i += 1
    return wait


def externality_by_removal(
    arrival: npt.ArrayLike,
    service: npt.ArrayLike,
    klass: npt.ArrayLike,
    jobs: Sequence[int],
    delay_cost: npt.ArrayLike | None = None,
) -> FloatArray:
    """Brute-force external delay cost of each job in ``jobs``: the drop in the other
    jobs' total (cost-weighted) waiting when that job is removed from the sample path.

    Removing a job only shortens the busy period it belongs to, so each job is re-simulated
    over its busy period only. Averaged over the jobs of a class this estimates the
    Mendelson–Whang price of the class.
    """
    a = np.asarray(arrival, dtype=np.float64).ravel()
    s = np.asarray(service, dtype=np.float64).ravel()
    k = np.asarray(klass, dtype=np.int64).ravel()
    c = np.ones(a.size) if delay_cost is None else np.asarray(delay_cost, dtype=np.float64)
    order = np.argsort(a, kind="stable")
    a, s, k, c = a[order], s[order], k[order], c[order]
    inv = np.empty_like(order)
    inv[order] = np.arange(order.size)
    w = simulate_priority_queue(a, s, k)
    # busy periods: job i starts a new one when it arrives after all earlier work is done
    done = np.maximum.accumulate(a + w + s)
    starts = np.concatenate([[True], a[1:] >= done[:-1]])
    bp = np.cumsum(starts) - 1
    first = np.flatnonzero(starts)
    last = np.concatenate([first[1:], [a.size]])
    out = np.empty(len(jobs))
    for n_, job in enumerate(jobs):
        j = int(inv[job])
        lo, hi = int(first[bp[j]]), int(last[bp[j]])
        idx = np.array([x for x in range(lo, hi) if x != j], dtype=np.int64)
        before = float(np.sum(np.delete(c[lo:hi] * w[lo:hi], j - lo)))
        after = (
            float(np.sum(c[idx] * simulate_priority_queue(a[idx], s[idx], k[idx])))
            if idx.size
            else 0.0
        )
        out[n_] = before - after
    return out
