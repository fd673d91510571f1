"""The core CLI commands: exact JSON shapes and exit code 2 with one line on bad input."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from margin.cli.app import app

runner = CliRunner()

WORKED = {
    "value": 100.0,
    "risk_price": 50.0,
    "options": [
        {"name": "cheap", "quality": 0.7, "cost": 1.0, "risk": 0.05},
        {"name": "frontier", "quality": 0.9, "cost": 5.0, "risk": 0.01},
    ],
}


def _write(tmp_path: Path, data: object, name: str = "in.json") -> Path:
    p = tmp_path / name
    p.write_text(json.dumps(data) if not isinstance(data, str) else data)
    return p


def test_allocate_json_shape(tmp_path: Path) -> None:
    res = runner.invoke(app, ["allocate", str(_write(tmp_path, WORKED)), "--json"])
    assert res.exit_code == 0, res.output
    out = json.loads(res.stdout)
    assert set(out) == {"choice", "surplus"}
    assert out["choice"] == "frontier"
    assert out["surplus"] == pytest.approx({"cheap": 66.5, "frontier": 84.5})


def test_allocate_table_marks_choice(tmp_path: Path) -> None:
    low = dict(WORKED, value=5.0)
    res = runner.invoke(app, ["allocate", str(_write(tmp_path, low))])
    assert res.exit_code == 0
    assert "cheap" in res.stdout and "← choice" in res.stdout


@pytest.mark.parametrize(
    ("payload", "needle"),
    [
        ("{not json", "invalid JSON"),
        ({"options": []}, "missing field 'value'"),
        (
            {"value": 1, "options": [{"name": "a", "quality": 1}]},
            "options[0]: missing field 'cost'",
        ),
        (
            {"value": -3, "options": [{"name": "a", "quality": 1, "cost": 1}]},
            "'value' must be >= 0",
        ),
        ({"value": 1, "options": "x"}, "'options' must be a non-empty list"),
        ([1, 2], "expected a JSON object"),
    ],
)
def test_allocate_bad_input_exit_2(tmp_path: Path, payload: object, needle: str) -> None:
    res = runner.invoke(app, ["allocate", str(_write(tmp_path, payload))])
    assert res.exit_code == 2
    lines = [ln for ln in res.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and needle in lines[0]
    assert "Traceback" not in res.output


def test_allocate_missing_file_exit_2(tmp_path: Path) -> None:
    res = runner.invoke(app, ["allocate", str(tmp_path / "nope.json")])
    assert res.exit_code == 2
    assert "no such file" in res.stderr


def test_console_script_runs(tmp_path: Path) -> None:
    path = _write(tmp_path, WORKED)
    out = subprocess.run(
        [sys.executable, "-m", "margin", "allocate", str(path), "--json"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert json.loads(out.stdout)["choice"] == "frontier"


def _ledger_with_records(path: Path) -> None:
    from margin.core.prices import Option, PriceVector
    from margin.ledger.records import LedgerRecord, TokenUsage
    from margin.ledger.store import Ledger

    opts = (Option("cheap", 0.7, 1.0), Option("frontier", 0.9, 5.0))
    with Ledger(path) as led:
        led.extend(
            LedgerRecord(
                request_id=f"r{k}",
                layer="routing",
                choice="cheap",
                options=opts,
                prices=PriceVector(10.0),
                tenant="t1" if k % 2 else "t2",
                usage=TokenUsage(input=100, output=10),
                cost_nanos=1_000_000_001,
                regret=0.5,
            )
            for k in range(4)
        )


def test_ledger_summary_and_export(tmp_path: Path) -> None:
    db = tmp_path / "ledger.db"
    _ledger_with_records(db)
    res = runner.invoke(app, ["ledger", "summary", str(db), "--json"])
    assert res.exit_code == 0, res.output
    summary = json.loads(res.stdout)
    assert json.dumps(summary).count("4.000000004") >= 1  # exact money: 4 × 1.000000001 USD
    out = tmp_path / "out.parquet"
    res = runner.invoke(app, ["ledger", "export", str(db), str(out)])
    assert res.exit_code == 0, res.output
    import pyarrow.parquet as pq

    assert pq.read_table(out).num_rows == 4


def test_ledger_commands_bad_input(tmp_path: Path) -> None:
    res = runner.invoke(app, ["ledger", "summary", str(tmp_path / "missing.db")])
    assert res.exit_code == 2 and "no such ledger file" in res.stderr
    not_ledger = tmp_path / "x.db"
    not_ledger.write_text("hello")
    res = runner.invoke(app, ["ledger", "export", str(not_ledger), str(tmp_path / "o.parquet")])
    assert res.exit_code == 2 and len(res.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "o.parquet").exists()


def test_diagnose_planted_over_routing(tmp_path: Path) -> None:
    from margin.core.prices import Option, PriceVector
    from margin.ledger.records import LedgerRecord
    from margin.ledger.store import Ledger

    db = tmp_path / "l.db"
    opts = (Option("cheap", 0.7, 1.0), Option("frontier", 0.9, 5.0))
    with Ledger(db) as led:
        led.extend(
            LedgerRecord(
                request_id=f"r{v}",
                layer="routing",
                choice="frontier",
                options=opts,
                prices=PriceVector(float(v)),
            )
            for v in (5, 10, 100)
        )
    res = runner.invoke(app, ["diagnose", str(db), "--json"])
    assert res.exit_code == 0, res.output
    findings = {f["mode"]: f for f in json.loads(res.stdout)["findings"]}
    assert len(findings) == 7
    assert findings["over-routing"]["count"] == 2  # V = 5 and V = 10 are below V* = 20
    assert findings["over-routing"]["loss"] == pytest.approx(3.0 + 2.0)
    assert findings["under-routing"]["count"] == 0


def test_import_otel_then_diagnose(tmp_path: Path) -> None:
    span = {
        "name": "chat gpt-4o",
        "context": {"trace_id": "0xabc", "span_id": "0x01"},
        "start_time_unix_nano": 1_700_000_000_000_000_000,
        "end_time_unix_nano": 1_700_000_000_500_000_000,
        "attributes": {
            "gen_ai.request.model": "gpt-4o",
            "gen_ai.usage.input_tokens": 1000,
            "gen_ai.usage.output_tokens": 200,
        },
    }
    spans = tmp_path / "spans.jsonl"
    spans.write_text(json.dumps(span) + "\n")
    db = tmp_path / "otel.db"
    res = runner.invoke(app, ["ledger", "import-otel", str(spans), str(db)])
    assert res.exit_code == 0, res.output
    res = runner.invoke(app, ["ledger", "summary", str(db), "--json"])
    assert res.exit_code == 0 and json.loads(res.stdout)
    res = runner.invoke(app, ["diagnose", str(db), "--json"])
    assert res.exit_code == 0
    assert all(f["count"] == 0 for f in json.loads(res.stdout)["findings"])
    bad = tmp_path / "bad.jsonl"
    bad.write_text("{not json\n")
    res = runner.invoke(app, ["ledger", "import-otel", str(bad), str(tmp_path / "b.db")])
    assert res.exit_code == 2 and len(res.stderr.strip().splitlines()) == 1


DISCOVERY = {
    "tasks": [
        {"id": "low", "value": 10.0, "options": WORKED["options"]},
        {"id": "high", "value": 100.0, "options": WORKED["options"]},
    ],
    "budgets": {"cost": 4.0},
}


def test_prices_discover_json_shape(tmp_path: Path) -> None:
    res = runner.invoke(app, ["prices", "discover", str(_write(tmp_path, DISCOVERY)), "--json"])
    assert res.exit_code == 0, res.output
    out = json.loads(res.stdout)
    assert set(out) == {"prices", "lambda", "rho", "welfare", "allocation"}
    assert set(out["prices"]) == {"cost", "latency", "risk"}
    assert out["prices"]["latency"] == 0.0 and out["prices"]["risk"] == 0.0  # unconstrained
    assert out["prices"]["cost"] > 0  # a $4 budget binds: the free optimum spends $6
    assert set(out["allocation"]) == {"low", "high"}
    spent = sum(
        share * {"cheap": 1.0, "frontier": 5.0}[name]
        for per_task in out["allocation"].values()
        for name, share in per_task.items()
    )
    assert spent == pytest.approx(4.0)
    res = runner.invoke(app, ["prices", "discover", str(_write(tmp_path, DISCOVERY))])
    assert res.exit_code == 0 and "λ" in res.stdout


@pytest.mark.parametrize(
    ("payload", "needle"),
    [
        ({"tasks": []}, "tasks"),
        ({"tasks": DISCOVERY["tasks"], "budgets": {"cost": -1}}, "'cost'"),
        ({"tasks": DISCOVERY["tasks"], "budgets": {"costs": 1}}, "unknown field 'costs'"),
        ({"tasks": [{"id": "a", "value": 1, "options": [{"name": "x", "quality": 1}]}]}, "'cost'"),
    ],
)
def test_prices_discover_bad_input(tmp_path: Path, payload: object, needle: str) -> None:
    res = runner.invoke(app, ["prices", "discover", str(_write(tmp_path, payload))])
    assert res.exit_code == 2, res.output
    assert len(res.stderr.strip().splitlines()) == 1 and needle in res.stderr


def test_allocate_rejects_misspelt_field(tmp_path: Path) -> None:
    bad = dict(WORKED, risk_prise=50.0)
    res = runner.invoke(app, ["allocate", str(_write(tmp_path, bad))])
    assert res.exit_code == 2 and "unknown field 'risk_prise'" in res.stderr


def test_empty_file_is_not_a_ledger_and_is_left_alone(tmp_path: Path) -> None:
    empty = tmp_path / "empty.db"
    empty.touch()
    for args in (["ledger", "summary", str(empty)], ["diagnose", str(empty)]):
        res = runner.invoke(app, args)
        assert res.exit_code == 2 and "empty file" in res.stderr
    assert empty.stat().st_size == 0


def test_atomic_write_gives_umask_permissions(tmp_path: Path) -> None:
    import os

    from margin.cli._common import atomic_write

    target = atomic_write(tmp_path / "out.txt", lambda p: p.write_text("x"))
    mask = os.umask(0)
    os.umask(mask)
    assert target.stat().st_mode & 0o777 == 0o666 & ~mask
    assert [p.name for p in tmp_path.iterdir()] == ["out.txt"]


def test_otel_import_with_alternatives_lets_diagnose_test_eq1(tmp_path: Path) -> None:
    def span(i: int, model: str) -> dict[str, object]:
        return {
            "name": f"chat {model}",
            "context": {"trace_id": f"0x{i:04x}", "span_id": "0x01"},
            "start_time_unix_nano": 1_700_000_000_000_000_000,
            "end_time_unix_nano": 1_700_000_001_000_000_000,
            "attributes": {
                "gen_ai.request.model": model,
                "gen_ai.usage.input_tokens": 20_000,
                "gen_ai.usage.output_tokens": 2_000,
            },
        }

    spans = tmp_path / "spans.jsonl"
    spans.write_text("\n".join(json.dumps(span(i, "gpt-4o")) for i in range(3)) + "\n")
    alts = _write(tmp_path, {"gpt-4o": 0.9, "gpt-4o-mini": 0.88}, "alternatives.json")
    db = tmp_path / "otel.db"
    res = runner.invoke(
        app,
        ["ledger", "import-otel", str(spans), str(db), "--alternatives", str(alts), "--value", "1"],
    )
    assert res.exit_code == 0, res.output
    res = runner.invoke(app, ["diagnose", str(db), "--json"])
    findings = {f["mode"]: f for f in json.loads(res.stdout)["findings"]}
    # At V = $1 two points of quality are worth $0.02, less than gpt-4o's extra cost.
    assert findings["over-routing"]["count"] == 3
    assert findings["over-routing"]["examples"][0]["better"] == "gpt-4o-mini"
    bad = _write(tmp_path, {"gpt-4o-mini": 0.88}, "alt2.json")
    res = runner.invoke(
        app,
        ["ledger", "import-otel", str(spans), str(tmp_path / "b.db"), "--alternatives", str(bad)],
    )
    assert res.exit_code == 2 and "not among the alternatives" in res.stderr
