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
