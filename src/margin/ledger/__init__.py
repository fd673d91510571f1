"""The token-aware ledger: one record per allocation decision (loaded lazily)."""

from margin._lazy import attach

TYPE_CHECKING = False  # not typing's: the gate imports this package

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
        "sink": ["RecordSink"],
        "records": [
            "LAYERS",
            "NANOS_PER_USD",
            "LedgerRecord",
            "Outcome",
            "TokenUsage",
            "nanos_to_usd",
            "usd_to_nanos",
        ],
    },
)

if TYPE_CHECKING:
    from margin.ledger.analytics import (
        export_parquet as export_parquet,
        query as query,
        read_table as read_table,
        regret_by as regret_by,
    )
    from margin.ledger.importers import (
        records_from_otel_spans as records_from_otel_spans,
        usage_from_anthropic as usage_from_anthropic,
        usage_from_openai as usage_from_openai,
        usage_from_otel as usage_from_otel,
    )
    from margin.ledger.pricing import (
        ModelPrice as ModelPrice,
        PriceTable as PriceTable,
    )
    from margin.ledger.records import (
        LAYERS as LAYERS,
        NANOS_PER_USD as NANOS_PER_USD,
        LedgerRecord as LedgerRecord,
        Outcome as Outcome,
        TokenUsage as TokenUsage,
        nanos_to_usd as nanos_to_usd,
        usd_to_nanos as usd_to_nanos,
    )
    from margin.ledger.sink import RecordSink as RecordSink
    from margin.ledger.store import (
        Ledger as Ledger,
    )
