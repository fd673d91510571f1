"""The token-aware ledger: one record per allocation decision (loaded lazily)."""

from typing import TYPE_CHECKING

from margin._lazy import attach

__getattr__, __dir__, __all__ = attach(
    __name__,
    {
        "records": [
            "LAYERS",
            "NANOS_PER_USD",
            "LedgerRecord",
            "Outcome",
            "RecordSink",
            "TokenUsage",
            "nanos_to_usd",
            "usd_to_nanos",
        ],
    },
)

if TYPE_CHECKING:
    from margin.ledger.records import (
        LAYERS,
        NANOS_PER_USD,
        LedgerRecord,
        Outcome,
        RecordSink,
        TokenUsage,
        nanos_to_usd,
        usd_to_nanos,
    )
