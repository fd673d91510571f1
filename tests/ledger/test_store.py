"""The SQLite ledger: exact round trip, filters, summary, errors."""

from __future__ import annotations

import json
import os
import sqlite3
import tempfile
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path

import pytest
from hypothesis import given, settings, strategies as st

from margin.core.prices import InputError, Option, PriceVector
from margin.ledger.records import (
    NANOS_PER_USD,
    LedgerRecord,
    Outcome,
    RecordSink,
    TokenUsage,
    nanos_to_usd,
    usd_to_nanos,
)
from margin.ledger.store import APPLICATION_ID, Ledger

MakeRecord = Callable[..., LedgerRecord]

# -- strategies -----------------------------------------------------------------------

_text = st.text(st.characters(codec="utf-8"), min_size=1, max_size=12)
_finite = st.floats(allow_nan=False, allow_infinity=False)
_nonneg = st.floats(min_value=0.0, max_value=1e12, allow_nan=False)
_json = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**70), 2**70) | _finite | _text,
    lambda kids: st.lists(kids, max_size=3) | st.dictionaries(_text, kids, max_size=3),
    max_leaves=8,
)


@st.composite
def records(draw: st.DrawFn) -> LedgerRecord:
    names = draw(st.lists(_text, min_size=0, max_size=4, unique=True))
    options = tuple(
        Option(n, draw(_finite), draw(_nonneg), draw(_nonneg), draw(_nonneg), draw(_nonneg))
        for n in names
    )
    choice = draw(st.sampled_from([*names, None])) if names else None
    outcome = draw(
        st.none()
        | st.builds(
            Outcome,
            st.none() | _finite,
            st.none() | st.integers(-(2**62), 2**62),
            st.none() | _nonneg,
            st.none() | _nonneg,
            st.none() | _nonneg,
        )
    )
    tokens = st.integers(0, 2**40)
    return LedgerRecord(
        request_id=draw(_text),
        layer=draw(st.sampled_from(["routing", "agent", "serving", "capital", "core", "economy"])),
        choice=choice,
        options=options,
        prices=PriceVector(draw(_nonneg), draw(_nonneg), draw(_nonneg), draw(_nonneg)),
        tenant=draw(_text),
        usage=TokenUsage(draw(tokens), draw(tokens), draw(tokens), draw(tokens), draw(tokens)),
        cost_nanos=draw(st.integers(-(2**62), 2**62)),
        outcome=outcome,
        ex_post_optimal=draw(st.none() | _text),
        regret=draw(st.none() | _nonneg),
        timestamp=draw(st.floats(0, 4e9, allow_nan=False)),
        attributes=draw(st.dictionaries(_text, _json, max_size=4)),
    )


# -- round trip -----------------------------------------------------------------------


def test_round_trip_every_field(tmp_path: Path, make_record: MakeRecord) -> None:
    rec = make_record(0)
    no_outcome = make_record(1, outcome=None, regret=None, ex_post_optimal=None, choice=None)
    empty_outcome = make_record(2, outcome=Outcome())
    with Ledger(tmp_path / "l.db") as led:
        led.append(rec)
        assert led.extend([no_outcome, empty_outcome]) == 2
        got = list(led.records())
    assert got == [rec, no_outcome, empty_outcome]
    # field by field, so a failure names the field
    g = got[0]
    assert g.options == rec.options and g.options[1].irreversible_risk == 0.002
    assert g.prices == rec.prices and g.usage == rec.usage and g.outcome == rec.outcome
    assert g.attributes == {"action_class": "read", "queue": [1, 2.5, None], "nested": {"a": True}}
    assert g.timestamp == rec.timestamp and g.record_id == "rec-000000"
    assert got[1].outcome is None and got[2].outcome == Outcome()


@settings(max_examples=40, deadline=None)
@given(st.lists(records(), min_size=1, max_size=5, unique_by=lambda r: r.record_id))
def test_round_trip_property(recs: list[LedgerRecord]) -> None:
    with tempfile.TemporaryDirectory() as d, Ledger(os.path.join(d, "l.db")) as led:
        led.extend(recs)
        assert list(led.records()) == recs
        assert len(led) == len(recs)


def test_reopen_and_filters(tmp_path: Path, make_record: MakeRecord) -> None:
    path = tmp_path / "l.db"
    recs = [
        make_record(i, layer=layer, tenant=tenant, request_id=f"r{i % 3}")
        for i, (layer, tenant) in enumerate(
            [("routing", "a"), ("agent", "a"), ("routing", "b"), ("serving", "b"), ("routing", "a")]
        )
    ]
    with Ledger(path) as led:
        led.extend(recs)
    with Ledger(str(path)) as led:  # reopen: schema found, nothing lost
        assert len(led) == 5
        assert [r.record_id for r in led.records(layer="routing")] == [
            recs[0].record_id,
            recs[2].record_id,
            recs[4].record_id,
        ]
        assert [r.record_id for r in led.records(layer="routing", tenant="a")] == [
            recs[0].record_id,
            recs[4].record_id,
        ]
        assert [r.record_id for r in led.records(request_id="r1")] == [
            recs[1].record_id,
            recs[4].record_id,
        ]
        assert list(led.records(tenant="nobody")) == []


def test_is_a_record_sink(tmp_path: Path) -> None:
    with Ledger(tmp_path / "l.db") as led:
        assert isinstance(led, RecordSink)


def test_file_layout(tmp_path: Path, make_record: MakeRecord) -> None:
    path = tmp_path / "l.db"
    with Ledger(path) as led:
        led.append(make_record(0))
    con = sqlite3.connect(path)
    try:
        assert con.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert con.execute("PRAGMA application_id").fetchone()[0] == APPLICATION_ID
        assert con.execute("SELECT version FROM schema_version").fetchall() == [(1,)]
        row = con.execute(
            "SELECT cost_nanos, typeof(cost_nanos), input_tokens, reasoning_tokens, "
            "latency_price, regret, ex_post_optimal, options_json FROM records"
        ).fetchone()
    finally:
        con.close()
    assert row[:7] == (1_234_567, "integer", 120, 256, 0.1, 16.0, "frontier")
    assert [o["name"] for o in json.loads(row[7])] == ["cheap", "frontier"]


# -- batches are all or nothing ---------------------------------------------------------


def test_extend_rolls_back_on_duplicate(tmp_path: Path, make_record: MakeRecord) -> None:
    with Ledger(tmp_path / "l.db") as led:
        led.append(make_record(0))
        batch = [make_record(i) for i in range(1, 50)] + [make_record(0)]
        with pytest.raises(InputError, match="record 50 of the batch: duplicate record_id"):
            led.extend(batch)
        assert len(led) == 1


def test_extend_rolls_back_on_bad_item(tmp_path: Path, make_record: MakeRecord) -> None:
    def gen() -> object:
        yield make_record(1)
        yield make_record(2, attributes={"f": {1, 2}})  # a set is not JSON

    with Ledger(tmp_path / "l.db") as led:
        with pytest.raises(InputError, match="record 'rec-000002': field 'attributes'"):
            led.extend(gen())  # type: ignore[arg-type]
        with pytest.raises(InputError, match="expects LedgerRecord"):
            led.extend([make_record(3), {"not": "a record"}])  # type: ignore[list-item]
        assert len(led) == 0
        led.append(make_record(4))  # the connection is usable after a rollback
        assert len(led) == 1


def test_nan_attribute_rejected(tmp_path: Path, make_record: MakeRecord) -> None:
    with Ledger(tmp_path / "l.db") as led, pytest.raises(InputError, match="attributes"):
        led.append(make_record(0, attributes={"x": float("nan")}))


# -- exact money ------------------------------------------------------------------------


@settings(max_examples=25, deadline=None)
@given(st.lists(st.integers(0, 10**15), min_size=0, max_size=300))
def test_money_sums_are_exact(amounts: list[int]) -> None:
    pv = PriceVector(1.0)
    recs = [
        LedgerRecord(f"r{i}", "core", None, (), pv, cost_nanos=a, record_id=f"id{i}")
        for i, a in enumerate(amounts)
    ]
    with tempfile.TemporaryDirectory() as d, Ledger(os.path.join(d, "l.db")) as led:
        led.extend(recs)
        s = led.summary()
    assert s["cost_nanos"] == sum(amounts)
    assert Decimal(s["cost_usd"]) == Decimal(sum(amounts)) / NANOS_PER_USD
    assert s["records"] == len(amounts)


@given(st.decimals(min_value=-(10**6), max_value=10**6, places=9, allow_nan=False))
def test_usd_to_nanos_is_exact_on_decimals(d: Decimal) -> None:
    n = usd_to_nanos(d)
    assert n == int(d * NANOS_PER_USD)
    assert nanos_to_usd(n) == d


@given(
    st.decimals(min_value=0, max_value=10**6, places=9),
    st.decimals(min_value=0, max_value=10**6, places=9),
)
def test_usd_to_nanos_is_additive(a: Decimal, b: Decimal) -> None:
    assert usd_to_nanos(a) + usd_to_nanos(b) == usd_to_nanos(a + b)


def test_summary(tmp_path: Path, make_record: MakeRecord) -> None:
    recs = [
        make_record(0, layer="routing", tenant="a", cost_nanos=usd_to_nanos("0.1"), regret=2.0),
        make_record(1, layer="routing", tenant="b", cost_nanos=usd_to_nanos("0.2"), regret=None),
        make_record(2, layer="agent", tenant="a", cost_nanos=usd_to_nanos("0.3"), regret=1.0),
    ]
    with Ledger(tmp_path / "l.db") as led:
        empty = led.summary()
        led.extend(recs)
        s = led.summary()
    assert empty["records"] == 0 and empty["cost_usd"] == "0" and empty["regret"]["mean"] is None
    assert s["records"] == 3
    assert s["by_layer"] == {"agent": 1, "routing": 2}
    assert s["by_tenant"] == {"a": 2, "b": 1}
    assert s["cost_usd"] == "0.6" and s["cost_nanos"] == 600_000_000
    assert s["cost_usd_by_tenant"] == {"a": "0.4", "b": "0.2"}
    assert s["cost_usd_by_layer"] == {"agent": "0.3", "routing": "0.3"}
    assert s["tokens"] == {
        "input": 360,
        "cached_input": 3000,
        "cache_write": 90,
        "output": 132,
        "reasoning": 768,
        "total": 4350,
    }
    assert s["regret"] == {"total": 3.0, "mean": 1.5, "count": 2}
    json.dumps(s)  # the CLI prints it as JSON


def test_summary_beyond_int64(tmp_path: Path) -> None:
    big = 2**62
    recs = [
        LedgerRecord(f"r{i}", "core", None, (), PriceVector(0.0), cost_nanos=big) for i in range(4)
    ]
    with Ledger(tmp_path / "l.db") as led:
        led.extend(recs)
        assert led.summary()["cost_nanos"] == 4 * big  # SQL SUM overflows; exact anyway


def test_cost_must_fit_int64(tmp_path: Path, make_record: MakeRecord) -> None:
    with Ledger(tmp_path / "l.db") as led, pytest.raises(InputError, match="cost_nanos"):
        led.append(make_record(0, cost_nanos=2**63))


# -- opening errors ---------------------------------------------------------------------


def test_not_a_ledger_text_file(tmp_path: Path) -> None:
    p = tmp_path / "notes.txt"
    p.write_text("hello, not a database\n")
    with pytest.raises(InputError, match=r"notes\.txt: not a margin ledger"):
        Ledger(p)
    assert p.read_text() == "hello, not a database\n"


def test_not_a_ledger_other_sqlite(tmp_path: Path) -> None:
    p = tmp_path / "other.db"
    con = sqlite3.connect(p)
    con.execute("CREATE TABLE t (x)")
    con.commit()
    con.close()
    with pytest.raises(InputError, match=r"other\.db: not a margin ledger"):
        Ledger(p)


def test_directory_and_missing_parent(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="is a directory"):
        Ledger(tmp_path)
    missing = tmp_path / "nope" / "l.db"
    with pytest.raises(InputError, match=r"nope.*does not exist"):
        Ledger(missing)
    assert not missing.parent.exists()


def test_newer_schema_refused(tmp_path: Path) -> None:
    p = tmp_path / "l.db"
    Ledger(p).close()
    con = sqlite3.connect(p)
    con.execute("INSERT INTO schema_version (version) VALUES (99)")
    con.commit()
    con.close()
    with pytest.raises(InputError, match="schema version 99"):
        Ledger(p)


def test_closed_ledger(tmp_path: Path, make_record: MakeRecord) -> None:
    led = Ledger(tmp_path / "l.db")
    led.close()
    led.close()
    with pytest.raises(InputError, match="closed"):
        led.append(make_record(0))
