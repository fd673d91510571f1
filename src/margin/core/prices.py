"""Value objects of the economy: the price vector and a token use (an option).

Eq. 1 of the paper scores a token use ``i`` by

    V·ΔQ_i − ΔC_i − λ·ΔL_i − ρ·ΔR_i − ρ_irr·ΔR_irr_i

where money (ΔC) is the numéraire, λ prices latency (USD per second), ρ prices
risk (USD per unit of expected loss) and ρ_irr prices the irreversible part of
the risk (Sec. 3.2, real-option value of asking before acting).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, fields, replace

# Not `typing.TYPE_CHECKING`: importing typing costs ~9 ms of `margin gate`'s start-up.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

__all__ = ["InputError", "Option", "PriceVector", "check_fields", "check_number"]


class InputError(ValueError):
    """A user-supplied value is invalid; the message names the field and where it came from."""


def check_number(where: str, name: str, value: Any, *, nonnegative: bool) -> float:
    """A finite float from ``value``; InputError naming ``where`` and ``name`` otherwise."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise InputError(f"{where}: field '{name}' must be a number, got {value!r}")
    x = float(value)
    if math.isnan(x):
        raise InputError(f"{where}: field '{name}' is NaN")
    if math.isinf(x):
        raise InputError(f"{where}: field '{name}' is infinite")
    if nonnegative and x < 0:
        raise InputError(f"{where}: field '{name}' must be >= 0, got {x}")
    return x


def check_fields(where: str, data: Mapping[str, Any], known: Iterable[str], hint: str = "") -> None:
    """InputError naming the first key of ``data`` not in ``known`` (a misspelt field must
    not silently take its default); ``hint`` is appended to the message.

    Examples
    --------
    >>> check_fields("cfg.json", {"seed": 1, "seeds": 2}, ["seed"])
    Traceback (most recent call last):
    ...
    margin.core.prices.InputError: cfg.json: unknown field 'seeds'
    """
    allowed = set(known)
    for key in data:
        if key not in allowed:
            raise InputError(f"{where}: unknown field '{key}'{hint}")


def _from_mapping(
    cls_name: str,
    data: Mapping[str, Any],
    required: tuple[str, ...],
    optional: Mapping[str, float],
    where: str,
    ignore: tuple[str, ...] = (),
) -> dict[str, Any]:
    if not isinstance(data, Mapping):
        raise InputError(f"{where}: expected an object for {cls_name}, got {type(data).__name__}")
    expected = ", ".join([*required, *optional])
    check_fields(where, data, [*required, *optional, *ignore], f" (expected {expected})")
    out: dict[str, Any] = {}
    for key in required:
        if key not in data:
            raise InputError(f"{where}: missing field '{key}'")
        out[key] = data[key]
    for key, default in optional.items():
        out[key] = data.get(key, default)
    return out


@dataclass(frozen=True, slots=True)
class PriceVector:
    """The shared price vector (V, λ, ρ, ρ_irr) that every layer reads.

    Parameters
    ----------
    value : float
        Task value V in USD: what a fully successful outcome is worth.
    latency_price : float
        λ, USD per second of latency.
    risk_price : float
        ρ, USD per unit of (expected or coherent) risk ΔR.
    irreversible_risk_price : float
        ρ_irr, USD per unit of the irreversible share of risk (Sec. 3.2).

    Examples
    --------
    >>> PriceVector(value=100.0, risk_price=50.0)
    PriceVector(value=100.0, latency_price=0.0, risk_price=50.0, irreversible_risk_price=0.0)
    >>> PriceVector(value=-1.0)
    Traceback (most recent call last):
    ...
    margin.core.prices.InputError: PriceVector: field 'value' must be >= 0, got -1.0
    """

    value: float
    latency_price: float = 0.0
    risk_price: float = 0.0
    irreversible_risk_price: float = 0.0

    def __post_init__(self) -> None:
        for f in fields(self):
            x = check_number("PriceVector", f.name, getattr(self, f.name), nonnegative=True)
            object.__setattr__(self, f.name, x)

    @classmethod
    def from_dict(
        cls, data: Mapping[str, Any], where: str = "prices", ignore: tuple[str, ...] = ()
    ) -> PriceVector:
        """Build from a mapping with keys ``value``, ``latency_price``, ``risk_price``,
        ``irreversible_risk_price`` (all but ``value`` default to 0).

        Any other key is an error (a misspelt price must not silently become 0),
        except those listed in ``ignore``.
        """
        kw = _from_mapping(
            "PriceVector",
            data,
            ("value",),
            {"latency_price": 0.0, "risk_price": 0.0, "irreversible_risk_price": 0.0},
            where,
            ignore,
        )
        try:
            return cls(**kw)
        except InputError as e:
            raise InputError(str(e).replace("PriceVector", where, 1)) from None

    def with_value(self, value: float) -> PriceVector:
        """The same prices for a task of another value."""
        return replace(self, value=value)

    def as_dict(self) -> dict[str, float]:
        return {f.name: float(getattr(self, f.name)) for f in fields(self)}


@dataclass(frozen=True, slots=True)
class Option:
    """One token use i: its marginal quality and its marginal cost, latency and risk.

    Parameters
    ----------
    name : str
        Identifier (a model, an agent step, a serving resource...).
    quality : float
        ΔQ_i, marginal quality (e.g. success probability), any real number.
    cost : float
        ΔC_i in USD, >= 0.
    latency : float
        ΔL_i in seconds, >= 0.
    risk : float
        ΔR_i, expected (or coherent-measure) loss units, >= 0.
    irreversible_risk : float
        ΔR_irr_i, the unrecoverable part of the risk, >= 0.
    """

    name: str
    quality: float
    cost: float
    latency: float = 0.0
    risk: float = 0.0
    irreversible_risk: float = 0.0

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name:
            raise InputError(f"Option: field 'name' must be a non-empty string, got {self.name!r}")
        where = f"option '{self.name}'"
        object.__setattr__(
            self, "quality", check_number(where, "quality", self.quality, nonnegative=False)
        )
        for key in ("cost", "latency", "risk", "irreversible_risk"):
            object.__setattr__(
                self, key, check_number(where, key, getattr(self, key), nonnegative=True)
            )

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], where: str = "option") -> Option:
        """Build from ``{"name", "quality", "cost", "latency"?, "risk"?, "irreversible_risk"?}``."""
        kw = _from_mapping(
            "Option",
            data,
            ("name", "quality", "cost"),
            {"latency": 0.0, "risk": 0.0, "irreversible_risk": 0.0},
            where,
        )
        try:
            return cls(**kw)
        except InputError as e:
            raise InputError(f"{where}: {e}") from None

    def full_price(self, prices: PriceVector) -> float:
        """p_i = ΔC_i + λ·ΔL_i + ρ·ΔR_i + ρ_irr·ΔR_irr_i (the Cobb-Douglas shadow price, Sec. 2)."""
        return (
            self.cost
            + prices.latency_price * self.latency
            + prices.risk_price * self.risk
            + prices.irreversible_risk_price * self.irreversible_risk
        )

    def surplus(self, prices: PriceVector) -> float:
        """V·ΔQ_i − p_i, the bracket of Eq. 1."""
        return prices.value * self.quality - self.full_price(prices)

    def as_dict(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self)}
