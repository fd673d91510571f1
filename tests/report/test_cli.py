"""``margin report LEDGER --out FILE``: exit codes, one-line errors, no half-written file."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from margin.cli.report import app
from margin.ledger.records import LedgerRecord
from margin.ledger.store import Ledger

runner = CliRunner()


@pytest.fixture
def ledger_db(tmp_path: Path, records: list[LedgerRecord]) -> Path:
    db = tmp_path / "ledger.db"
    with Ledger(db) as led:
        led.extend(records)
    return db


def _error_line(result: object) -> str:
    err: str = result.stderr  # type: ignore[attr-defined]
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    return lines[0]


def test_writes_the_report(tmp_path: Path, ledger_db: Path, comparison: dict[str, Any]) -> None:
    out = tmp_path / "report.html"
    cmp = tmp_path / "cmp.json"
    cmp.write_text(json.dumps(comparison), encoding="utf-8")
    res = runner.invoke(
        app, [str(ledger_db), "--out", str(out), "--comparison", str(cmp), "--title", "T<1>"]
    )
    assert res.exit_code == 0, res.output
    page = out.read_text(encoding="utf-8")
    assert "<title>T&lt;1&gt;</title>" in page
    assert '<section id="comparison">' in page
    assert "130 decisions · 40 requests" in page
    assert "wrote" in res.stdout and "130 decisions" in res.stdout


def test_json_summary(tmp_path: Path, ledger_db: Path) -> None:
    out = tmp_path / "r.html"
    res = runner.invoke(app, [str(ledger_db), "-o", str(out), "--json", "--max-requests", "5"])
    assert res.exit_code == 0, res.output
    data = json.loads(res.stdout)
    assert data == {
        "out": str(out),
        "records": 130,
        "requests": 40,
        "findings": 5,
        "bytes": out.stat().st_size,
    }
    assert "Showing the 5 requests with the largest regret, of 40." in out.read_text("utf-8")


@pytest.mark.parametrize("kind", ["missing", "text", "empty", "other-sqlite", "directory"])
def test_bad_ledger_exits_2_without_output(tmp_path: Path, kind: str) -> None:
    db = tmp_path / "in.db"
    if kind == "text":
        db.write_text("hello, not a database\n", encoding="utf-8")
    elif kind == "empty":
        db.write_bytes(b"")
    elif kind == "other-sqlite":
        with sqlite3.connect(db) as conn:
            conn.execute("CREATE TABLE t (x INTEGER)")
    elif kind == "directory":
        db.mkdir()
    before = db.read_bytes() if db.is_file() else None
    out = tmp_path / "report.html"
    res = runner.invoke(app, [str(db), "--out", str(out)])
    assert res.exit_code == 2
    line = _error_line(res)
    assert line.startswith("margin: error: ") and str(db) in line
    assert "Traceback" not in res.output
    assert not out.exists()
    assert [p.name for p in tmp_path.iterdir()] == (["in.db"] if kind != "missing" else [])
    if before is not None:
        assert db.read_bytes() == before  # the input is never modified


def test_bad_comparison_exits_2(tmp_path: Path, ledger_db: Path) -> None:
    out = tmp_path / "report.html"
    cmp = tmp_path / "cmp.json"
    cmp.write_text('{"siloed": {"welfare": 1.0},\n "shared": [1]}', encoding="utf-8")
    res = runner.invoke(app, [str(ledger_db), "--out", str(out), "--comparison", str(cmp)])
    assert res.exit_code == 2
    assert "cmp.json.shared: expected a number or a mapping" in _error_line(res)
    assert not out.exists()
    cmp.write_text('{"siloed": ', encoding="utf-8")
    res = runner.invoke(app, [str(ledger_db), "--out", str(out), "--comparison", str(cmp)])
    assert res.exit_code == 2
    assert "cmp.json:1:" in _error_line(res)
    assert not out.exists()


def test_missing_output_folder_exits_2(tmp_path: Path, ledger_db: Path) -> None:
    res = runner.invoke(app, [str(ledger_db), "--out", str(tmp_path / "no" / "r.html")])
    assert res.exit_code == 2
    assert "does not exist" in _error_line(res)
