"""The allocation rule of Eq. 1, its equimarginal condition (Eq. 2) and the crossover value.

Everything here is vectorized over a batch: ``n`` requests × ``m`` options as
numpy arrays, so a router or a scheduler can price a million requests at once.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction

import numpy as np
import numpy.typing as npt

from margin.core.prices import InputError, Option, PriceVector

__all__ = [
    "NOT_SERVED",
    "Allocation",
    "BatchAllocation",
    "allocate",
    "allocate_batch",
    "crossover_value",
    "equimarginal_residuals",
    "surplus_matrix",
]

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.intp]
ArrayLike = npt.ArrayLike

#: Choice index returned when no option beats the outside option (the task is not served).
NOT_SERVED = -1


@dataclass(frozen=True, slots=True)
class Allocation:
    """The Eq. 1 decision for one request.

    Attributes
    ----------
    choice : str or None
        Name of the chosen option; ``None`` when the outside option wins.
    surplus : dict[str, float]
        V·ΔQ_i − ΔC_i − λ·ΔL_i − ρ·ΔR_i − ρ_irr·ΔR_irr_i per option.
    prices : PriceVector
        The prices the decision was made at.
    """

    choice: str | None
    surplus: dict[str, float]
    prices: PriceVector

    @property
    def best_surplus(self) -> float:
        return self.surplus[self.choice] if self.choice is not None else 0.0


@dataclass(frozen=True, slots=True)
class BatchAllocation:
    """Eq. 1 over a batch of ``n`` requests and ``m`` options.

    Attributes
    ----------
    choice : ndarray of int, shape (n,)
        argmax index per request, or ``NOT_SERVED`` (-1) when an outside option was
        given and no option beats it.
    surplus : ndarray of float, shape (n, m)
        The full surplus matrix.
    best : ndarray of float, shape (n,)
        Surplus of the chosen option (the outside option's value when not served).
    """

    choice: IntArray
    surplus: FloatArray
    best: FloatArray


def _as_2d(name: str, x: ArrayLike, shape: tuple[int, int]) -> FloatArray:
    a = np.asarray(x, dtype=np.float64)
    try:
        a = np.broadcast_to(a, shape)
    except ValueError:
        raise InputError(
            f"'{name}' has shape {np.shape(x)}, which does not broadcast to {shape}"
        ) from None
    return a


def _per_request(name: str, x: ArrayLike, n: int) -> FloatArray:
    a = np.asarray(x, dtype=np.float64)
    if a.ndim == 0:
        return a
    if a.shape != (n,):
        raise InputError(f"'{name}' must be a scalar or have shape ({n},), got {a.shape}")
    return a[:, None]


def surplus_matrix(
    value: ArrayLike,
    quality: ArrayLike,
    cost: ArrayLike,
    latency: ArrayLike | None = None,
    risk: ArrayLike | None = None,
    irreversible_risk: ArrayLike | None = None,
    *,
    latency_price: ArrayLike = 0.0,
    risk_price: ArrayLike = 0.0,
    irreversible_risk_price: ArrayLike = 0.0,
) -> FloatArray:
    """Surplus of every option for every request, the bracket of Eq. 1.

    ``S[k, i] = V_k·ΔQ_ki − ΔC_ki − λ_k·ΔL_ki − ρ_k·ΔR_ki − ρ_irr,k·ΔR_irr,ki``

    Parameters
    ----------
    value : array_like, shape (n,) or scalar
        Task value V per request.
    quality, cost, latency, risk, irreversible_risk : array_like, shape (n, m) or (m,)
        Marginal quality, cost (USD), latency (s), risk and irreversible risk per option;
        a row vector (m,) is shared by every request. ``None`` means zero.
    latency_price, risk_price, irreversible_risk_price : array_like, shape (n,) or scalar
        λ, ρ and ρ_irr, per request or shared.

    Returns
    -------
    ndarray, shape (n, m)

    Examples
    --------
    The worked example of Sec. 2 at V = 10 and V = 100 (cheap: q=0.7, c=1; frontier: q=0.9, c=5):

    >>> surplus_matrix([10.0, 100.0], [0.7, 0.9], [1.0, 5.0]).round(6).tolist()
    [[6.0, 4.0], [69.0, 85.0]]
    """
    v = np.asarray(value, dtype=np.float64)
    q = np.asarray(quality, dtype=np.float64)
    if q.ndim == 1:
        q = q[None, :]
    if q.ndim != 2:
        raise InputError(f"'quality' must have shape (n, m) or (m,), got {q.shape}")
    if q.shape[0] == 1 and v.ndim == 1 and v.shape[0] != 1:
        q = np.broadcast_to(q, (v.shape[0], q.shape[1]))
    n, m = q.shape
    shape = (n, m)
    s: FloatArray = np.multiply(q, _per_request("value", v, n))
    s -= _as_2d("cost", cost, shape)
    tmp: FloatArray | None = None
    for arr_name, arr, price_name, price in (
        ("latency", latency, "latency_price", latency_price),
        ("risk", risk, "risk_price", risk_price),
        (
            "irreversible_risk",
            irreversible_risk,
            "irreversible_risk_price",
            irreversible_risk_price,
        ),
    ):
        if arr is None:
            continue
        p = _per_request(price_name, price, n)
        if p.ndim == 0 and float(p) == 0.0:
            continue
        a = _as_2d(arr_name, arr, shape)
        if tmp is None:
            tmp = np.empty(shape, dtype=np.float64)
        np.multiply(a, p, out=tmp)
        s -= tmp
    return s


def allocate_batch(
    value: ArrayLike,
    quality: ArrayLike,
    cost: ArrayLike,
    latency: ArrayLike | None = None,
    risk: ArrayLike | None = None,
    irreversible_risk: ArrayLike | None = None,
    *,
    latency_price: ArrayLike = 0.0,
    risk_price: ArrayLike = 0.0,
    irreversible_risk_price: ArrayLike = 0.0,
    outside_option: float | None = None,
) -> BatchAllocation:
    """Eq. 1 for a batch: ``i*_k = argmax_i S[k, i]`` (see :func:`surplus_matrix`).

    Ties go to the lowest index. With ``outside_option`` set (e.g. 0.0 = "do not serve"),
    a request whose best surplus is below it gets choice ``-1``.

    Examples
    --------
    >>> a = allocate_batch([10.0, 100.0], [0.7, 0.9], [1.0, 5.0])
    >>> a.choice.tolist(), a.best.round(6).tolist()
    ([0, 1], [6.0, 85.0])
    """
    s = surplus_matrix(
        value,
        quality,
        cost,
        latency,
        risk,
        irreversible_risk,
        latency_price=latency_price,
        risk_price=risk_price,
        irreversible_risk_price=irreversible_risk_price,
    )
    choice: IntArray = np.argmax(s, axis=1)
    best: FloatArray = np.take_along_axis(s, choice[:, None], axis=1)[:, 0]
    if outside_option is not None:
        out = best < outside_option
        choice = np.where(out, NOT_SERVED, choice)
        best = np.where(out, outside_option, best)
    return BatchAllocation(choice=choice, surplus=s, best=best)


def allocate(
    prices: PriceVector, options: Sequence[Option], *, outside_option: float | None = None
) -> Allocation:
    """Eq. 1 for one request: the option with the highest surplus at ``prices``.

    Examples
    --------
    The worked example of Sec. 2: cheap wins at V = 10, frontier at V = 100.

    >>> cheap, frontier = Option("cheap", 0.7, 1.0), Option("frontier", 0.9, 5.0)
    >>> allocate(PriceVector(value=10.0), [cheap, frontier]).choice
    'cheap'
    >>> allocate(PriceVector(value=100.0), [cheap, frontier]).choice
    'frontier'
    """
    if not options:
        raise InputError("options: at least one option is required")
    names = [o.name for o in options]
    if len(set(names)) != len(names):
        raise InputError(f"options: duplicate option names in {names}")
    surplus = {o.name: o.surplus(prices) for o in options}
    best = max(names, key=lambda k: surplus[k])  # first maximum on ties, as argmax
    choice: str | None = best
    if outside_option is not None and surplus[best] < outside_option:
        choice = None
    return Allocation(choice=choice, surplus=surplus, prices=prices)


def _exact(x: float) -> Fraction:
    # The decimal the user wrote (shortest repr), so 0.9 - 0.7 is exactly 1/5.
    return Fraction(repr(float(x)))


def crossover_value(low: Option, high: Option, prices: PriceVector | None = None) -> float:
    """The task value V* at which two options have equal surplus under Eq. 1.

    ``V* = (p_high − p_low) / (ΔQ_high − ΔQ_low)`` with full prices
    ``p = ΔC + λ·ΔL + ρ·ΔR + ρ_irr·ΔR_irr``; above V* the higher-quality option wins.
    The arithmetic is exact on the decimal values given (no float round-off).
    Returns ``inf`` when the qualities are equal and ``high`` costs more (it never wins),
    ``-inf`` when it costs no more (it always wins). ``prices.value`` is ignored.

    Examples
    --------
    The worked example of Sec. 2: V* = 20 without risk; with r_c = 0.05, r_f = 0.01 and
    ρ = 50 the gap shrinks by ρ(r_c − r_f) = 2 and V* falls to 10.

    >>> cheap, frontier = Option("cheap", 0.7, 1.0), Option("frontier", 0.9, 5.0)
    >>> crossover_value(cheap, frontier)
    20.0
    >>> crossover_value(
    ...     Option("cheap", 0.7, 1.0, risk=0.05),
    ...     Option("frontier", 0.9, 5.0, risk=0.01),
    ...     PriceVector(value=0.0, risk_price=50.0),
    ... )
    10.0
    """
    p = prices if prices is not None else PriceVector(value=0.0)

    def full(o: Option) -> Fraction:
        return (
            _exact(o.cost)
            + _exact(p.latency_price) * _exact(o.latency)
            + _exact(p.risk_price) * _exact(o.risk)
            + _exact(p.irreversible_risk_price) * _exact(o.irreversible_risk)
        )

    dq = _exact(high.quality) - _exact(low.quality)
    dp = full(high) - full(low)
    if dq == 0:
        return float("inf") if dp > 0 else float("-inf")
    return float(dp / dq)


def equimarginal_residuals(
    prices: PriceVector,
    marginal_quality: ArrayLike,
    cost: ArrayLike,
    latency: ArrayLike | None = None,
    risk: ArrayLike | None = None,
    allocation: ArrayLike | None = None,
    *,
    tol: float = 0.0,
) -> FloatArray:
    """Residuals of the equimarginal condition, Eq. 2, at an allocation.

    ``r_i = V·∂Q/∂t_i − λ·ΔL_i − ρ·ΔR_i − ΔC_i`` for every use i with ``t_i > tol``
    (the active set A*); NaN for inactive uses. At an interior optimum every active
    residual is zero: the marginal benefit of a token equals its full marginal cost.

    Parameters
    ----------
    marginal_quality : array_like, shape (m,)
        ∂Q/∂t_i evaluated at the allocation.
    cost, latency, risk : array_like, shape (m,)
        Per-token ΔC_i, ΔL_i, ΔR_i.
    allocation : array_like, shape (m,), optional
        t_i; when omitted every use is taken as active.

    Examples
    --------
    Q(t) = 2·√t_1 + √t_2 with ΔC = (1, 1): the optimum at V = 1 is t = (1, 1/4).

    >>> import numpy as np
    >>> t = np.array([1.0, 0.25])
    >>> mq = np.array([1 / np.sqrt(t[0]), 0.5 / np.sqrt(t[1])])
    >>> equimarginal_residuals(PriceVector(value=1.0), mq, [1.0, 1.0], allocation=t).tolist()
    [0.0, 0.0]
    """
    mq = np.asarray(marginal_quality, dtype=np.float64)
    r = prices.value * mq - np.broadcast_to(np.asarray(cost, dtype=np.float64), mq.shape)
    if latency is not None:
        r = r - prices.latency_price * np.asarray(latency, dtype=np.float64)
    if risk is not None:
        r = r - prices.risk_price * np.asarray(risk, dtype=np.float64)
    if allocation is not None:
        t = np.asarray(allocation, dtype=np.float64)
        r = np.where(t > tol, r, np.nan)
    return np.asarray(r, dtype=np.float64)
