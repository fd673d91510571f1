"""The token-aware ledger: one record per allocation decision."""

from margin.ledger.records import (
    LAYERS,
    NANOS_PER_USD,
    LedgerRecord,
    Outcome,
    TokenUsage,
    nanos_to_usd,
    usd_to_nanos,
)

__all__ = [
    "LAYERS",
    "NANOS_PER_USD",
    "LedgerRecord",
    "Outcome",
    "TokenUsage",
    "nanos_to_usd",
    "usd_to_nanos",
]
