"""Production functions over token uses and the Cobb-Douglas closed form of Sec. 2."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from scipy.optimize import minimize

from margin.core.prices import InputError

__all__ = ["CobbDouglas", "cobb_douglas_allocation", "cobb_douglas_numeric"]

FloatArray = npt.NDArray[np.float64]


def _validate(
    alpha: npt.ArrayLike, price: npt.ArrayLike, budget: float
) -> tuple[FloatArray, FloatArray]:
    a = np.asarray(alpha, dtype=np.float64)
    p = np.asarray(price, dtype=np.float64)
    if a.ndim != 1 or p.shape != a.shape:
        raise InputError(
            f"alpha and price must be 1-d of the same length, got {a.shape}, {p.shape}"
        )
    if np.any(~np.isfinite(a)) or np.any(a < 0):
        raise InputError("alpha: every exponent must be finite and >= 0")
    if not a.sum() > 0:
        raise InputError("alpha: at least one exponent must be > 0")
    if np.any(~np.isfinite(p)) or np.any(p <= 0):
        raise InputError("price: every full shadow price p_i must be finite and > 0")
    if not np.isfinite(budget) or budget < 0:
        raise InputError(f"budget: must be finite and >= 0, got {budget}")
    return a, p


def cobb_douglas_allocation(
    alpha: npt.ArrayLike, price: npt.ArrayLike, budget: float
) -> FloatArray:
    """Closed-form tokens per use for Q(t) = A·Π t_i^α_i subject to Σ p_i·t_i ≤ B.

    ``t*_i = α_i / Σ_j α_j · B / p_i`` (Sec. 2), with the full shadow price
    ``p_i = ΔC_i + λ·ΔL_i + ρ·ΔR_i`` (see :meth:`margin.Option.full_price`).
    Uses with α_i = 0 get zero tokens whatever their price; a rising p_i squeezes use i
    proportionally.

    Examples
    --------
    >>> cobb_douglas_allocation([0.5, 0.3, 0.2, 0.0], [1.0, 2.0, 0.5, 0.1], 100.0).tolist()
    [50.0, 15.0, 40.0, 0.0]
    """
    a, p = _validate(alpha, price, budget)
    out: FloatArray = a / a.sum() * budget / p
    return out


def cobb_douglas_numeric(alpha: npt.ArrayLike, price: npt.ArrayLike, budget: float) -> FloatArray:
    """Maximize Σ α_i·log t_i subject to Σ p_i·t_i = B, t ≥ 0, with SLSQP (a numeric check).

    Solved over budget shares s_i = p_i·t_i/B on the simplex, so it never sees the
    closed form. Agrees with :func:`cobb_douglas_allocation` to ~1e-6 relative.
    """
    a, p = _validate(alpha, price, budget)
    m = a.size
    eps = 1e-12

    def negobj(s: FloatArray) -> float:
        return -float(np.sum(a * np.log(np.maximum(s, eps))))

    def grad(s: FloatArray) -> FloatArray:
        out: FloatArray = -a / np.maximum(s, eps)
        return out

    res = minimize(
        negobj,
        np.full(m, 1.0 / m),
        jac=grad,
        method="SLSQP",
        bounds=[(0.0, 1.0)] * m,
        constraints=[{"type": "eq", "fun": lambda s: float(np.sum(s) - 1.0)}],
        options={"ftol": 1e-14, "maxiter": 500},
    )
    s = np.clip(np.asarray(res.x, dtype=np.float64), 0.0, None)
    s = s / s.sum()
    out: FloatArray = s * budget / p
    return out


@dataclass(frozen=True, slots=True)
class CobbDouglas:
    """Q(t) = A·Π t_i^α_i, a team-production function with complementary inputs (Eq. 8).

    With every α_i > 0 the inputs are complements: cutting any one to zero drives Q to
    zero, which is why "minimize tokens" fails when reading and verification complement
    editing.

    Examples
    --------
    >>> f = CobbDouglas(scale=1.0, alpha=(0.5, 0.5))
    >>> f(np.array([4.0, 9.0]))
    6.0
    >>> f.marginal_products(np.array([4.0, 9.0])).tolist()
    [0.75, 0.3333333333333333]
    """

    scale: float
    alpha: tuple[float, ...]

    def __call__(self, t: npt.ArrayLike) -> float:
        x = np.asarray(t, dtype=np.float64)
        return float(self.scale * np.prod(np.power(x, np.asarray(self.alpha))))

    def marginal_products(self, t: npt.ArrayLike) -> FloatArray:
        """∂Q/∂t_i = α_i·Q/t_i (0 where α_i = 0)."""
        x = np.asarray(t, dtype=np.float64)
        a = np.asarray(self.alpha, dtype=np.float64)
        q = self(x)
        with np.errstate(divide="ignore", invalid="ignore"):
            mp = np.where(a > 0, a * q / x, 0.0)
        return np.asarray(mp, dtype=np.float64)

    def optimal(self, price: npt.ArrayLike, budget: float) -> FloatArray:
        """The closed-form allocation :func:`cobb_douglas_allocation` for this function."""
        return cobb_douglas_allocation(self.alpha, price, budget)
