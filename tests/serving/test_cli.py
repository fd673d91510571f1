from __future__ import annotations

import json

from typer.testing import CliRunner

from margin.cli.serve import SIMULATE_KEYS, app

runner = CliRunner()


def synth(tmp_path, n=120, rate=6.0):
    p = tmp_path / "s.json"
    p.write_text(json.dumps({"n": n, "rate": rate, "prompt_mean": 500, "output_mean": 60}))
    return p


def test_simulate_json_shape(tmp_path):
    r = runner.invoke(
        app,
        [
            "simulate",
            "--trace",
            str(synth(tmp_path)),
            "--format",
            "synthetic",
            "--scheduler",
            "priced",
            "--rate-scale",
            "2",
            "--json",
        ],
    )
    assert r.exit_code == 0, r.output
    out = json.loads(r.stdout)
    assert tuple(out) == SIMULATE_KEYS
    assert set(out["ttft"]) == {"mean", "p50", "p90", "p99"}
    assert out["requests"] == 120 and out["completed"] + out["rejected"] == 120


def test_simulate_real_traces(shared_data, tmp_path):
    for rel, fmt in (
        ("serving/mooncake_conversation_trace.jsonl", "mooncake"),
        ("serving/AzureLLMInferenceTrace_conv.csv", "azure"),
    ):
        r = runner.invoke(
            app,
            [
                "simulate",
                "--trace",
                str(shared_data(rel)),
                "--format",
                fmt,
                "--max-requests",
                "300",
                "--json",
            ],
        )
        assert r.exit_code == 0, r.output
        assert json.loads(r.stdout)["requests"] == 300


def test_simulate_human_table_and_ledger(tmp_path):
    r = runner.invoke(app, ["simulate", "--trace", str(synth(tmp_path)), "--format", "synthetic"])
    assert r.exit_code == 0 and "ttft" in r.stdout


def test_errors_exit_2(tmp_path):
    bad = tmp_path / "bad.csv"
    bad.write_text("TIMESTAMP,ContextTokens,GeneratedTokens\n2024-01-01 00:00:00,1,oops\n")
    r = runner.invoke(app, ["simulate", "--trace", str(bad), "--format", "azure", "--json"])
    assert r.exit_code == 2
    assert r.stdout == ""
    assert f"{bad}:2" in r.stderr and "Traceback" not in r.stderr
    r = runner.invoke(
        app,
        [
            "simulate",
            "--trace",
            str(synth(tmp_path)),
            "--format",
            "synthetic",
            "--scheduler",
            "lifo",
        ],
    )
    assert r.exit_code == 2 and "lifo" in r.stderr
    cfg = tmp_path / "c.json"
    cfg.write_text('{"kv_blocks": -1}')
    r = runner.invoke(
        app,
        [
            "simulate",
            "--trace",
            str(synth(tmp_path)),
            "--format",
            "synthetic",
            "--config",
            str(cfg),
        ],
    )
    assert r.exit_code == 2 and "kv_blocks" in r.stderr


def test_compare_table_json_and_plots(tmp_path):
    out = tmp_path / "plots"
    r = runner.invoke(
        app,
        [
            "compare",
            "--trace",
            str(synth(tmp_path, n=150)),
            "--format",
            "synthetic",
            "--loads",
            "0.5,0.9",
            "--schedulers",
            "fcfs,srpt,priced",
            "--out",
            str(out),
            "--json",
        ],
    )
    assert r.exit_code == 0, r.output
    data = json.loads(r.stdout)
    assert len(data["rows"]) == 6 and data["saturation_req_s"] > 0
    for p in data["plots"]:
        with open(p, "rb") as fh:
            assert fh.read(8) == b"\x89PNG\r\n\x1a\n"
    assert sorted(x.name for x in out.iterdir()) == [
        "delay_cost_vs_load.png",
        "latency_vs_load.png",
    ]
    r = runner.invoke(
        app, ["compare", "--trace", str(synth(tmp_path)), "--format", "synthetic", "--loads", "x"]
    )
    assert r.exit_code == 2


def test_simulate_writes_shadow_prices_to_ledger(tmp_path):
    from margin.ledger.store import Ledger

    cfg = tmp_path / "c.json"
    cfg.write_text('{"replicas": 1, "kv_blocks": 300, "price_every": 10}')
    db = tmp_path / "l.db"
    r = runner.invoke(
        app,
        [
            "simulate",
            "--trace",
            str(synth(tmp_path, n=200, rate=20.0)),
            "--format",
            "synthetic",
            "--config",
            str(cfg),
            "--ledger",
            str(db),
            "--json",
        ],
    )
    assert r.exit_code == 0, r.output
    with Ledger(db) as led:
        recs = list(led.records(layer="serving"))
    assert recs and all(x.attributes["kind"] == "shadow_prices" for x in recs)


def _sim(args):
    r = runner.invoke(app, ["simulate", *args, "--format", "synthetic", "--json"])
    assert r.exit_code == 0, r.output
    return json.loads(r.stdout)


def test_simulate_speculation_options(tmp_path):
    trace = str(synth(tmp_path, n=60, rate=0.5))
    off = _sim(["--trace", trace])
    on = _sim(["--trace", trace, "--spec-gamma", "4", "--spec-alpha", "0.8"])
    assert on["tpot"]["mean"] < 0.7 * off["tpot"]["mean"]
    bad = runner.invoke(
        app, ["simulate", "--trace", trace, "--format", "synthetic", "--spec-alpha", "2"]
    )
    assert bad.exit_code == 2 and "spec_alpha" in bad.output


def test_simulate_preset_and_config_override(tmp_path):
    trace = str(synth(tmp_path, n=150, rate=8.0))
    pool = _sim(["--trace", trace])
    single = _sim(["--trace", trace, "--preset", "single-engine"])
    assert single["ttft"]["mean"] > pool["ttft"]["mean"]
    cfg = tmp_path / "c.json"
    cfg.write_text(json.dumps({"replicas": 4}))
    back = _sim(["--trace", trace, "--preset", "single-engine", "--config", str(cfg)])
    assert back["e2e"] == pool["e2e"]
    bad = runner.invoke(
        app, ["simulate", "--trace", trace, "--format", "synthetic", "--preset", "nope"]
    )
    assert bad.exit_code == 2 and "preset" in bad.output
