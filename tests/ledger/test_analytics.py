"""Parquet export and DuckDB queries over a ledger."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from margin.core.prices import InputError
from margin.ledger.analytics import export_parquet, query, read_table, regret_by
from margin.ledger.records import LedgerRecord
from margin.ledger.store import Ledger

MakeRecord = Callable[..., LedgerRecord]


@pytest.fixture
def ledger_path(tmp_path: Path, make_record: MakeRecord) -> Path:
    path = tmp_path / "l.db"
    recs = [
        make_record(
            i,
            tenant="a" if i % 3 else "b",
            layer="routing" if i % 2 else "agent",
            regret=float(i % 4) if i % 5 else None,
            cost_nanos=1_000_000 * i + 7,
        )
        for i in range(40)
    ]
    with Ledger(path) as led:
        led.extend(recs)
    return path


def test_export_parquet(ledger_path: Path, tmp_path: Path) -> None:
    out = tmp_path / "out.parquet"
    assert export_parquet(ledger_path, out) == 40
    t = pq.read_table(out)
    assert t.num_rows == 40
    for col in (
        "layer",
        "tenant",
        "choice",
        "value",
        "latency_price",
        "risk_price",
        "cost_nanos",
        "cost_usd",
        "input_tokens",
        "cached_input_tokens",
        "cache_write_tokens",
        "output_tokens",
        "reasoning_tokens",
        "regret",
        "ex_post_optimal",
        "timestamp",
        "options_json",
        "attributes_json",
    ):
        assert col in t.column_names, col
    assert t.schema.field("cost_nanos").type == "int64"
    assert sum(t.column("cost_nanos").to_pylist()) == sum(1_000_000 * i + 7 for i in range(40))
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".margin-")]  # no temp left
    # exporting again replaces the file atomically
    assert export_parquet(ledger_path, out) == 40


def test_export_errors_leave_nothing(ledger_path: Path, tmp_path: Path) -> None:
    with pytest.raises(InputError, match="does not exist"):
        export_parquet(ledger_path, tmp_path / "missing" / "x.parquet")
    with pytest.raises(InputError, match="ledger file not found"):
        export_parquet(tmp_path / "nope.db", tmp_path / "x.parquet")
    junk = tmp_path / "junk.db"
    junk.write_text("junk")
    with pytest.raises(InputError, match="not a margin ledger"):
        export_parquet(junk, tmp_path / "x.parquet")
    assert not (tmp_path / "x.parquet").exists()


def test_duckdb_query_on_ledger_and_parquet(ledger_path: Path, tmp_path: Path) -> None:
    sql = (
        "SELECT tenant, COUNT(*) AS n, SUM(cost_nanos) AS nanos, "
        "SUM(CAST(json_extract(attributes_json, '$.nested.a') AS BOOLEAN)::INT) AS flagged "
        "FROM records GROUP BY tenant ORDER BY tenant"
    )
    rows = query(ledger_path, sql)
    b_ids = [i for i in range(40) if i % 3 == 0]
    assert rows == [
        {
            "tenant": "a",
            "n": 40 - len(b_ids),
            "nanos": sum(1_000_000 * i + 7 for i in range(40) if i % 3),
            "flagged": 40 - len(b_ids),
        },
        {
            "tenant": "b",
            "n": len(b_ids),
            "nanos": sum(1_000_000 * i + 7 for i in b_ids),
            "flagged": len(b_ids),
        },
    ]
    out = tmp_path / "l.parquet"
    export_parquet(ledger_path, out)
    assert query(out, sql) == rows
    with pytest.raises(InputError, match="query:"):
        query(ledger_path, "SELECT nope FROM records")


def test_regret_by(ledger_path: Path) -> None:
    rows = regret_by(ledger_path, "layer")
    with Ledger(ledger_path) as led:
        s = led.summary()
    assert {r["layer"] for r in rows} == {"routing", "agent"}
    assert sum(r["records"] for r in rows) == 40
    assert sum(r["with_regret"] for r in rows) == s["regret"]["count"]
    assert sum(r["regret_total"] for r in rows) == pytest.approx(s["regret"]["total"])
    assert rows[0]["regret_total"] >= rows[1]["regret_total"]
    by_layer_cost = {r["layer"]: r["cost_usd"] for r in rows}
    assert by_layer_cost == s["cost_usd_by_layer"]
    with pytest.raises(InputError, match="field 'key'"):
        regret_by(ledger_path, "cost_nanos; DROP TABLE records")


def test_empty_ledger(tmp_path: Path) -> None:
    path = tmp_path / "empty.db"
    Ledger(path).close()
    assert read_table(path).num_rows == 0
    assert export_parquet(path, tmp_path / "e.parquet") == 0
    assert query(path, "SELECT COUNT(*) AS n FROM records") == [{"n": 0}]
