from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from margin.cli.capital import cache_app, rl_app

runner = CliRunner()


def _trace(tmp_path: Path, n: int = 60) -> Path:
    """A Mooncake-format trace the project has never seen: 6 conversations of growing turns."""
    lines = []
    nxt = 1000
    convs: dict[int, list[int]] = {}
    for i in range(n):
        c = i % 6
        blocks = convs.setdefault(c, [0])
        blocks = [*blocks, nxt, nxt + 1]
        nxt += 2
        convs[c] = blocks
        lines.append(
            json.dumps(
                {
                    "timestamp": i * 250,
                    "input_length": 512 * len(blocks) - 7,
                    "output_length": 20,
                    "hash_ids": blocks,
                }
            )
        )
    p = tmp_path / "unseen.jsonl"
    p.write_text("\n".join(lines) + "\n")
    return p


@pytest.mark.parametrize("policy", ["lru", "lfu", "priced"])
def test_cache_replay_json_shape(tmp_path: Path, policy: str) -> None:
    p = _trace(tmp_path)
    res = runner.invoke(
        cache_app,
        [
            "replay",
            "--trace",
            str(p),
            "--format",
            "mooncake",
            "--capacity-blocks",
            "40",
            "--policy",
            policy,
            "--json",
        ],
    )
    assert res.exit_code == 0, res.output
    out = json.loads(res.stdout)
    assert list(out) == [
        "hit_rate",
        "hit_rate_by_value",
        "value_saved",
        "evictions",
        "misuse_events",
        "depreciation",
    ]
    assert 0 < out["hit_rate"] < 1
    assert out["evictions"] > 0 and out["depreciation"] > 0
    assert all(0 <= v <= 1 for v in out["hit_rate_by_value"].values())


def test_cache_replay_table(tmp_path: Path) -> None:
    res = runner.invoke(
        cache_app, ["replay", "--trace", str(_trace(tmp_path)), "--capacity-blocks", "40"]
    )
    assert res.exit_code == 0 and "hit rate" in res.stdout


def test_cache_replay_bad_inputs_exit_2(tmp_path: Path) -> None:
    bad = tmp_path / "bad.jsonl"
    bad.write_text(
        '{"timestamp": 0, "input_length": 5, "output_length": 1, "hash_ids": [1]}\n'
        '{"timestamp": 1, "input_length": 5\n'
    )
    res = runner.invoke(
        cache_app, ["replay", "--trace", str(bad), "--capacity-blocks", "4", "--json"]
    )
    assert res.exit_code == 2
    assert "line 2" in res.stderr and "Traceback" not in res.output
    assert res.stdout == ""
    for args in (["--policy", "fifo"], ["--format", "csv"], ["--capacity-blocks", "0"]):
        argv = ["replay", "--trace", str(_trace(tmp_path)), "--capacity-blocks", "4", *args]
        r = runner.invoke(cache_app, argv)
        assert r.exit_code == 2 and r.stderr.startswith("error:")


def test_rl_budget_json(tmp_path: Path) -> None:
    res = runner.invoke(rl_app, ["budget", "--json"])
    assert res.exit_code == 0
    out = json.loads(res.stdout)
    assert set(out["allocation"]) == {"rollout", "verifier", "update"}
    mg = list(out["marginal_gain_per_token"].values())
    assert max(mg) / min(mg) == pytest.approx(1.0, abs=1e-4)
    for use, tok in out["closed_form"].items():
        assert out["allocation"][use] == pytest.approx(tok, rel=1e-4)
    cfg = tmp_path / "m.yaml"
    cfg.write_text("technology: ces\nkappa: [1, 1, 1]\nbudget: 50\n")
    res = runner.invoke(rl_app, ["budget", "--config", str(cfg), "--json"])
    assert res.exit_code == 0 and "closed_form" not in json.loads(res.stdout)


def test_rl_bad_config_exit_2(tmp_path: Path) -> None:
    cfg = tmp_path / "m.json"
    cfg.write_text('{"kappa": [1, 2],\n "budget": 5}')
    res = runner.invoke(rl_app, ["budget", "--config", str(cfg), "--json"])
    assert res.exit_code == 2 and "kappa" in res.stderr
    cfg.write_text('{"kappa": [1, 2, 3],\n "budget": }')
    res = runner.invoke(rl_app, ["budget", "--config", str(cfg)])
    assert res.exit_code == 2 and "line 2" in res.stderr
    res = runner.invoke(rl_app, ["simulate", "--policy", "nope", "--json"])
    assert res.exit_code == 2 and "unknown policy" in res.stderr


def test_rl_simulate_json() -> None:
    res = runner.invoke(
        rl_app,
        ["simulate", "--policy", "marginal", "--policy", "fixed-equal", "--steps", "120", "--json"],
    )
    assert res.exit_code == 0
    out = json.loads(res.stdout)
    assert set(out["policies"]) == {"marginal", "fixed-equal"}
    assert len(out["policies"]["marginal"]["capability"]) == 121
    m, f = out["policies"]["marginal"], out["policies"]["fixed-equal"]
    assert m["tokens_to_target"] < (f["tokens_to_target"] or float("inf"))
    assert out["staleness"]["rule_dominates"] is True


@pytest.mark.data
def test_cache_replay_on_shared_trace(shared_data) -> None:  # type: ignore[no-untyped-def]
    p = shared_data("serving/mooncake_conversation_trace.jsonl")
    res = runner.invoke(
        cache_app,
        ["replay", "--trace", str(p), "--capacity-blocks", "16384", "--policy", "lru", "--json"],
    )
    assert res.exit_code == 0
    out = json.loads(res.stdout)
    assert out["hit_rate"] == pytest.approx(0.27, abs=0.01)  # LRU ~26-27% at 16k blocks
