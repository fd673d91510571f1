"""Where layers send their ledger records."""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol, runtime_checkable

if TYPE_CHECKING:
    from margin.ledger.records import LedgerRecord

__all__ = ["RecordSink"]


@runtime_checkable
class RecordSink(Protocol):
    """Anything that accepts ledger records: the SQLite :class:`~margin.ledger.Ledger`,
    an in-memory list, a test double. Layers take an optional sink and append to it."""

    def append(self, record: LedgerRecord) -> None:
        """Store one record."""
        ...
