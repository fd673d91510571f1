"""Risk measures for ΔR: expectation, CVaR, and the worst case over an ambiguity set.

Eq. 1 prices risk as ρ·ΔR. For routine actions ΔR is an expected loss; for rare,
high-consequence (Knightian) actions the paper (Sec. 2, "The Knightian limit of ρ")
switches the functional form to a coherent risk measure: CVaR or max-min over an
ambiguity set. Each measure is a small strategy with one method,
``measure(losses, probabilities) -> float``, registered by name in
:data:`RISK_MEASURES`; a :class:`RiskPolicy` selects one per action class.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

import numpy as np
import numpy.typing as npt

from margin.core.prices import InputError

__all__ = [
    "RISK_MEASURES",
    "CVaR",
    "Expectation",
    "RiskMeasure",
    "RiskPolicy",
    "WorstCase",
    "bernoulli_loss",
    "make_risk_measure",
]

FloatArray = npt.NDArray[np.float64]


def _dist(
    losses: npt.ArrayLike, probabilities: npt.ArrayLike | None
) -> tuple[FloatArray, FloatArray]:
    x = np.asarray(losses, dtype=np.float64).ravel()
    if x.size == 0:
        raise InputError("losses: at least one outcome is required")
    if probabilities is None:
        p = np.full(x.size, 1.0 / x.size)
    else:
        p = np.asarray(probabilities, dtype=np.float64).ravel()
        if p.shape != x.shape:
            raise InputError(f"probabilities: shape {p.shape} does not match losses {x.shape}")
        if np.any(~np.isfinite(p)) or np.any(p < 0):
            raise InputError("probabilities: must be finite and >= 0")
        total = p.sum()
        if not np.isclose(total, 1.0, rtol=0, atol=1e-9):
            raise InputError(f"probabilities: must sum to 1, got {total}")
    if np.any(~np.isfinite(x)):
        raise InputError("losses: must be finite")
    return x, p


def bernoulli_loss(p_error: float, consequence: float) -> tuple[FloatArray, FloatArray]:
    """The two-point loss of an action that goes wrong with probability p (loss = consequence).

    Examples
    --------
    >>> losses, probs = bernoulli_loss(0.01, 1000.0)
    >>> Expectation().measure(losses, probs), round(CVaR(0.95).measure(losses, probs), 9)
    (10.0, 200.0)
    """
    if not 0.0 <= p_error <= 1.0:
        raise InputError(f"p_error: must be in [0, 1], got {p_error}")
    return np.array([0.0, consequence]), np.array([1.0 - p_error, p_error])


@runtime_checkable
class RiskMeasure(Protocol):
    """A risk measure of a discrete loss distribution (one main method)."""

    def measure(self, losses: npt.ArrayLike, probabilities: npt.ArrayLike | None = None) -> float:
        """The risk ΔR of the loss distribution (uniform probabilities when omitted)."""
        ...


@dataclass(frozen=True, slots=True)
class Expectation:
    """ΔR = E[L] = Σ p_k·L_k, the risk-neutral measure."""

    def measure(self, losses: npt.ArrayLike, probabilities: npt.ArrayLike | None = None) -> float:
        x, p = _dist(losses, probabilities)
        return float(np.dot(p, x))


@dataclass(frozen=True, slots=True)
class CVaR:
    """Conditional value at risk at confidence ``level``: the mean of the worst (1−level) tail.

    Rockafellar–Uryasev: ``CVaR_β(L) = min_η η + E[(L − η)_+]/(1 − β)``, computed exactly
    for a discrete distribution (the atom at the quantile is split). ``level=0`` is the
    expectation; ``level → 1`` tends to the worst outcome with positive probability.

    Examples
    --------
    >>> CVaR(0.5).measure([0.0, 1.0, 2.0, 3.0])
    2.5
    """

    level: float = 0.95

    def __post_init__(self) -> None:
        if not 0.0 <= self.level < 1.0:
            raise InputError(f"CVaR: field 'level' must be in [0, 1), got {self.level}")

    def measure(self, losses: npt.ArrayLike, probabilities: npt.ArrayLike | None = None) -> float:
        x, p = _dist(losses, probabilities)
        order = np.argsort(-x, kind="stable")
        xs, ps = x[order], p[order]
        tail = 1.0 - self.level
        cum = np.cumsum(ps)
        take = np.minimum(ps, np.maximum(tail - (cum - ps), 0.0))
        return float(np.dot(take, xs) / tail)


@dataclass(frozen=True)
class WorstCase:
    """Max-min expected loss over an ambiguity set of distributions (Knightian risk).

    The ambiguity set is either an explicit list of candidate distributions
    (``distributions``, shape (k, n)), or the total-variation ball of radius
    ``tv_radius`` around the nominal probabilities (``ΔR = max_{q: TV(q,p) ≤ r} E_q[L]``,
    which moves mass r from the best outcomes to the worst one), or — with neither —
    every distribution on the outcomes (the worst possible loss).

    Examples
    --------
    >>> WorstCase().measure([0.0, 10.0], [0.99, 0.01])
    10.0
    >>> round(WorstCase(tv_radius=0.04).measure([0.0, 10.0], [0.99, 0.01]), 12)
    0.5
    """

    distributions: tuple[tuple[float, ...], ...] | None = None
    tv_radius: float | None = None

    def __post_init__(self) -> None:
        if self.distributions is not None and self.tv_radius is not None:
            raise InputError("WorstCase: give either 'distributions' or 'tv_radius', not both")
        if self.tv_radius is not None and not 0.0 <= self.tv_radius <= 1.0:
            raise InputError(
                f"WorstCase: field 'tv_radius' must be in [0, 1], got {self.tv_radius}"
            )

    def measure(self, losses: npt.ArrayLike, probabilities: npt.ArrayLike | None = None) -> float:
        x, p = _dist(losses, probabilities)
        if self.distributions is not None:
            q = np.asarray(self.distributions, dtype=np.float64)
            if q.ndim != 2 or q.shape[1] != x.size:
                raise InputError(
                    f"WorstCase: distributions must have shape (k, {x.size}), got {q.shape}"
                )
            return float(np.max(q @ x))
        if self.tv_radius is None:
            return float(np.max(x))
        # Move up to r of probability mass from the lowest losses to the highest loss.
        q = p.copy()
        worst = int(np.argmax(x))
        budget = self.tv_radius
        for k in np.argsort(x, kind="stable"):
            if budget <= 0 or k == worst:
                continue
            moved = min(q[k], budget)
            q[k] -= moved
            q[worst] += moved
            budget -= moved
        return float(np.dot(q, x))


#: Risk measures by name (``expectation``, ``cvar``, ``worst_case``).
RISK_MEASURES: dict[str, Callable[..., RiskMeasure]] = {
    "expectation": Expectation,
    "cvar": CVaR,
    "worst_case": WorstCase,
}


def make_risk_measure(spec: str | Mapping[str, Any] | RiskMeasure) -> RiskMeasure:
    """A risk measure from a name, ``{"measure": name, **params}``, or an instance.

    Examples
    --------
    >>> make_risk_measure({"measure": "cvar", "level": 0.99})
    CVaR(level=0.99)
    """
    if isinstance(spec, RiskMeasure) and not isinstance(spec, str | Mapping):
        return spec
    if isinstance(spec, str):
        name, params = spec, {}
    elif isinstance(spec, Mapping):
        params = dict(spec)
        name = params.pop("measure", None)
        if not isinstance(name, str):
            raise InputError("risk measure: missing field 'measure'")
    else:
        raise InputError(f"risk measure: cannot build one from {spec!r}")
    try:
        factory = RISK_MEASURES[name]
    except KeyError:
        known = ", ".join(sorted(RISK_MEASURES))
        raise InputError(f"risk measure: unknown '{name}' (known: {known})") from None
    try:
        return factory(**params)
    except TypeError as e:
        raise InputError(f"risk measure '{name}': {e}") from None


@dataclass(frozen=True)
class RiskPolicy:
    """Which risk measure prices each action class; the default for unlisted classes.

    Examples
    --------
    >>> policy = RiskPolicy(per_class={"deploy": CVaR(0.99)})
    >>> losses, probs = bernoulli_loss(0.001, 10_000.0)
    >>> policy.measure("read", losses, probs), round(policy.measure("deploy", losses, probs), 9)
    (10.0, 1000.0)
    """

    default: RiskMeasure = field(default_factory=Expectation)
    per_class: Mapping[str, RiskMeasure] = field(default_factory=dict)

    def measure_for(self, action_class: str) -> RiskMeasure:
        return self.per_class.get(action_class, self.default)

    def measure(
        self, action_class: str, losses: npt.ArrayLike, probabilities: npt.ArrayLike | None = None
    ) -> float:
        return self.measure_for(action_class).measure(losses, probabilities)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> RiskPolicy:
        """Build from ``{"default": spec, "per_class": {class: spec}}``.

        Each spec is as in :func:`make_risk_measure`.
        """
        default = make_risk_measure(data.get("default", "expectation"))
        per = {str(k): make_risk_measure(v) for k, v in dict(data.get("per_class", {})).items()}
        return cls(default=default, per_class=per)
