"""The risk-adjusted router of Eq. 4 and the protocol every router (ours and the peers) follows.

Eq. 4 of the paper::

    m*(x) = argmax_m  V(x)·q̂_m(x) − ĉ_m(x) − λ·l̂_m(x) − ρ·r̂_m(x)

with risk ``r̂_m(x) = P̂(wrong)·K(class) = (1 − q̂_m(x))·K(class)`` for a request of risk
class ``class`` with consequence ``K`` (USD-equivalent loss units), or, for the classes
listed in ``cvar_classes``, the CVaR of that Bernoulli loss,
``CVaR_β = K·min(P̂(wrong), 1 − β)/(1 − β)`` (Sec. 2, "The Knightian limit of ρ").

Guard against estimation error ("never confidently worse than the best fixed model"): the
router starts from the population choice ``b(V)`` — the model with the best *mean* surplus
on the training data at this request's prices — and departs from it only when the
per-prompt surplus advantage exceeds a margin ``τ(V) = κ(V)·V``. Per value tier, the
source of q̂ (the shrunk text model or the per-task prior) and ``κ`` are chosen on
out-of-fold training predictions by the *selection rule* S: candidates must beat the
population choice by ``guard_z`` paired standard errors, then the one-standard-error rule
keeps the most conservative candidate within one paired standard error of the best one
(``κ = ∞`` means "always use the population choice").

S picks the best of 15 candidates on the rows it is judged on, so its in-sample gain is
biased upward (the winner's curse). The departure is therefore tested on an honest
estimate of S itself, by repeated cross-validation of the selection step: the out-of-fold
rows are split into ``cv`` folds ``guard_repeats`` times; on each split S is run on the
other folds and the candidate it picks is scored on the held-out fold, giving per row the
mean held-out gain ``d_k = u_k(S) − u_k(b)``. The tier keeps S's full-data pick only if

    mean(d) > guard_z · sd(d)/√n                                  (one-sided test)

and otherwise uses the population choice (``κ = ∞``). Everything is decided on training
rows only.
"""

from __future__ import annotations

import math
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import numpy as np
import numpy.typing as npt

from margin.core.allocation import allocate_batch
from margin.core.prices import InputError, Option, PriceVector
from margin.ledger.records import LedgerRecord, RecordSink, usd_to_nanos
from margin.routing.data import RoutingDataset
from margin.routing.estimators import (
    CalibratedLogistic,
    CalibrationReport,
    Features,
    LinearCostEstimator,
    QualityEstimator,
    ShrunkQuality,
    TaskPrior,
    TextFeaturizer,
    TokenLatencyEstimator,
    calibration_report,
    folds,
    init_params,
    out_of_fold,
)

__all__ = ["VALUE_TIERS", "MarginalRouter", "Router", "Routing", "bernoulli_cvar", "value_tier"]

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.intp]
BoolArray = npt.NDArray[np.bool_]


@dataclass(frozen=True, eq=False)
class Routing:
    """A router's decisions on ``n`` prompts.

    ``choice[k]`` is the index (into ``models``) of the model whose answer is used;
    ``called`` (n, m), when given, marks every model that was called and paid for (a
    cascade pays for each step); ``None`` means only the chosen model was called.
    """

    models: tuple[str, ...]
    choice: IntArray
    called: BoolArray | None = None

    def names(self) -> list[str]:
        return [self.models[int(i)] for i in self.choice]

    def paid(self, cost: FloatArray) -> FloatArray:
        """Money spent per prompt given the realized cost matrix (n, m)."""
        if self.called is None:
            out: FloatArray = np.take_along_axis(cost, self.choice[:, None], axis=1)[:, 0]
            return out
        total: FloatArray = np.where(self.called, cost, 0.0).sum(axis=1)
        return total


@runtime_checkable
class Router(Protocol):
    """A router: learn from a labeled dataset, then pick a model per prompt at value V.

    ``models_`` (set by ``fit``) lists the models in the order of the routing indices.
    """

    models_: tuple[str, ...]

    def fit(self, train: RoutingDataset) -> Router: ...

    def route(self, data: RoutingDataset, value: npt.ArrayLike) -> Routing:
        """Decisions for ``data`` (its models in the order the router was fit on) at per-row
        task value ``value`` (scalar or shape (n,))."""
        ...


def _values(value: npt.ArrayLike, n: int) -> FloatArray:
    v = np.asarray(value, dtype=np.float64)
    if v.ndim == 0:
        v = np.full(n, float(v))
    if v.shape != (n,):
        raise InputError(f"value: must be a scalar or have shape ({n},), got {v.shape}")
    if np.any(~np.isfinite(v)) or np.any(v < 0):
        raise InputError("value: must be finite and >= 0")
    return v


def bernoulli_cvar(p_wrong: npt.ArrayLike, consequence: npt.ArrayLike, level: float) -> FloatArray:
    """CVaR_β of the loss that is ``consequence`` with probability p and 0 otherwise:
    ``K·min(p, 1 − β)/(1 − β)`` (vectorized; equals :class:`margin.core.risk.CVaR` on
    :func:`margin.core.risk.bernoulli_loss`).

    Examples
    --------
    >>> bernoulli_cvar([0.01, 0.2], 1000.0, 0.95).round(9).tolist()
    [200.0, 1000.0]
    """
    if not 0.0 <= level < 1.0:
        raise InputError(f"cvar level: must be in [0, 1), got {level}")
    p = np.clip(np.asarray(p_wrong, dtype=np.float64), 0.0, 1.0)
    tail = 1.0 - level
    out: FloatArray = np.asarray(consequence, dtype=np.float64) * np.minimum(p, tail) / tail
    return out


#: κ grid (margin per unit of V) searched on out-of-fold predictions; inf = never depart.
KAPPA_GRID: tuple[float, ...] = (0.0, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, math.inf)
#: Value tiers (USD) at which κ is tuned; a request uses the nearest tier in log V.
VALUE_TIERS: tuple[float, ...] = tuple(float(10.0**e) for e in np.arange(-4.0, 2.51, 0.5))


def value_tier(value: npt.ArrayLike) -> IntArray:
    """Index of the nearest tier of :data:`VALUE_TIERS` in log10 V (V ≤ 0 → the lowest).

    Examples
    --------
    >>> [VALUE_TIERS[i] for i in value_tier([0.0012, 9.0])]
    [0.001, 10.0]
    """
    v = np.atleast_1d(np.asarray(value, dtype=np.float64))
    lv = np.log10(np.maximum(v, 1e-12))
    tiers = np.log10(np.asarray(VALUE_TIERS))
    out: IntArray = np.abs(lv[:, None] - tiers[None, :]).argmin(axis=1)
    return out


class MarginalRouter:
    """Eq. 4 with estimated q̂, ĉ (and l̂ when the data has latency), risk priced by ρ.

    Parameters
    ----------
    quality : QualityEstimator, optional
        Default: :class:`ShrunkQuality` around a :class:`CalibratedLogistic`.
    consequence : mapping str -> float
        Loss K of a wrong answer per risk class (USD-equivalent); unknown classes use
        ``consequence.get("default", 1.0)``.
    cvar_classes : sequence of str
        Risk classes priced by CVaR at ``cvar_level`` instead of the expectation.
    guard : bool
        Tune the departure margins κ(V) on out-of-fold predictions (see module docstring).
    guard_z : float
        A departure from the population choice must raise out-of-fold utility by this many
        paired standard errors (2 ≈ a one-sided test at 2.5%), both inside the selection
        rule and in the cross-validated test of the rule (module docstring).
    guard_repeats : int
        Number of random ``cv``-fold partitions in the cross-validated test of the
        selection rule (more repeats, less Monte Carlo noise in the decision).
    featurizer : TextFeaturizer, optional
    speed_table : mapping, optional
        Per-model ``{"ttft", "prefill", "decode"}`` speeds giving l̂ via
        :class:`TokenLatencyEstimator` when the training data has no latency.
    cv, seed : int

    Attributes
    ----------
    kappa_, source_ : ndarray, one entry per tier of :data:`VALUE_TIERS`
        The departure margin κ (``inf``: always the population choice) and the q̂ source
        (0 text model, 1 task prior) of each value tier.
    guard_gain_, guard_se_ : ndarray, one entry per tier
        The cross-validated mean gain per prompt of the selection rule over the population
        choice and its standard error (USD); a tier departs only where
        ``guard_gain_ > guard_z·guard_se_`` (NaN when the guard was not tuned).

    Examples
    --------
    >>> d = RoutingDataset.from_arrays(
    ...     ["easy sum"] * 20 + ["hard proof"] * 20, ["small", "large"],
    ...     [[1, 1]] * 20 + [[0, 1]] * 20, [[0.001, 0.01]] * 40,
    ...     tasks=["math"] * 40)
    >>> r = MarginalRouter(guard=False).fit(d)
    >>> r.route(d.subset([0, 20]), value=1.0).names()
    ['small', 'large']
    """

    def __init__(
        self,
        quality: QualityEstimator | None = None,
        *,
        consequence: Mapping[str, float] | None = None,
        cvar_classes: Sequence[str] = (),
        cvar_level: float = 0.95,
        guard: bool = True,
        guard_z: float = 2.0,
        guard_repeats: int = 200,
        featurizer: TextFeaturizer | None = None,
        speed_table: Mapping[str, Mapping[str, float]] | None = None,
        cv: int = 5,
        seed: int = 0,
    ) -> None:
        self.speed_table = speed_table
        self.quality = quality
        self.consequence = dict(consequence) if consequence is not None else {"default": 1.0}
        self.cvar_classes = tuple(cvar_classes)
        self.cvar_level = cvar_level
        self.guard = guard
        self.guard_z = guard_z
        self.guard_repeats = guard_repeats
        self.featurizer = featurizer
        self.cv = cv
        self.seed = seed

    # ------------------------------------------------------------------ fitting
    def _new_quality(self) -> QualityEstimator:
        if self.quality is None:
            return ShrunkQuality(CalibratedLogistic(seed=self.seed), seed=self.seed)
        fresh: QualityEstimator = type(self.quality)(**init_params(self.quality))
        return fresh

    def fit(self, train: RoutingDataset) -> MarginalRouter:
        if not train.labeled:
            raise InputError("MarginalRouter.fit: training data has unknown quality or cost")
        if train.n < 2:
            raise InputError("MarginalRouter.fit: at least two training rows are needed")
        self.models_ = train.models
        fz = self.featurizer or TextFeaturizer()
        self.featurizer_ = fz.fit(train.prompts, train.tasks)
        X = fz.transform(train.prompts, train.tasks)
        Q = np.asarray(train.quality)
        self.quality_ = self._new_quality().fit(X, Q)
        self.prior_ = TaskPrior().fit(X, Q)
        self.cost_ = LinearCostEstimator().fit(X, train.cost)
        self.latency_: LinearCostEstimator | TokenLatencyEstimator | None = None
        if train.latency is not None:
            self.latency_ = LinearCostEstimator().fit(X, train.latency)
        elif self.speed_table is not None:
            self.latency_ = TokenLatencyEstimator(self.speed_table).fit(X, train.models)
        self.mean_quality_ = Q.mean(axis=0)
        self.mean_cost_ = np.asarray(train.cost).mean(axis=0)
        self.mean_latency_ = (
            self.latency_.predict(X).mean(axis=0) if self.latency_ is not None else None
        )
        self.kappa_ = np.zeros(len(VALUE_TIERS))
        self.source_ = np.zeros(len(VALUE_TIERS), dtype=np.intp)
        self.guard_gain_ = np.full(len(VALUE_TIERS), np.nan)
        self.guard_se_ = np.full(len(VALUE_TIERS), np.nan)
        if self.guard and train.n >= 4 * self.cv:
            self._tune_guard(train, X, Q)
        return self

    def _tune_guard(self, train: RoutingDataset, X: Features, Q: FloatArray) -> None:
        oof = getattr(self.quality_, "oof_", None)
        if oof is None or oof.shape != Q.shape:
            oof = out_of_fold(self._new_quality, X, Q, self.cv, self.seed)
        sources = (oof, out_of_fold(TaskPrior, X, Q, self.cv, self.seed))
        c_hat = np.zeros_like(Q)
        for test in folds(X.n, self.cv, self.seed):
            tr = np.setdiff1d(np.arange(X.n), test)
            c_hat[test] = (
                LinearCostEstimator().fit(X.rows(tr), train.cost[tr]).predict(X.rows(test))
            )
        C = np.asarray(train.cost)
        rows = np.arange(X.n)
        n = X.n
        # the repeated partitions of the cross-validated test (the same for every tier)
        partitions = [
            folds(n, self.cv, self.seed * 1_000 + r + 1) for r in range(self.guard_repeats)
        ]
        for t, v in enumerate(VALUE_TIERS):
            realized = v * Q - C
            b = int(np.argmax(realized.mean(axis=0)))
            # candidates in order of preference on ties: population choice, prior, text model
            meta: list[tuple[int, float]] = [(1, math.inf)]
            utils: list[FloatArray] = [realized[:, b]]
            for src in (1, 0):
                s = v * sources[src] - c_hat
                best = np.argmax(s, axis=1)
                gain = s[rows, best] - s[:, b]
                for kappa in sorted(KAPPA_GRID, reverse=True)[1:]:
                    choice = np.where(gain > kappa * v, best, b)
                    meta.append((src, kappa))
                    utils.append(realized[rows, choice])
            D = np.stack(utils[1:]) - utils[0]  # (candidates, n) paired gains over b
            s1, gram = D.sum(axis=1), D @ D.T
            pick = self._select(s1, gram, n)
            # honest test of the selection rule: repeated cross-validation of the choice
            d = np.zeros(n)
            if pick > 0:
                for part in partitions:
                    for held in part:
                        Dh = D[:, held]
                        i = self._select(s1 - Dh.sum(axis=1), gram - Dh @ Dh.T, n - held.size)
                        if i > 0:
                            d[held] += Dh[i - 1]
                d /= len(partitions)
            self.guard_gain_[t] = float(d.mean())
            self.guard_se_[t] = float(d.std(ddof=1) / math.sqrt(n))
            if pick > 0 and self.guard_gain_[t] > self.guard_z * self.guard_se_[t]:
                self.source_[t], self.kappa_[t] = meta[pick]
            else:
                self.source_[t], self.kappa_[t] = meta[0]

    def _select(self, s1: FloatArray, gram: FloatArray, k: int) -> int:
        """The selection rule S on ``k`` rows: 0 for the population choice, else 1 + the
        index of the candidate it picks, from the sufficient statistics of the candidates'
        paired gains over the population choice on those rows (``s1`` their sums, ``gram``
        their cross-products; a held-out fold is subtracted in O(candidates²)).

        A candidate qualifies when its mean gain exceeds ``guard_z`` paired standard errors;
        among the qualified ones and the population choice (gain 0), the first (most
        conservative) whose mean is within one paired standard error of the best is kept.
        """
        mean = s1 / k
        diag = np.diag(gram)
        se = np.sqrt(np.maximum(diag - k * mean**2, 0.0) / ((k - 1) * k))
        ok = np.flatnonzero(mean > self.guard_z * se)
        if ok.size == 0:
            return 0
        top = int(ok[np.argmax(mean[ok])])
        if mean[top] <= se[top]:  # the population choice is within one SE of the best
            return 0
        # paired SE of (top − c) for every candidate c
        var = diag[top] - 2.0 * gram[top] + diag - k * (mean[top] - mean) ** 2
        se_top = np.sqrt(np.maximum(var, 0.0) / ((k - 1) * k))
        # candidates are ordered from the most to the least conservative
        return int(next(c for c in ok if mean[top] - mean[c] <= se_top[c])) + 1

    # ------------------------------------------------------------------ estimates
    def features(self, data: RoutingDataset) -> Features:
        return self.featurizer_.transform_cached(data.prompts, data.tasks)

    def estimates(
        self, X: Features, use_prior: BoolArray | None = None
    ) -> tuple[FloatArray, FloatArray, FloatArray | None]:
        """(q̂, ĉ, l̂) for featurized prompts; l̂ is None when training data had no latency.

        Rows flagged in ``use_prior`` take q̂ from the task prior instead of the text model.
        """
        if use_prior is not None and use_prior.all():
            q = self.prior_.predict_proba(X)
        else:
            q = np.clip(self.quality_.predict_proba(X), 0.0, 1.0)
            if use_prior is not None and use_prior.any():
                q = np.where(use_prior[:, None], self.prior_.predict_proba(X), q)
        c = self.cost_.predict(X)
        lat = self.latency_.predict(X) if self.latency_ is not None else None
        return q, c, lat

    def risk(self, p_wrong: FloatArray, risk_class: Sequence[str] | None) -> FloatArray:
        """r̂_m(x) = P̂(wrong)·K(class), or the Bernoulli CVaR for ``cvar_classes``."""
        n = p_wrong.shape[0]
        classes = risk_class if risk_class is not None else ("default",) * n
        default = float(self.consequence.get("default", 1.0))
        K = np.fromiter((self.consequence.get(c, default) for c in classes), np.float64, n)
        r: FloatArray = p_wrong * K[:, None]
        if self.cvar_classes:
            tail = np.fromiter((c in self.cvar_classes for c in classes), np.bool_, n)
            if tail.any():
                r[tail] = bernoulli_cvar(p_wrong[tail], K[tail, None], self.cvar_level)
        return r

    @staticmethod
    def tier(v: FloatArray) -> IntArray:
        """Index of the nearest tier of :data:`VALUE_TIERS` in log V."""
        return value_tier(v)

    # ------------------------------------------------------------------ routing
    def decide(
        self,
        X: Features,
        value: npt.ArrayLike,
        *,
        latency_price: float = 0.0,
        risk_price: float = 0.0,
        risk_class: Sequence[str] | None = None,
        allowed: BoolArray | None = None,
    ) -> tuple[IntArray, FloatArray, FloatArray, FloatArray | None, FloatArray]:
        """Choices and the estimates behind them: ``(choice, q̂, ĉ, l̂, r̂)``."""
        v = _values(value, X.n)
        tier = self.tier(v)
        q, c, lat = self.estimates(X, self.source_[tier] == 1)
        r = self.risk(1.0 - q, risk_class)
        use_lat = lat if (self.latency_ is not None and latency_price > 0) else None
        alloc = allocate_batch(
            v,
            q,
            c,
            use_lat,
            r if risk_price > 0 else None,
            latency_price=latency_price,
            risk_price=risk_price,
        )
        s = alloc.surplus
        # the population choice b(V) at the same prices (mean estimates, same risk class)
        pop_q = np.broadcast_to(self.mean_quality_, q.shape)
        pop_l = (
            np.broadcast_to(self.mean_latency_, q.shape)
            if use_lat is not None and self.mean_latency_ is not None
            else None
        )
        pop = allocate_batch(
            v,
            pop_q,
            np.broadcast_to(self.mean_cost_, q.shape),
            pop_l,
            self.risk(1.0 - pop_q, risk_class) if risk_price > 0 else None,
            latency_price=latency_price,
            risk_price=risk_price,
        ).surplus
        if allowed is not None:
            s = np.where(allowed, s, -np.inf)
            pop = np.where(allowed, pop, -np.inf)
        best = np.argmax(s, axis=1)
        b = np.argmax(pop, axis=1)
        rows = np.arange(X.n)
        gain = s[rows, best] - s[rows, b]
        choice: IntArray = np.where(gain > self.kappa_[tier] * v, best, b)
        return choice, q, c, lat, r

    def choose(
        self,
        prompts: Sequence[str],
        value: npt.ArrayLike,
        *,
        tasks: Sequence[str] | None = None,
        latency_price: float = 0.0,
        risk_price: float = 0.0,
        risk_class: Sequence[str] | None = None,
    ) -> list[str]:
        """Model names for raw prompts (the serving fast path: featurize, then Eq. 4).

        ``tasks`` defaults to an unknown task for every prompt (the population prior).
        """
        t = tasks if tasks is not None else ("",) * len(prompts)
        X = self.featurizer_.transform(prompts, t)
        choice = self.decide(
            X,
            value,
            latency_price=latency_price,
            risk_price=risk_price,
            risk_class=risk_class,
        )[0]
        return [self.models_[int(i)] for i in choice]

    def route(
        self,
        data: RoutingDataset,
        value: npt.ArrayLike,
        *,
        latency_price: float = 0.0,
        risk_price: float = 0.0,
        sink: RecordSink | None = None,
    ) -> Routing:
        """Route every row of ``data``. Rows carrying their own ``value`` use it; the others
        use ``value``. The candidates are the trained models that ``data`` lists (all of
        them when ``data`` lists none of its own). With ``sink``, one
        ``LedgerRecord(layer="routing")`` per decision is appended."""
        if data.value is not None:
            v = np.where(np.isnan(data.value), _values(value, data.n), data.value)
        else:
            v = _values(value, data.n)
        allowed = None
        if data.models and tuple(data.models) != self.models_:
            known = set(data.models) & set(self.models_)
            if not known:
                raise InputError(
                    f"route: none of the input's models {list(data.models)} was trained on"
                )
            allowed = np.array([mo in known for mo in self.models_])[None, :]
        X = self.features(data)
        choice, q, c, lat, r = self.decide(
            X,
            v,
            latency_price=latency_price,
            risk_price=risk_price,
            risk_class=data.risk_class,
            allowed=allowed,
        )
        if sink is not None:
            self._log(sink, data, v, choice, q, c, lat, r, latency_price, risk_price)
        return Routing(self.models_, choice)

    def _log(
        self,
        sink: RecordSink,
        data: RoutingDataset,
        v: FloatArray,
        choice: IntArray,
        q: FloatArray,
        c: FloatArray,
        lat: FloatArray | None,
        r: FloatArray,
        latency_price: float,
        risk_price: float,
    ) -> None:
        labeled = data.labeled and tuple(data.models) == self.models_
        for k in range(data.n):
            options = tuple(
                Option(
                    name,
                    float(q[k, j]),
                    float(c[k, j]),
                    float(lat[k, j]) if lat is not None else 0.0,
                    float(r[k, j]),
                )
                for j, name in enumerate(self.models_)
            )
            prices = PriceVector(float(v[k]), latency_price, risk_price)
            j = int(choice[k])
            regret: float | None = None
            ex_post: str | None = None
            if labeled:
                realized = float(v[k]) * data.quality[k] - data.cost[k]
                if latency_price and data.latency is not None:
                    realized = realized - latency_price * data.latency[k]
                if risk_price:
                    realized = (
                        realized
                        - risk_price
                        * self.risk(
                            1.0 - data.quality[k : k + 1],
                            None if data.risk_class is None else data.risk_class[k : k + 1],
                        )[0]
                    )
                ex_post = self.models_[int(np.argmax(realized))]
                regret = float(realized.max() - realized[j])
            sink.append(
                LedgerRecord(
                    request_id=data.sample_ids[k] or uuid.uuid4().hex,
                    layer="routing",
                    choice=self.models_[j],
                    options=options,
                    prices=prices,
                    cost_nanos=usd_to_nanos(float(c[k, j])),
                    ex_post_optimal=ex_post,
                    regret=regret,
                    attributes={
                        "router": "marginal",
                        "risk_class": data.risk_class[k] if data.risk_class else "default",
                        "task": data.tasks[k],
                    },
                )
            )

    def calibration(self, data: RoutingDataset) -> CalibrationReport:
        """Calibration of q̂ on labeled ``data``: Brier score per model (with the training
        task prior's as the reference) and the reliability table."""
        d = data.select_models(self.models_)
        X = self.features(d)
        return calibration_report(
            self.quality_.predict_proba(X),
            d.quality,
            self.models_,
            reference=self.prior_.predict_proba(X),
        )
