"""``margin economy run``: table, JSON shape, ledger, one-line errors."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from margin.cli.economy import app
from margin.diagnose import diagnose
from margin.ledger.store import Ledger

TINY = {
    "n_coding": 4,
    "horizon_s": 120.0,
    "interval_s": 60.0,
    "chat_rate": 0.2,
    "long_rate": 0.02,
    "replicas": 2,
    "seed": 1,
}

runner = CliRunner()


def _cfg(tmp_path, **extra):
    p = tmp_path / "econ.json"
    p.write_text(json.dumps({**TINY, **extra}))
    return p


def test_json_shape_and_ledger(tmp_path):
    led = tmp_path / "ledger.sqlite"
    res = runner.invoke(
        app,
        [
            "run",
            "--config",
            str(_cfg(tmp_path)),
            "--ledger",
            str(led),
            "--json",
            "--no-attribution",
        ],
    )
    assert res.exit_code == 0, res.output
    out = json.loads(res.stdout)
    assert set(out) == {
        "config",
        "siloed",
        "shared",
        "welfare_gain",
        "attribution",
        "ledger",
        "records",
    }
    assert out["attribution"] == {}
    for regime in ("siloed", "shared"):
        r = out[regime]
        assert set(r["layers"]) == {"routing", "agent", "serving", "capital"}
        assert set(r["total"]) == {"welfare", "cost", "latency", "risk", "regret", "decisions"}
        assert len(r["prices"]) == 2
    assert (
        out["welfare_gain"] == out["shared"]["total"]["welfare"] - out["siloed"]["total"]["welfare"]
    )
    with Ledger(led) as db:
        recs = list(db.records())
    assert len(recs) == out["records"]["siloed"] + out["records"]["shared"]
    siloed = [r for r in recs if r.request_id.startswith("siloed")]
    assert {r.layer for r in siloed} >= {"routing", "agent", "serving"}
    assert any(f.count for f in diagnose(siloed))


def test_table_with_attribution(tmp_path):
    res = runner.invoke(app, ["run", "--config", str(_cfg(tmp_path))])
    assert res.exit_code == 0, res.output
    assert "siloed" in res.output and "interaction" in res.output and "total" in res.output
    # the shared regime's price path: one row per interval, with the binding constraints
    assert "Published price path" in res.output
    assert "0-60 s" in res.output and "60-120 s" in res.output


def _second_interval_row(output: str) -> str:
    return next(line for line in output.splitlines() if "60-120 s" in line)


def test_price_path_names_the_binding_budgets(tmp_path):
    tight = runner.invoke(
        app,
        ["run", "--config", str(_cfg(tmp_path, cost_budget_per_task=1e-4)), "--no-attribution"],
    )
    assert tight.exit_code == 0, tight.output
    assert "cost" in _second_interval_row(tight.output)
    loose = runner.invoke(
        app,
        [
            "run",
            "--config",
            str(
                _cfg(
                    tmp_path,
                    cost_budget_per_task=1e6,
                    latency_sla_per_task=1e9,
                    risk_envelope_per_task=1e9,
                )
            ),
            "--no-attribution",
        ],
    )
    assert loose.exit_code == 0, loose.output
    assert _second_interval_row(loose.output).rstrip(" │|").endswith("-")


def test_bad_input_is_one_line_exit_2(tmp_path):
    res = runner.invoke(app, ["run", "--config", str(_cfg(tmp_path, n_codng=3))])
    assert res.exit_code == 2
    assert "unknown field 'n_codng'" in res.stderr and "Traceback" not in res.output
    res = runner.invoke(app, ["run", "--config", str(tmp_path / "missing.yaml")])
    assert res.exit_code == 2 and "not found" in res.stderr
    led = tmp_path / "nofolder" / "l.sqlite"
    res = runner.invoke(
        app,
        [
            "run",
            "--config",
            str(_cfg(tmp_path)),
            "--ledger",
            str(led),
            "--json",
            "--no-attribution",
        ],
    )
    assert res.exit_code == 2 and "does not exist" in res.stderr
    assert not led.parent.exists()
