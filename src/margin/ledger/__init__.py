"""The token-aware ledger: one record per allocation decision (loaded lazily)."""

from typing import TYPE_CHECKING

from margin._lazy import attach

__getattr__, __dir__, __all__ = attach(
    __name__,
    {
        "analytics": ["export_parquet", "query", "read_table", "regret_by"],
        "importers": [
            "records_from_otel_spans",
            "usage_from_anthropic",
            "usage_from_openai",
            "usage_from_otel",
        ],
        "pricing": ["ModelPrice", "PriceTable"],
        "store": ["Ledger"],
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
    from margin.ledger.analytics import export_parquet, query, read_table, regret_by
    from margin.ledger.importers import (
        records_from_otel_spans,
        usage_from_anthropic,
        usage_from_openai,
        usage_from_otel,
    )
    from margin.ledger.pricing import ModelPrice, PriceTable
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
    from margin.ledger.store import Ledger
