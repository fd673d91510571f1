"""``margin agent`` commands through typer's CliRunner."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from margin.cli.agent import app

runner = CliRunner()


def test_schedule_table_and_exports(tmp_path: Path) -> None:
    r = runner.invoke(app, ["schedule"])
    assert r.exit_code == 0 and "Autonomy schedule" in r.output
    r = runner.invoke(app, ["schedule", "--format", "claude-code"])
    assert r.exit_code == 0
    assert "Bash(git push:*)" in json.loads(r.output)["permissions"]["deny"]
    r = runner.invoke(app, ["schedule", "--format", "langgraph"])
    assert json.loads(r.output)["interrupt_on"]["read"] is False
    r = runner.invoke(app, ["schedule", "--format", "openhands"])
    assert json.loads(r.output)["confirmation_policy"]["type"] == "ConfirmRisky"
    out = tmp_path / "s.json"
    r = runner.invoke(app, ["schedule", "--format", "json", "--output", str(out)])
    assert r.exit_code == 0 and json.loads(out.read_text())["levels"]["commit"] == "confirm"


def test_schedule_prices_move_levels(tmp_path: Path) -> None:
    prices = tmp_path / "p.yaml"
    prices.write_text(
        "value: 50\nlatency_price: 0.005\nrisk_price: 0.01\nirreversible_risk_price: 0.0\n"
    )
    r = runner.invoke(app, ["schedule", "--prices", str(prices), "--format", "json"])
    assert r.exit_code == 0
    levels = json.loads(r.output)["levels"]
    assert levels["commit"] == "free" and levels["destroy"] != "forbid"  # risk nearly unpriced


def test_schedule_errors_exit_2(tmp_path: Path) -> None:
    r = runner.invoke(app, ["schedule", "--format", "xml"])
    assert r.exit_code == 2 and "unknown 'xml'" in r.output
    bad = tmp_path / "p.json"
    bad.write_text('{"value": -3}')
    r = runner.invoke(app, ["schedule", "--prices", str(bad)])
    assert r.exit_code == 2 and "p.json" in r.output and "Traceback" not in r.output
    r = runner.invoke(app, ["schedule", "--prices", str(tmp_path / "missing.json")])
    assert r.exit_code == 2 and "cannot read" in r.output


def test_simulate_json_shape() -> None:
    r = runner.invoke(
        app,
        [
            "simulate",
            "--tasks",
            "60",
            "--value",
            "100",
            "--risk-price",
            "1",
            "--policy",
            "fixed_cap",
            "--policy",
            "marginal",
            "--json",
        ],
    )
    assert r.exit_code == 0, r.output
    data = json.loads(r.output)
    assert data["tasks"] == 60 and len(data["grid"]) == 1
    cell = data["grid"][0]
    assert set(cell["policies"]) == {"fixed_cap", "marginal"} and cell["best"] in cell["policies"]
    assert {
        "utility",
        "cost_usd",
        "wrong_patch_rate",
        "irreversible_loss_rate",
        "human_minutes",
    } <= set(cell["policies"]["marginal"])
    r = runner.invoke(app, ["simulate", "--policy", "yolo"])
    assert r.exit_code == 2 and "unknown 'yolo'" in r.output


def test_evidence(shared_data) -> None:  # type: ignore[no-untyped-def]
    folder = shared_data("agent/swe_effi_per_instance.csv").parent
    r = runner.invoke(app, ["evidence", "--data", str(folder), "--json"])
    assert r.exit_code == 0, r.output
    data = json.loads(r.output)
    assert set(data) == {"swe_bench_pro", "swe_effi", "aider_polyglot", "aider_edit"}
    r = runner.invoke(app, ["evidence", "--data", str(folder / "nope")])
    assert r.exit_code == 2 and "cannot read" in r.output
