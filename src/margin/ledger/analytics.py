"""Columnar analytics over a ledger: Parquet export and SQL through DuckDB.

pyarrow and duckdb are imported inside the functions, so importing this module stays
cheap. The ledger is read with Python's ``sqlite3`` into an Arrow table (DuckDB's own
SQLite scanner is an extension that may not be installable offline) and registered in
DuckDB as the view ``records``.

The table has the flat columns of :mod:`margin.ledger.store` (``record_id, request_id,
tenant, layer, choice, value, latency_price, risk_price, irreversible_risk_price,
cost_nanos, <bucket>_tokens, outcome_*, ex_post_optimal, regret, timestamp``) plus
``cost_usd`` (float, for display only: sums of money should use ``cost_nanos``) and the
JSON text columns ``options_json`` and ``attributes_json`` (query them with DuckDB's
``json_extract``).
"""

from __future__ import annotations

import os
import sqlite3
from decimal import Decimal
from typing import Any

from margin._io import atomic_write
from margin.core.prices import InputError
from margin.ledger.records import NANOS_PER_USD, nanos_to_usd
from margin.ledger.store import COLUMNS, Ledger

__all__ = ["export_parquet", "query", "read_table", "regret_by"]

_TYPES = {
    "record_id": "string",
    "request_id": "string",
    "tenant": "string",
    "layer": "string",
    "choice": "string",
    "value": "float64",
    "latency_price": "float64",
    "risk_price": "float64",
    "irreversible_risk_price": "float64",
    "cost_nanos": "int64",
    "input_tokens": "int64",
    "cached_input_tokens": "int64",
    "cache_write_tokens": "int64",
    "output_tokens": "int64",
    "reasoning_tokens": "int64",
    "has_outcome": "bool_",
    "outcome_quality": "float64",
    "outcome_cost_nanos": "int64",
    "outcome_latency": "float64",
    "outcome_risk": "float64",
    "outcome_irreversible_loss": "float64",
    "ex_post_optimal": "string",
    "regret": "float64",
    "timestamp": "float64",
    "options_json": "string",
    "attributes_json": "string",
}

#: Columns ``regret_by`` may group on.
GROUP_KEYS = ("layer", "tenant", "choice", "ex_post_optimal", "request_id")


def read_table(ledger_path: str | os.PathLike[str]) -> Any:
    """The ledger as a ``pyarrow.Table`` (one row per record, insertion order)."""
    import pyarrow as pa

    path = os.fspath(ledger_path)
    if not os.path.exists(path):
        raise InputError(f"{path}: ledger file not found")
    with Ledger(path):  # validates that it is a margin ledger of a supported version
        pass
    # A plain read-only connection: the ledger was validated (and created if absent) above.
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        cur = conn.execute(f"SELECT {', '.join(COLUMNS)} FROM records ORDER BY seq")
        rows = cur.fetchall()
    finally:
        conn.close()
    cols = list(zip(*rows, strict=True)) if rows else [()] * len(COLUMNS)
    arrays = {}
    for name, values in zip(COLUMNS, cols, strict=True):
        typ = getattr(pa, _TYPES[name])()
        if name == "has_outcome":
            values = tuple(bool(v) for v in values)
        arrays[name] = pa.array(values, type=typ)
    cost = arrays["cost_nanos"].to_pylist()
    arrays["cost_usd"] = pa.array([c / NANOS_PER_USD for c in cost], type=pa.float64())
    return pa.table(arrays)


def export_parquet(ledger_path: str | os.PathLike[str], out_path: str | os.PathLike[str]) -> int:
    """Write the ledger to a Parquet file atomically; return the number of rows.

    The file is written to a temporary name in the destination folder and moved into
    place with :func:`os.replace`, so readers never see a half-written file.

    Examples
    --------
    >>> import tempfile, os
    >>> from margin.core.prices import Option, PriceVector
    >>> from margin.ledger.records import LedgerRecord
    >>> d = tempfile.mkdtemp(); db = os.path.join(d, "l.db")
    >>> with Ledger(db) as led:
    ...     led.extend(LedgerRecord(f"r{i}", "routing", "a", (Option("a", 0.5, 0.01),),
    ...                             PriceVector(1.0), cost_nanos=10_000_000) for i in range(3))
    3
    >>> export_parquet(db, os.path.join(d, "l.parquet"))
    3
    """
    import pyarrow.parquet as pq

    out = os.fspath(out_path)
    folder = os.path.dirname(os.path.abspath(out))
    if not os.path.isdir(folder):
        raise InputError(f"{out}: folder {folder} does not exist")
    if os.path.isdir(out):
        raise InputError(f"{out}: is a directory, expected a Parquet file path")
    table = read_table(ledger_path)
    atomic_write(out, lambda tmp: pq.write_table(table, tmp))
    return int(table.num_rows)


def query(ledger_path: str | os.PathLike[str], sql: str) -> list[dict[str, Any]]:
    """Run DuckDB SQL against the ledger, exposed as the table ``records``.

    ``ledger_path`` may be a ledger database or a Parquet file written by
    :func:`export_parquet`. SQL errors raise InputError.

    Examples
    --------
    >>> import tempfile, os
    >>> from margin.core.prices import Option, PriceVector
    >>> from margin.ledger.records import LedgerRecord
    >>> d = tempfile.mkdtemp(); db = os.path.join(d, "l.db")
    >>> with Ledger(db) as led:
    ...     led.extend(LedgerRecord(f"r{i}", "routing", "a", (Option("a", 0.5, 0.01),),
    ...                             PriceVector(1.0), tenant=t, cost_nanos=5)
    ...                for i, t in enumerate(["x", "y", "x"]))
    3
    >>> query(db, "SELECT tenant, SUM(cost_nanos) AS n FROM records GROUP BY 1 ORDER BY 1")
    [{'tenant': 'x', 'n': 10}, {'tenant': 'y', 'n': 5}]
    """
    import duckdb

    p = os.fspath(ledger_path)
    con = duckdb.connect()
    try:
        if p.endswith(".parquet"):
            if not os.path.isfile(p):
                raise InputError(f"{p}: Parquet file not found")
            con.execute(f"CREATE VIEW records AS SELECT * FROM read_parquet('{_sql_str(p)}')")
        else:
            con.register("records", read_table(p))
        try:
            cur = con.execute(sql)
        except duckdb.Error as e:
            raise InputError(f"query: {str(e).splitlines()[0]}") from None
        names = [d[0] for d in cur.description or []]
        return [dict(zip(names, row, strict=True)) for row in cur.fetchall()]
    finally:
        con.close()


def _sql_str(s: str) -> str:
    return s.replace("'", "''")


def regret_by(ledger_path: str | os.PathLike[str], key: str) -> list[dict[str, Any]]:
    """Regret and money grouped by ``key`` (one of :data:`GROUP_KEYS`): the gap between
    realized and ex-post optimal allocation of Sec. 4, per group.

    Each row: ``{key, "records", "with_regret", "regret_total", "regret_mean",
    "cost_usd"}`` with ``cost_usd`` an exact decimal string, sorted by total regret
    (largest first).
    """
    if key not in GROUP_KEYS:
        raise InputError(f"regret_by: field 'key' must be one of {GROUP_KEYS}, got {key!r}")
    rows = query(
        ledger_path,
        f"""SELECT {key} AS k, COUNT(*) AS records, COUNT(regret) AS with_regret,
                   COALESCE(SUM(regret), 0.0) AS regret_total, AVG(regret) AS regret_mean,
                   SUM(cost_nanos)::HUGEINT AS cost_nanos
            FROM records GROUP BY {key} ORDER BY regret_total DESC, k""",
    )
    out = []
    for r in rows:
        nanos = int(r["cost_nanos"] or 0)
        usd: Decimal = nanos_to_usd(nanos)
        out.append(
            {
                key: r["k"],
                "records": int(r["records"]),
                "with_regret": int(r["with_regret"]),
                "regret_total": float(r["regret_total"]),
                "regret_mean": None if r["regret_mean"] is None else float(r["regret_mean"]),
                "cost_usd": format(usd, "f"),
            }
        )
    return out
