"""Failure-mode detectors: one per row of Table 2, each the inequality of Eq. 1 it tests.

Every detector reads :class:`~margin.ledger.LedgerRecord` s only, so it runs on the
economy's ledger and on a user's own logs alike. A record carries the options that were
considered, the price vector used and the choice; the surplus of option i at the record's
prices is ``S_i = V·ΔQ_i − ΔC_i − λ·ΔL_i − ρ·ΔR_i − ρ_irr·ΔR_irr_i`` (Eq. 1).

Record conventions the detectors rely on (the layers of margin write them):

======================  =======  ==================================================
mode                    layer    what is tested
======================  =======  ==================================================
over-routing            routing  a cheaper option has higher surplus:
                                 V·(ΔQ_m − ΔQ_k) < p_m − p_k for the chosen m
under-routing           routing  a dearer option beats the choice by more than
                                 ``margin``·V: V·ΔQ_k − p_k ≫ V·ΔQ_m − p_m
over-delegation         agent    choice ``act`` while option ``ask`` has higher
                                 surplus (∂R/∂a exceeds V·∂p/∂a, Eq. 7)
under-verification      agent    option ``verify`` has S_v = V·ΔQ_v − ΔC_v − ρ·ΔR_v
                                 > 0, it was not chosen, and no verifier tokens
                                 were spent (attribute ``verify_tokens`` = 0)
serving-congestion      serving  λ·ΔL_ext > charge: the marginal external delay
                                 (attribute ``external_delay_s``) priced at λ exceeds
                                 the congestion charge (``congestion_charge`` USD)
stale-rollouts          capital  choice ``admit`` with attribute ``depreciation``
                                 (δ·A) greater than ``gain`` (g at the margin)
cache-misuse            capital  choice ``reuse`` while ``recompute`` has higher
                                 surplus at the new request's V (Eq. 1 threshold)
======================  =======  ==================================================
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from margin.core.prices import InputError
from margin.ledger.records import LedgerRecord

__all__ = [
    "DETECTORS",
    "Detector",
    "Finding",
    "diagnose",
    "make_detector",
]

#: Surplus differences below this (USD) are ties, not failures.
TOL = 1e-9


@dataclass(frozen=True, slots=True)
class Finding:
    """The records one detector flagged, the evidence and the estimated loss (USD)."""

    mode: str
    inequality: str
    count: int
    loss: float
    examples: tuple[dict[str, Any], ...] = ()
    record_ids: tuple[str, ...] = field(default=(), repr=False)

    def to_json(self) -> dict[str, Any]:
        return {
            "mode": self.mode,
            "count": self.count,
            "loss": self.loss,
            "inequality": self.inequality,
            "examples": list(self.examples),
        }


class Detector(Protocol):
    """A failure-mode detector: one main method over ledger records."""

    @property
    def mode(self) -> str:
        """The failure mode's name (a row of Table 2)."""
        ...

    @property
    def inequality(self) -> str:
        """The inequality of Eq. 1 or Eq. 2 that the detector tests."""
        ...

    def detect(self, records: Sequence[LedgerRecord]) -> Finding:
        """Flag the records violating this mode's inequality."""
        ...


def _surplus(rec: LedgerRecord) -> dict[str, float]:
    return {o.name: o.surplus(rec.prices) for o in rec.options}


def _evidence(rec: LedgerRecord, loss: float, **extra: Any) -> dict[str, Any]:
    return {
        "record_id": rec.record_id,
        "request_id": rec.request_id,
        "tenant": rec.tenant,
        "layer": rec.layer,
        "choice": rec.choice,
        "V": rec.prices.value,
        "loss": loss,
        **extra,
    }


Check = Callable[[LedgerRecord], "tuple[float, dict[str, Any]] | None"]


@dataclass(frozen=True)
class _InequalityDetector:
    mode: str
    inequality: str
    layer: str
    check: Check
    max_examples: int = 5

    def detect(self, records: Sequence[LedgerRecord]) -> Finding:
        loss = 0.0
        ids: list[str] = []
        examples: list[dict[str, Any]] = []
        for rec in records:
            if rec.layer != self.layer or rec.choice is None:
                continue
            hit = self.check(rec)
            if hit is None:
                continue
            amount, extra = hit
            loss += amount
            ids.append(rec.record_id)
            if len(examples) < self.max_examples:
                examples.append(_evidence(rec, amount, **extra))
        return Finding(self.mode, self.inequality, len(ids), loss, tuple(examples), tuple(ids))


def _over_routing(rec: LedgerRecord) -> tuple[float, dict[str, Any]] | None:
    s = _surplus(rec)
    chosen = rec.chosen
    if chosen is None or rec.choice is None:  # e.g. telemetry that only names the model
        return None
    p_chosen = chosen.full_price(rec.prices)
    cheaper = [o for o in rec.options if o.full_price(rec.prices) < p_chosen]
    if not cheaper:
        return None
    best = max(cheaper, key=lambda o: s[o.name])
    gap = s[best.name] - s[rec.choice]
    if gap <= TOL:
        return None
    return gap, {
        "better": best.name,
        "surplus_chosen": s[rec.choice],
        "surplus_better": s[best.name],
    }


def _under_routing(margin: float) -> Check:
    def check(rec: LedgerRecord) -> tuple[float, dict[str, Any]] | None:
        s = _surplus(rec)
        chosen = rec.chosen
        if chosen is None or rec.choice is None:
            return None
        p_chosen = chosen.full_price(rec.prices)
        dearer = [o for o in rec.options if o.full_price(rec.prices) > p_chosen]
        if not dearer:
            return None
        best = max(dearer, key=lambda o: s[o.name])
        gap = s[best.name] - s[rec.choice]
        if gap <= max(TOL, margin * rec.prices.value):
            return None
        return gap, {
            "better": best.name,
            "surplus_chosen": s[rec.choice],
            "surplus_better": s[best.name],
        }

    return check


def _pairwise(chosen: str, better: str) -> Check:
    def check(rec: LedgerRecord) -> tuple[float, dict[str, Any]] | None:
        if rec.choice != chosen:
            return None
        s = _surplus(rec)
        if better not in s or chosen not in s:
            return None
        gap = s[better] - s[chosen]
        if gap <= TOL:
            return None
        return gap, {f"surplus_{chosen}": s[chosen], f"surplus_{better}": s[better]}

    return check


def _under_verification(rec: LedgerRecord) -> tuple[float, dict[str, Any]] | None:
    if rec.choice == "verify":
        return None
    s = _surplus(rec)
    if "verify" not in s or s["verify"] <= TOL:
        return None
    if float(rec.attributes.get("verify_tokens", 0)) > 0:
        return None
    gap = s["verify"] - max(s.get(rec.choice or "", 0.0), 0.0)
    if gap <= TOL:
        return None
    return gap, {"surplus_verify": s["verify"], "surplus_chosen": s.get(rec.choice or "")}


def _serving_congestion(rec: LedgerRecord) -> tuple[float, dict[str, Any]] | None:
    ext = rec.attributes.get("external_delay_s")
    if ext is None:
        return None
    external_cost = rec.prices.latency_price * float(ext)
    charge = float(rec.attributes.get("congestion_charge", 0.0))
    gap = external_cost - charge
    if gap <= TOL:
        return None
    return gap, {
        "external_delay_s": float(ext),
        "lambda": rec.prices.latency_price,
        "charge": charge,
    }


def _stale_rollout(rec: LedgerRecord) -> tuple[float, dict[str, Any]] | None:
    if rec.choice != "admit":
        return None
    dep, gain = rec.attributes.get("depreciation"), rec.attributes.get("gain")
    if dep is None or gain is None:
        return None
    gap = float(dep) - float(gain)
    if gap <= TOL:
        return None
    return gap, {"depreciation": float(dep), "gain": float(gain)}


#: Detector factories by mode name (the rows of Table 2).
DETECTORS: dict[str, Callable[..., Detector]] = {
    "over-routing": lambda: _InequalityDetector(
        "over-routing", "V·ΔQ_m − p_m < V·ΔQ_k − p_k for a cheaper k", "routing", _over_routing
    ),
    "under-routing": lambda margin=0.01: _InequalityDetector(
        "under-routing",
        f"V·ΔQ_k − p_k > V·ΔQ_m − p_m + {margin}·V for a dearer k",
        "routing",
        _under_routing(margin),
    ),
    "over-delegation": lambda: _InequalityDetector(
        "over-delegation",
        "S(ask) > S(act) but act was chosen (∂R/∂a > V·∂p/∂a)",
        "agent",
        _pairwise("act", "ask"),
    ),
    "under-verification": lambda: _InequalityDetector(
        "under-verification",
        "V·ΔQ_v − ΔC_v − ρ·ΔR_v > 0 but T_v = 0",
        "agent",
        _under_verification,
    ),
    "serving-congestion": lambda: _InequalityDetector(
        "serving-congestion", "λ·ΔL_external > congestion charge", "serving", _serving_congestion
    ),
    "stale-rollouts": lambda: _InequalityDetector(
        "stale-rollouts",
        "δ·A > g at the margin but the rollout was admitted",
        "capital",
        _stale_rollout,
    ),
    "cache-misuse": lambda: _InequalityDetector(
        "cache-misuse",
        "S(recompute) > S(reuse) at the new V but the prefix was reused",
        "capital",
        _pairwise("reuse", "recompute"),
    ),
}


def make_detector(mode: str, **params: Any) -> Detector:
    """A detector by mode name (see :data:`DETECTORS`)."""
    try:
        factory = DETECTORS[mode]
    except KeyError:
        raise InputError(
            f"diagnose: unknown mode '{mode}' (known: {', '.join(DETECTORS)})"
        ) from None
    return factory(**params)


def diagnose(records: Iterable[LedgerRecord], modes: Sequence[str] | None = None) -> list[Finding]:
    """Run every detector (or those named in ``modes``) over the records.

    Examples
    --------
    A frontier-default router choosing the frontier model for a V = 10 task
    (the worked example of Sec. 2, where cheap has the higher surplus):

    >>> from margin.core.prices import Option, PriceVector
    >>> rec = LedgerRecord(
    ...     request_id="r1", layer="routing", choice="frontier",
    ...     options=(Option("cheap", 0.7, 1.0), Option("frontier", 0.9, 5.0)),
    ...     prices=PriceVector(value=10.0))
    >>> [(f.mode, f.count, round(f.loss, 9)) for f in diagnose([rec]) if f.count]
    [('over-routing', 1, 2.0)]
    """
    recs = list(records)
    names = list(DETECTORS) if modes is None else list(modes)
    return [make_detector(name).detect(recs) for name in names]
