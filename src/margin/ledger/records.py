"""Ledger value objects: one record per allocation decision, token buckets, exact money.

Money is held as integer nano-dollars (1 USD = 10^9 nUSD) so that sums over millions
of records are exact; floats appear only at the edges (display, numpy analytics).
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import ROUND_HALF_EVEN, Decimal, InvalidOperation

from margin.core.prices import InputError, Option, PriceVector

# Not `typing.TYPE_CHECKING`: see __getattr__ at the end of this module.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

    from margin.ledger.sink import RecordSink

__all__ = [
    "LAYERS",
    "NANOS_PER_USD",
    "LedgerRecord",
    "Outcome",
    "RecordSink",
    "TokenUsage",
    "nanos_to_usd",
    "usd_to_nanos",
]

NANOS_PER_USD = 1_000_000_000

#: The layers of the paper (Table 1) plus the end-to-end economy.
LAYERS = ("routing", "agent", "serving", "capital", "core", "economy")


def usd_to_nanos(usd: float | int | str | Decimal) -> int:
    """Round a USD amount to integer nano-dollars (banker's rounding on the decimal value).

    Floats are read as the decimal they print as, so ``usd_to_nanos(0.1)`` is exactly
    100_000_000.

    Examples
    --------
    >>> usd_to_nanos(0.1) + usd_to_nanos(0.2) == usd_to_nanos(0.3)
    True
    >>> usd_to_nanos("0.0000025")
    2500
    """
    if isinstance(usd, bool):
        raise InputError(f"money: expected a number, got {usd!r}")
    if isinstance(usd, float):
        if not math.isfinite(usd):
            raise InputError(f"money: amount must be finite, got {usd}")
        d = Decimal(repr(usd))
    else:
        try:
            d = Decimal(usd)
        except (InvalidOperation, TypeError, ValueError):
            raise InputError(f"money: cannot read {usd!r} as an amount of USD") from None
        if not d.is_finite():
            raise InputError(f"money: amount must be finite, got {usd}")
    return int((d * NANOS_PER_USD).quantize(Decimal(1), rounding=ROUND_HALF_EVEN))


def nanos_to_usd(nanos: int) -> Decimal:
    """Exact USD value of an integer nano-dollar amount.

    Examples
    --------
    >>> nanos_to_usd(2500)
    Decimal('0.0000025')
    """
    return (Decimal(nanos) / NANOS_PER_USD).normalize() if nanos else Decimal(0)


@dataclass(frozen=True, slots=True)
class TokenUsage:
    """Token counts in separate, non-overlapping buckets.

    ``input`` counts only uncached, non-written prompt tokens; ``cached_input`` the
    prompt tokens read from a cache; ``cache_write`` the prompt tokens written to a cache;
    ``output`` the visible completion tokens; ``reasoning`` the hidden reasoning tokens.
    The total is the plain sum. (OpenAI and OpenTelemetry count cached tokens *inside*
    their input figure and reasoning inside output; importers subtract them.)
    """

    input: int = 0
    cached_input: int = 0
    cache_write: int = 0
    output: int = 0
    reasoning: int = 0

    def __post_init__(self) -> None:
        for name in ("input", "cached_input", "cache_write", "output", "reasoning"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or v < 0:
                raise InputError(f"TokenUsage: field '{name}' must be an integer >= 0, got {v!r}")

    @property
    def total(self) -> int:
        return self.input + self.cached_input + self.cache_write + self.output + self.reasoning

    @property
    def prompt_total(self) -> int:
        """All prompt-side tokens (what OpenAI calls ``prompt_tokens``)."""
        return self.input + self.cached_input + self.cache_write

    @property
    def completion_total(self) -> int:
        """All completion-side tokens (what OpenAI calls ``completion_tokens``)."""
        return self.output + self.reasoning

    def __add__(self, other: TokenUsage) -> TokenUsage:
        return TokenUsage(
            self.input + other.input,
            self.cached_input + other.cached_input,
            self.cache_write + other.cache_write,
            self.output + other.output,
            self.reasoning + other.reasoning,
        )

    def as_dict(self) -> dict[str, int]:
        return {
            "input": self.input,
            "cached_input": self.cached_input,
            "cache_write": self.cache_write,
            "output": self.output,
            "reasoning": self.reasoning,
        }


@dataclass(frozen=True, slots=True)
class Outcome:
    """What happened once the decision played out (all optional until known).

    ``quality`` is the realized ΔQ (e.g. 1.0 = correct), ``cost_nanos`` the realized
    money in nano-dollars, ``latency`` seconds, ``risk`` the realized loss units and
    ``irreversible_loss`` the unrecoverable part.
    """

    quality: float | None = None
    cost_nanos: int | None = None
    latency: float | None = None
    risk: float | None = None
    irreversible_loss: float | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "quality": self.quality,
            "cost_nanos": self.cost_nanos,
            "latency": self.latency,
            "risk": self.risk,
            "irreversible_loss": self.irreversible_loss,
        }


def _new_id() -> str:
    # 128 random bits as 32 hex digits, like uuid4().hex; not uuid itself, whose import
    # (with platform) costs ~4 ms of every `margin gate` call that writes the ledger.
    return os.urandom(16).hex()


@dataclass(frozen=True, slots=True)
class LedgerRecord:
    """One allocation decision with its realized (V, ΔC, λΔL, ρΔR) and regret.

    Parameters
    ----------
    request_id : str
        The request this decision belongs to (one request spans several layers).
    layer : str
        One of :data:`LAYERS`.
    choice : str or None
        The option chosen (``None``: not served / refused).
    options : tuple of Option
        Every option considered, with its ex-ante (ΔQ, ΔC, ΔL, ΔR).
    prices : PriceVector
        The price vector the decision was made at.
    tenant : str
        Who pays.
    usage : TokenUsage
        Tokens spent by this decision, in non-overlapping buckets.
    cost_nanos : int
        Money spent, in integer nano-dollars (exact).
    outcome : Outcome or None
        Realized outcome, when known.
    ex_post_optimal : str or None
        The option that would have maximized realized surplus.
    regret : float or None
        Realized surplus of ``ex_post_optimal`` minus that of ``choice`` (>= 0).
    attributes : mapping
        Free-form JSON-serializable extras (action class, scheduler, queue length...).
    """

    request_id: str
    layer: str
    choice: str | None
    options: tuple[Option, ...]
    prices: PriceVector
    tenant: str = "default"
    usage: TokenUsage = field(default_factory=TokenUsage)
    cost_nanos: int = 0
    outcome: Outcome | None = None
    ex_post_optimal: str | None = None
    regret: float | None = None
    timestamp: float = field(default_factory=time.time)
    record_id: str = field(default_factory=_new_id)
    attributes: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.layer not in LAYERS:
            raise InputError(
                f"LedgerRecord: field 'layer' must be one of {LAYERS}, got {self.layer!r}"
            )
        if not isinstance(self.request_id, str) or not self.request_id:
            raise InputError("LedgerRecord: field 'request_id' must be a non-empty string")
        if isinstance(self.cost_nanos, bool) or not isinstance(self.cost_nanos, int):
            raise InputError(
                f"LedgerRecord: field 'cost_nanos' must be an integer, got {self.cost_nanos!r}"
            )
        if self.regret is not None and not math.isfinite(self.regret):
            raise InputError(f"LedgerRecord: field 'regret' must be finite, got {self.regret}")
        object.__setattr__(self, "options", tuple(self.options))

    def option(self, name: str) -> Option:
        for o in self.options:
            if o.name == name:
                return o
        raise KeyError(name)

    @property
    def chosen(self) -> Option | None:
        """The chosen option; ``None`` when nothing was served or when the choice is not
        among the recorded options (e.g. records imported from telemetry, which only
        know the model that ran)."""
        if self.choice is None:
            return None
        for o in self.options:
            if o.name == self.choice:
                return o
        return None

    def realized_vector(self) -> dict[str, float]:
        """The token-aware dashboard row of Sec. 4: (V, ΔC, λΔL, ρΔR) for the choice.

        Uses the realized outcome where known, the ex-ante option figures otherwise (for
        the risk terms: the outcome's losses when it states either, else the option's).
        ``rho_dR`` is the whole risk charge of Eq. 1 with the irreversible term of
        Sec. 3.2: ρ·ΔR + ρ_irr·ΔR_irr.

        Examples
        --------
        >>> rec = LedgerRecord("r", "agent", "act",
        ...     (Option("act", 1.0, 0.5, latency=2.0, risk=0.1, irreversible_risk=0.05),),
        ...     PriceVector(10.0, latency_price=0.25, risk_price=20.0,
        ...                 irreversible_risk_price=40.0))
        >>> rec.realized_vector()
        {'V': 10.0, 'dC': 0.5, 'lambda_dL': 0.5, 'rho_dR': 4.0}
        """
        p = self.prices
        o = self.chosen
        out = self.outcome
        cost = (
            out.cost_nanos / NANOS_PER_USD
            if out is not None and out.cost_nanos is not None
            else (self.cost_nanos / NANOS_PER_USD if self.cost_nanos else (o.cost if o else 0.0))
        )
        lat = (
            out.latency
            if out is not None and out.latency is not None
            else (o.latency if o else 0.0)
        )
        if out is not None and (out.risk is not None or out.irreversible_loss is not None):
            # A realized outcome states the loss; an unstated part of it is zero.
            risk = out.risk or 0.0
            irr = out.irreversible_loss or 0.0
        else:
            risk = o.risk if o else 0.0
            irr = o.irreversible_risk if o else 0.0
        return {
            "V": p.value,
            "dC": float(cost),
            "lambda_dL": p.latency_price * float(lat),
            "rho_dR": p.risk_price * float(risk) + p.irreversible_risk_price * float(irr),
        }


def __getattr__(name: str) -> object:
    # PEP 562: RecordSink (a typing.Protocol) lives in margin.ledger.sink so that this
    # module, which `margin gate` imports on every call, does not import typing (~8 ms).
    if name == "RecordSink":
        from margin.ledger.sink import RecordSink

        return RecordSink
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
