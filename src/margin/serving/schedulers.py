"""Request schedulers of a serving replica, behind one small protocol and a registry.

A scheduler turns a trace into one static priority key per request (lower is served
first); the simulator keeps each replica's waiting queue ordered by these keys, picks
preemption victims from the highest keys, and, for preemptive schedulers, re-keys
running requests by their remaining work. The congestion-priced scheduler also runs
admission control (:attr:`Scheduler.admission`).

Names (``serve simulate --scheduler``): ``fcfs``, ``priority``, ``sjf``, ``sjf-oracle``,
``srpt``, ``priced``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

import numpy as np
import numpy.typing as npt

from margin.core.prices import InputError
from margin.serving.costmodel import CostModel
from margin.serving.predictor import OutputLengthPredictor
from margin.serving.pricing import request_work
from margin.serving.traces import Trace

__all__ = [
    "FCFS",
    "SCHEDULERS",
    "SJF",
    "SRPT",
    "OracleSJF",
    "PricedScheduler",
    "PriorityScheduler",
    "Scheduler",
    "make_scheduler",
]

FloatArray = npt.NDArray[np.float64]


@runtime_checkable
class Scheduler(Protocol):
    """Orders requests; lower key first."""

    name: str
    #: SRPT-style: a waiting request with a lower key preempts (swaps out) a running one.
    preemptive: bool
    #: Uses the realized output lengths (a bound, not a deployable policy).
    oracle: bool
    #: Runs quote-based admission control (defer / reject) in the simulator.
    admission: bool

    def priorities(self, trace: Trace, model: CostModel) -> FloatArray:
        """One key per request of ``trace``; lower keys are served first."""
        ...


def _rank(*keys: FloatArray) -> FloatArray:
    """Dense float rank of a lexicographic order (last key most significant)."""
    order = np.lexsort(keys)
    r = np.empty(order.size)
    r[order] = np.arange(order.size, dtype=np.float64)
    return r


@dataclass
class FCFS:
    """First come, first served: the vLLM default (key = arrival time)."""

    name: str = "fcfs"
    preemptive: bool = False
    oracle: bool = False
    admission: bool = False

    def priorities(self, trace: Trace, model: CostModel) -> FloatArray:
        """Examples
        --------
        >>> from margin.serving.traces import Trace
        >>> from margin.serving.costmodel import DistServeCostModel
        >>> t = Trace(arrival=np.array([0.0, 1.0]), prompt=np.array([5, 5]),
        ...           output=np.array([9, 1]))
        >>> FCFS().priorities(t, DistServeCostModel.default()).tolist()
        [0.0, 1.0]
        """
        return np.asarray(trace.arrival, dtype=np.float64).copy()


@dataclass
class PriorityScheduler:
    """Static tenant priority: higher latency price λ first, FCFS within a level."""

    name: str = "priority"
    preemptive: bool = False
    oracle: bool = False
    admission: bool = False

    def priorities(self, trace: Trace, model: CostModel) -> FloatArray:
        return _rank(trace.arrival, -trace.latency_price)


@dataclass
class SJF:
    """Shortest predicted job first with a learned output-length predictor.

    The predictor (:class:`~margin.serving.predictor.OutputLengthPredictor`, after the
    learning-to-rank scheduler of arXiv 2408.15792) is fitted on ``train`` when given,
    else on the first ``train_fraction`` of the trace it schedules; the key is the
    predicted work :func:`~margin.serving.pricing.request_work` (prompt known, output
    predicted). ``kendall_tau_`` is the ranking quality on the requests not used to fit.
    """

    name: str = "sjf"
    preemptive: bool = False
    oracle: bool = False
    admission: bool = False
    train: Trace | None = None
    train_fraction: float = 0.2
    predictor: OutputLengthPredictor = field(default_factory=OutputLengthPredictor)
    kendall_tau_: float = field(default=float("nan"), init=False)

    def predicted_output(self, trace: Trace) -> FloatArray:
        if self.train is not None:
            self.predictor.fit(self.train)
            holdout = trace
        else:
            m = max(2, int(len(trace) * self.train_fraction))
            idx = np.arange(len(trace))
            self.predictor.fit(trace.take(idx[:m]))
            holdout = trace.take(idx[m:]) if m < len(trace) else trace
        self.kendall_tau_ = self.predictor.score(holdout)
        return self.predictor.predict(trace)

    def priorities(self, trace: Trace, model: CostModel) -> FloatArray:
        work = request_work(trace.prompt, self.predicted_output(trace), model)
        return _rank(trace.arrival, work)


@dataclass
class OracleSJF:
    """Shortest job first with the realized output lengths (non-preemptive oracle)."""

    name: str = "sjf-oracle"
    preemptive: bool = False
    oracle: bool = True
    admission: bool = False

    def priorities(self, trace: Trace, model: CostModel) -> FloatArray:
        return _rank(trace.arrival, request_work(trace.prompt, trace.output, model))


@dataclass
class SRPT:
    """Preemptive shortest remaining processing time with oracle lengths.

    Waiting requests are keyed by their total work; running requests by their remaining
    work, re-evaluated whenever a request waits that could not be admitted. Preemption
    swaps the victim's KV cache out (its state is kept; the swap time is not charged), so
    SRPT is an idealized lower bound on mean latency.
    """

    name: str = "srpt"
    preemptive: bool = True
    oracle: bool = True
    admission: bool = False

    def priorities(self, trace: Trace, model: CostModel) -> FloatArray:
        return request_work(trace.prompt, trace.output, model)


@dataclass
class PricedScheduler:
    """Congestion-priced scheduling and admission (Sec. 3.3: charge the marginal external delay).

    Order: the cμ rule (Smith's rule), i.e. descending delay cost per unit of predicted
    work ``λ_i / Ŝ_i``, which minimizes the value-weighted delay ``Σ λ_i T_i`` of a
    work-conserving queue and is the order that the Mendelson–Whang incentive-compatible
    prices make users self-select. ``Ŝ_i`` is the predicted work (prompt known, output from
    the learned predictor).

    Admission: at arrival the simulator quotes the request the sample-path version of the
    Mendelson–Whang price (:mod:`margin.serving.pricing`),
    ``p_i = Ŝ_i · (Σ_{j queued behind i} λ_j + Σ_{j running} λ_j)``: every job that waits
    behind i or shares the replica with it is delayed by i's work. The request is admitted
    when its net value ``V_i·ΔQ − p_i − λ_i·(W_i + Ŝ_i) ≥ 0`` (ΔQ = 1, ``W_i`` = work queued
    ahead of it), deferred otherwise, re-quoted every ``recheck_s`` seconds and rejected
    once it has been deferred ``max_defer_s``.
    """

    name: str = "priced"
    preemptive: bool = False
    oracle: bool = False
    admission: bool = True
    max_defer_s: float = 30.0
    recheck_s: float = 0.5
    sjf: SJF = field(default_factory=SJF)
    work_: FloatArray = field(default_factory=lambda: np.zeros(0), init=False)

    def priorities(self, trace: Trace, model: CostModel) -> FloatArray:
        if self.max_defer_s < 0 or self.recheck_s <= 0:
            raise InputError("priced scheduler: need max_defer_s >= 0 and recheck_s > 0")
        self.work_ = request_work(trace.prompt, self.sjf.predicted_output(trace), model)
        density = trace.latency_price / np.maximum(self.work_, 1e-9)
        return _rank(trace.arrival, -density)

    @property
    def kendall_tau_(self) -> float:
        return self.sjf.kendall_tau_


#: CLI name -> factory.
SCHEDULERS: dict[str, Callable[[], Scheduler]] = {
    "fcfs": FCFS,
    "priority": PriorityScheduler,
    "sjf": SJF,
    "sjf-oracle": OracleSJF,
    "srpt": SRPT,
    "priced": PricedScheduler,
}


def make_scheduler(name: str) -> Scheduler:
    """A fresh scheduler by CLI name.

    Examples
    --------
    >>> make_scheduler("srpt").preemptive
    True
    >>> make_scheduler("lifo")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    margin.core.prices.InputError: scheduler: unknown name 'lifo'; choose from ...
    """
    try:
        return SCHEDULERS[name]()
    except KeyError:
        raise InputError(
            f"scheduler: unknown name {name!r}; choose from {', '.join(SCHEDULERS)}"
        ) from None
