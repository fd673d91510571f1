"""The embedded ledger store: SQLite in WAL mode, safe with several writer processes.

One row per :class:`~margin.ledger.records.LedgerRecord` (one allocation decision,
Eq. 1), holding the realized vector (V, ΔC, λΔL, ρΔR) of the token-aware dashboard
(Sec. 4) and the regret against the ex-post optimal option.

Standard library only: a coding-agent hook imports this module before every tool call.
"""

from __future__ import annotations

import json
import math
import os
import sqlite3
from collections.abc import Iterable, Iterator, Sequence
from decimal import Decimal
from types import TracebackType

from margin.core.prices import InputError, Option, PriceVector
from margin.ledger.records import LedgerRecord, Outcome, TokenUsage, nanos_to_usd

# Not `typing.TYPE_CHECKING`: `margin gate` imports this module on every call.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

__all__ = ["APPLICATION_ID", "SCHEMA_VERSION", "Ledger"]

#: ``PRAGMA application_id`` of a margin ledger ("MRGN").
APPLICATION_ID = 0x4D52474E
#: Version of the table layout written by this module.
SCHEMA_VERSION = 1

_INT64_MAX = 2**63 - 1

_SCHEMA = """
CREATE TABLE IF NOT EXISTS schema_version (
    version     INTEGER NOT NULL,
    applied_at  TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
);
CREATE TABLE IF NOT EXISTS records (
    seq                      INTEGER PRIMARY KEY,
    record_id                TEXT NOT NULL UNIQUE,
    request_id               TEXT NOT NULL,
    tenant                   TEXT NOT NULL,
    layer                    TEXT NOT NULL,
    choice                   TEXT,
    value                    REAL NOT NULL,
    latency_price            REAL NOT NULL,
    risk_price               REAL NOT NULL,
    irreversible_risk_price  REAL NOT NULL,
    cost_nanos               INTEGER NOT NULL,
    input_tokens             INTEGER NOT NULL,
    cached_input_tokens      INTEGER NOT NULL,
    cache_write_tokens       INTEGER NOT NULL,
    output_tokens            INTEGER NOT NULL,
    reasoning_tokens         INTEGER NOT NULL,
    has_outcome              INTEGER NOT NULL,
    outcome_quality          REAL,
    outcome_cost_nanos       INTEGER,
    outcome_latency          REAL,
    outcome_risk             REAL,
    outcome_irreversible_loss REAL,
    ex_post_optimal          TEXT,
    regret                   REAL,
    timestamp                REAL NOT NULL,
    options_json             TEXT NOT NULL,
    attributes_json          TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS records_layer ON records(layer);
CREATE INDEX IF NOT EXISTS records_tenant ON records(tenant);
CREATE INDEX IF NOT EXISTS records_request ON records(request_id);
"""

#: Columns in insertion order (everything but ``seq``).
COLUMNS: tuple[str, ...] = (
    "record_id",
    "request_id",
    "tenant",
    "layer",
    "choice",
    "value",
    "latency_price",
    "risk_price",
    "irreversible_risk_price",
    "cost_nanos",
    "input_tokens",
    "cached_input_tokens",
    "cache_write_tokens",
    "output_tokens",
    "reasoning_tokens",
    "has_outcome",
    "outcome_quality",
    "outcome_cost_nanos",
    "outcome_latency",
    "outcome_risk",
    "outcome_irreversible_loss",
    "ex_post_optimal",
    "regret",
    "timestamp",
    "options_json",
    "attributes_json",
)
_INSERT = f"INSERT INTO records ({', '.join(COLUMNS)}) VALUES ({', '.join('?' * len(COLUMNS))})"
_SELECT = f"SELECT {', '.join(COLUMNS)} FROM records"
_TOKEN_COLUMNS = {
    "input": "input_tokens",
    "cached_input": "cached_input_tokens",
    "cache_write": "cache_write_tokens",
    "output": "output_tokens",
    "reasoning": "reasoning_tokens",
}
_SQLITE_MAGIC = b"SQLite format 3\x00"


def _check_int64(name: str, value: int, rid: str) -> int:
    if not -_INT64_MAX - 1 <= value <= _INT64_MAX:
        raise InputError(f"record '{rid}': field '{name}' = {value} does not fit in 64 bits")
    return value


_encode = json.JSONEncoder(separators=(",", ":"), allow_nan=False, ensure_ascii=False).encode


def _dumps(obj: Any, name: str, rid: str) -> str:
    try:
        return _encode(obj)
    except (TypeError, ValueError) as e:
        raise InputError(f"record '{rid}': field '{name}' is not JSON-serializable ({e})") from None


def options_json(options: tuple[Option, ...], rid: str = "?") -> str:
    """The JSON text stored for a record's options (a list of ``Option.as_dict()``)."""
    return _dumps(
        [
            {
                "name": o.name,
                "quality": o.quality,
                "cost": o.cost,
                "latency": o.latency,
                "risk": o.risk,
                "irreversible_risk": o.irreversible_risk,
            }
            for o in options
        ],
        "options",
        rid,
    )


def record_to_row(r: LedgerRecord, options_text: str | None = None) -> tuple[Any, ...]:
    """Flatten a record into the ``records`` table's columns (see :data:`COLUMNS`).

    ``options_text`` may pass a precomputed :func:`options_json` of ``r.options``.
    """
    rid = r.record_id
    u = r.usage
    o = r.outcome
    p = r.prices
    for name, v in (("timestamp", r.timestamp), ("regret", r.regret)):
        if v is not None and not math.isfinite(v):
            raise InputError(f"record '{rid}': field '{name}' must be finite, got {v}")
    out_cost = None
    if o is not None and o.cost_nanos is not None:
        out_cost = _check_int64("outcome.cost_nanos", o.cost_nanos, rid)
    return (
        rid,
        r.request_id,
        r.tenant,
        r.layer,
        r.choice,
        p.value,
        p.latency_price,
        p.risk_price,
        p.irreversible_risk_price,
        _check_int64("cost_nanos", r.cost_nanos, rid),
        _check_int64("usage.input", u.input, rid),
        _check_int64("usage.cached_input", u.cached_input, rid),
        _check_int64("usage.cache_write", u.cache_write, rid),
        _check_int64("usage.output", u.output, rid),
        _check_int64("usage.reasoning", u.reasoning, rid),
        0 if o is None else 1,
        None if o is None else o.quality,
        out_cost,
        None if o is None else o.latency,
        None if o is None else o.risk,
        None if o is None else o.irreversible_loss,
        r.ex_post_optimal,
        r.regret,
        float(r.timestamp),
        options_text if options_text is not None else options_json(r.options, rid),
        _dumps(dict(r.attributes), "attributes", rid),
    )


def row_to_record(row: Sequence[Any]) -> LedgerRecord:
    """Inverse of :func:`record_to_row`."""
    (
        rid,
        request_id,
        tenant,
        layer,
        choice,
        value,
        lam,
        rho,
        rho_irr,
        cost_nanos,
        t_in,
        t_cr,
        t_cw,
        t_out,
        t_rs,
        has_outcome,
        oq,
        oc,
        ol,
        orisk,
        oirr,
        ex_post,
        regret,
        ts,
        options_json,
        attributes_json,
    ) = row
    outcome = (
        Outcome(quality=oq, cost_nanos=oc, latency=ol, risk=orisk, irreversible_loss=oirr)
        if has_outcome
        else None
    )
    return LedgerRecord(
        request_id=request_id,
        layer=layer,
        choice=choice,
        options=tuple(Option(**d) for d in json.loads(options_json)),
        prices=PriceVector(value, lam, rho, rho_irr),
        tenant=tenant,
        usage=TokenUsage(t_in, t_cr, t_cw, t_out, t_rs),
        cost_nanos=cost_nanos,
        outcome=outcome,
        ex_post_optimal=ex_post,
        regret=regret,
        timestamp=ts,
        record_id=rid,
        attributes=json.loads(attributes_json),
    )


class Ledger:
    """An append-only ledger of allocation decisions in one SQLite file.

    Parameters
    ----------
    path : str or path-like
        The database file; created (with its schema) when absent. Its folder must exist.
    timeout : float
        Seconds a writer waits for another writer's lock before failing
        (``busy_timeout``).

    Notes
    -----
    *Concurrency.* The file is in WAL mode and every write is one ``BEGIN IMMEDIATE``
    transaction, so any number of processes may append at once (they take turns on the
    write lock, waiting up to ``timeout`` seconds) while readers never block.

    *Atomicity.* :meth:`extend` writes its whole batch in one transaction: if the
    writer raises or is killed (even ``SIGKILL``) half-way, the batch is absent, never
    partial, and the file stays intact; everything committed before is kept.

    *Durability trade-off.* ``synchronous=NORMAL``: commits do not wait for an ``fsync``
    of the WAL. A committed transaction survives any crash of the writing *process*; after
    an operating-system crash or power loss the last transactions before the most recent
    checkpoint may be rolled back (the database is never corrupted). This is what makes
    single appends cheap enough to call before every tool call.

    Money is stored as INTEGER nano-dollars, so :meth:`summary` totals are exact.

    Examples
    --------
    >>> import tempfile, os
    >>> from margin.core.prices import Option, PriceVector
    >>> d = tempfile.mkdtemp()
    >>> rec = LedgerRecord("req-1", "routing", "cheap",
    ...                    (Option("cheap", 0.7, 1.0), Option("frontier", 0.9, 5.0)),
    ...                    PriceVector(10.0), cost_nanos=1_000_000_000, regret=0.0)
    >>> with Ledger(os.path.join(d, "ledger.db")) as led:
    ...     led.append(rec)
    ...     [r == rec for r in led.records(layer="routing")], len(led)
    ([True], 1)
    """

    def __init__(self, path: str | os.PathLike[str], *, timeout: float = 30.0) -> None:
        self.path = os.fspath(path)
        self.timeout = float(timeout)
        self._check_path()
        try:
            self._conn: sqlite3.Connection | None = sqlite3.connect(
                self.path, timeout=self.timeout, isolation_level=None
            )
        except sqlite3.Error as e:
            raise InputError(f"{self.path}: cannot open ledger ({e})") from None
        try:
            self._setup()
        except BaseException:
            self._conn.close()
            self._conn = None
            raise

    # -- opening ------------------------------------------------------------------------

    def _check_path(self) -> None:
        p = self.path
        if os.path.isdir(p):
            raise InputError(f"{p}: is a directory, not a margin ledger file")
        parent = os.path.dirname(os.path.abspath(p))
        if not os.path.isdir(parent):
            raise InputError(f"{p}: folder {parent} does not exist")
        if os.path.exists(p) and os.path.getsize(p) > 0:
            try:
                with open(p, "rb") as f:
                    head = f.read(len(_SQLITE_MAGIC))
            except OSError as e:
                raise InputError(f"{p}: cannot read ({e.strerror})") from None
            if head != _SQLITE_MAGIC:
                raise InputError(f"{p}: not a margin ledger (not an SQLite database)")

    def _setup(self) -> None:
        conn = self._db
        p = self.path
        try:
            conn.execute(f"PRAGMA busy_timeout = {int(self.timeout * 1000)}")
            app_id = conn.execute("PRAGMA application_id").fetchone()[0]
            tables = {
                r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")
            }
        except sqlite3.DatabaseError as e:
            raise InputError(f"{p}: not a margin ledger ({e})") from None
        if app_id not in (0, APPLICATION_ID) or (app_id == 0 and tables):
            raise InputError(
                f"{p}: not a margin ledger (application_id={app_id}, tables={sorted(tables)})"
            )
        try:
            mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
            if str(mode).lower() != "wal":
                raise InputError(f"{p}: cannot switch the ledger to WAL mode (got {mode!r})")
            conn.execute("PRAGMA synchronous = NORMAL")
            if app_id == 0:
                self._create_schema()
            version = self._schema_version()
        except sqlite3.DatabaseError as e:
            raise InputError(f"{p}: cannot open ledger ({e})") from None
        if version != SCHEMA_VERSION:
            raise InputError(
                f"{p}: ledger schema version {version} is not supported "
                f"(this margin reads version {SCHEMA_VERSION})"
            )

    def _create_schema(self) -> None:
        conn = self._db
        conn.execute("BEGIN IMMEDIATE")
        try:
            # Re-check under the write lock: another process may have created it meanwhile.
            if conn.execute("PRAGMA application_id").fetchone()[0] == 0:
                for stmt in _SCHEMA.split(";"):
                    if stmt.strip():
                        conn.execute(stmt)
                conn.execute("INSERT INTO schema_version (version) VALUES (?)", (SCHEMA_VERSION,))
                conn.execute(f"PRAGMA application_id = {APPLICATION_ID}")
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise

    def _schema_version(self) -> int | None:
        row = self._db.execute("SELECT MAX(version) FROM schema_version").fetchone()
        return None if row is None else row[0]

    @property
    def _db(self) -> sqlite3.Connection:
        if self._conn is None:
            raise InputError(f"{self.path}: ledger is closed")
        return self._conn

    # -- context manager ----------------------------------------------------------------

    def __enter__(self) -> Ledger:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        """Close the connection (idempotent)."""
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def __repr__(self) -> str:
        state = "closed" if self._conn is None else "open"
        return f"Ledger({self.path!r}, {state})"

    # -- writing ------------------------------------------------------------------------

    def append(self, record: LedgerRecord) -> None:
        """Store one record in its own transaction (a :class:`RecordSink`)."""
        self.extend((record,))

    def extend(self, records: Iterable[LedgerRecord]) -> int:
        """Store many records in ONE transaction: all of them or, on any error, none.

        Returns the number of records written. A duplicate ``record_id`` or a field that
        cannot be stored raises :class:`InputError` and writes nothing.
        """
        conn = self._db
        count = 0

        def rows() -> Iterator[tuple[Any, ...]]:
            nonlocal count
            last_options: tuple[Option, ...] | None = None
            last_text = ""
            for r in records:
                if not isinstance(r, LedgerRecord):
                    raise InputError(
                        f"{self.path}: extend expects LedgerRecord items, got {type(r).__name__}"
                    )
                # Layers often share one (immutable) options tuple across a batch.
                if r.options is not last_options:
                    last_options, last_text = r.options, options_json(r.options, r.record_id)
                yield record_to_row(r, last_text)
                count += 1

        conn.execute("BEGIN IMMEDIATE")
        try:
            conn.executemany(_INSERT, rows())
            conn.execute("COMMIT")
        except sqlite3.IntegrityError as e:
            conn.execute("ROLLBACK")
            raise InputError(
                f"{self.path}: record {count + 1} of the batch: duplicate record_id ({e})"
            ) from None
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        return count

    # -- reading ------------------------------------------------------------------------

    def records(
        self,
        *,
        layer: str | None = None,
        tenant: str | None = None,
        request_id: str | None = None,
    ) -> Iterator[LedgerRecord]:
        """Records in insertion order, optionally filtered (filters combine with AND)."""
        where, args = [], []
        for col, v in (("layer", layer), ("tenant", tenant), ("request_id", request_id)):
            if v is not None:
                where.append(f"{col} = ?")
                args.append(v)
        sql = _SELECT + (" WHERE " + " AND ".join(where) if where else "") + " ORDER BY seq"
        cur = self._db.execute(sql, args)
        try:
            while True:
                batch = cur.fetchmany(1000)
                if not batch:
                    return
                for row in batch:
                    yield row_to_record(row)
        finally:
            cur.close()

    def __len__(self) -> int:
        return int(self._db.execute("SELECT COUNT(*) FROM records").fetchone()[0])

    def _sum_nanos(self, where: str = "", args: Sequence[Any] = ()) -> int:
        try:
            row = self._db.execute(f"SELECT SUM(cost_nanos) FROM records {where}", args).fetchone()
            return int(row[0] or 0)
        except sqlite3.OperationalError:  # integer overflow in SQL: sum in Python (exact)
            cur = self._db.execute(f"SELECT cost_nanos FROM records {where}", args)
            return sum(r[0] for r in cur)

    def summary(self) -> dict[str, Any]:
        """Totals over the whole ledger.

        Returns
        -------
        dict
            ``records`` (count), ``by_layer`` and ``by_tenant`` (counts),
            ``cost_usd`` (exact decimal string from the integer nano-dollar sum),
            ``cost_nanos``, ``cost_usd_by_layer`` and ``cost_usd_by_tenant`` (decimal
            strings), ``tokens`` (per bucket and ``total``), and ``regret``:
            ``{"total": Σ regret, "mean": mean over records with a regret (None if none),
            "count": number of records with a regret}``.
        """
        db = self._db
        n = len(self)
        by_layer = dict(db.execute("SELECT layer, COUNT(*) FROM records GROUP BY layer ORDER BY 1"))
        by_tenant = dict(
            db.execute("SELECT tenant, COUNT(*) FROM records GROUP BY tenant ORDER BY 1")
        )
        cost_by_layer = {k: _usd_str(self._sum_nanos("WHERE layer = ?", (k,))) for k in by_layer}
        cost_by_tenant = {k: _usd_str(self._sum_nanos("WHERE tenant = ?", (k,))) for k in by_tenant}
        total = self._sum_nanos()
        cols = ", ".join(f"COALESCE(SUM({c}), 0)" for c in _TOKEN_COLUMNS.values())
        sums = db.execute(f"SELECT {cols} FROM records").fetchone()
        tokens = {k: int(v) for k, v in zip(_TOKEN_COLUMNS, sums, strict=True)}
        tokens["total"] = sum(tokens.values())
        r_total, r_count = db.execute("SELECT TOTAL(regret), COUNT(regret) FROM records").fetchone()
        return {
            "records": n,
            "by_layer": by_layer,
            "by_tenant": by_tenant,
            "cost_nanos": total,
            "cost_usd": _usd_str(total),
            "cost_usd_by_layer": cost_by_layer,
            "cost_usd_by_tenant": cost_by_tenant,
            "tokens": tokens,
            "regret": {
                "total": float(r_total),
                "mean": float(r_total) / r_count if r_count else None,
                "count": int(r_count),
            },
        }


def _usd_str(nanos: int) -> str:
    d: Decimal = nanos_to_usd(nanos)
    return format(d, "f")
