"""Speculative decoding as a make-or-buy decision (Sec. 3.3, "outsourced labor").

A draft model proposes ``γ`` tokens at relative cost ``c`` each (draft step / target
decode step); the target verifies them in one pass of relative cost ``v``; each draft
token is accepted with probability ``α`` (the internal transfer price). Following
Leviathan et al. (ICML 2023):

* expected tokens per verification step ``E[τ] = (1 − α^{γ+1}) / (1 − α)``;
* speedup over plain decoding ``(1 − α^{γ+1}) / ((1 − α)(γc + v))``.

The verify cost grows with load: at batch ``B`` the verify pass reads the same KV as a
decode step but computes ``γ`` extra tokens per sequence, so with the cost model's decode
step ``T_d(B)`` and the cost of the mixed iteration that also carries ``γB`` tokens,
``v(B) = 1 + (t(γB prefill tokens with the batch) − T_d(B)) / T_d(B)``. Speculation
pays only while the speedup exceeds 1;
:meth:`SpeculationPolicy.turn_off_batch` is the batch size where it stops paying.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from margin.core.prices import InputError
from margin.serving.costmodel import CostModel

__all__ = ["SpeculationPolicy", "expected_tokens", "speculative_speedup"]


def expected_tokens(alpha: float, gamma: int) -> float:
    """Expected tokens per verification step, ``(1 − α^{γ+1}) / (1 − α)``.

    Examples
    --------
    >>> round(expected_tokens(0.8, 4), 4)
    3.3616
    >>> expected_tokens(1.0, 4)
    5.0
    """
    if not 0.0 <= alpha <= 1.0:
        raise InputError(f"speculation: field 'alpha' must be in [0, 1], got {alpha}")
    if gamma < 0:
        raise InputError(f"speculation: field 'gamma' must be >= 0, got {gamma}")
    if alpha == 1.0:
        return float(gamma + 1)
    return (1.0 - alpha ** (gamma + 1)) / (1.0 - alpha)


def speculative_speedup(alpha: float, gamma: int, draft_cost: float, verify_cost: float) -> float:
    """Speedup ``(1 − α^{γ+1}) / ((1 − α)(γc + v))`` of speculative over plain decoding.

    Examples
    --------
    >>> round(speculative_speedup(0.8, 4, 0.05, 1.0), 3)
    2.801
    >>> speculative_speedup(0.0, 4, 0.05, 1.0) < 1
    True
    """
    denom = gamma * draft_cost + verify_cost
    if denom <= 0:
        raise InputError("speculation: γ·c + v must be > 0")
    return expected_tokens(alpha, gamma) / denom


@dataclass(frozen=True, slots=True)
class SpeculationPolicy:
    """Enable speculation per request only when it speeds decoding at the current load.

    Parameters
    ----------
    model : CostModel
        The target model's iteration-time model.
    gamma : int
        Draft tokens per step.
    draft_cost : float
        c, the draft model's step time relative to the target's decode step.

    Examples
    --------
    >>> from margin.serving.costmodel import DistServeCostModel
    >>> pol = SpeculationPolicy(DistServeCostModel.default(), gamma=4, draft_cost=0.05)
    >>> pol.enabled(alpha=0.7, batch=1, context=1000)
    True
    >>> pol.enabled(alpha=0.1, batch=1, context=1000)
    False
    """

    model: CostModel
    gamma: int = 4
    draft_cost: float = 0.05

    def __post_init__(self) -> None:
        if isinstance(self.gamma, bool) or not isinstance(self.gamma, int) or self.gamma < 1:
            raise InputError(
                f"speculation: field 'gamma' must be an integer >= 1, got {self.gamma}"
            )
        if not (math.isfinite(self.draft_cost) and self.draft_cost >= 0):
            raise InputError(f"speculation: field 'draft_cost' must be >= 0, got {self.draft_cost}")

    def verify_cost(self, batch: int, context: float) -> float:
        """``v(B)`` at mean context ``context`` (module docstring)."""
        if batch < 1:
            raise InputError(f"speculation: field 'batch' must be >= 1, got {batch}")
        ctx = batch * context
        t_d = self.model.iteration_time(0, 0, ctx, batch)
        g = self.gamma * batch
        extra = self.model.iteration_time(g, g * context, ctx, batch) - t_d
        return 1.0 + max(extra, 0.0) / t_d

    def speedup(self, alpha: float, batch: int, context: float) -> float:
        return speculative_speedup(
            alpha, self.gamma, self.draft_cost, self.verify_cost(batch, context)
        )

    def enabled(self, alpha: float, batch: int, context: float) -> bool:
        """Speculate for a request of acceptance rate ``alpha`` at this load?"""
        return self.speedup(alpha, batch, context) > 1.0

    def turn_off_batch(self, alpha: float, context: float, max_batch: int = 4096) -> int | None:
        """Smallest batch at which speculation stops paying (None if it pays up to
        ``max_batch``); 1 if it never pays."""
        if not self.enabled(alpha, 1, context):
            return 1
        lo, hi = 1, max_batch
        if self.enabled(alpha, hi, context):
            return None
        while hi - lo > 1:
            mid = (lo + hi) // 2
            if self.enabled(alpha, mid, context):
                lo = mid
            else:
                hi = mid
        return hi
