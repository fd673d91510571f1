"""Real-data evidence: expensive failures, hard caps, Aider's retry value."""

from __future__ import annotations

from pathlib import Path

import pytest

from margin.agent.evidence import aider_retry_evidence, swe_effi_evidence, swe_pro_evidence
from margin.core.prices import InputError


def test_swe_pro_expensive_failures_and_caps(shared_data) -> None:  # type: ignore[no-untyped-def]
    e = swe_pro_evidence(shared_data("agent/swebench_pro_sweagent_gpt5_sonnet45_per_instance.csv"))
    for model in ("gpt5", "claude"):
        r = e[model]
        assert r["cost_failed_usd"] > r["cost_resolved_usd"]  # failures cost more
        q = r["resolve_by_cost_quintile"]
        assert q[-1] == min(q)  # the costliest fifth resolves least
        caps = r["hard_caps"]
        # a tighter cap cuts more resolved tasks than it saves spend share
        assert (
            caps["p50"]["resolved_lost"]
            > caps["p75"]["resolved_lost"]
            > caps["p90"]["resolved_lost"]
        )
        assert caps["p75"]["resolved_lost"] > caps["p75"]["spend_saved"]
    assert e["gpt5"]["resolve_rate"] == pytest.approx(265 / 729, abs=1e-9)


def test_swe_effi_failed_tasks_burn_more_tokens(shared_data) -> None:  # type: ignore[no-untyped-def]
    e = swe_effi_evidence(shared_data("agent/swe_effi_per_instance.csv"))
    assert set(e) == {"agentless", "agentless-mini", "auto-code-rover", "openhands", "swe-agent"}
    worse = [s for s, r in e.items() if r["tokens_failed"] > r["tokens_resolved"]]
    assert len(worse) >= 4


def test_aider_retry_is_worth_points(shared_data) -> None:  # type: ignore[no-untyped-def]
    a = aider_retry_evidence(shared_data("agent/aider_polyglot_leaderboard_flat.csv"))
    assert a["models"] > 50 and a["mean_gain_points"] > 10
    for row in a["per_model"]:
        assert row["pass_rate_2"] >= row["pass_rate_1"]


def test_malformed_rows_name_file_and_line(tmp_path: Path) -> None:
    p = tmp_path / "x.csv"
    p.write_text("model,resolved,instance_cost_usd\ngpt5,True,1.0\ngpt5,False,abc\n")
    with pytest.raises(InputError, match=r"x\.csv: line 3: field 'instance_cost_usd'"):
        swe_pro_evidence(p)
    p.write_text("model,pass_rate_1\nm,1\n")
    with pytest.raises(InputError, match=r"line 1: missing columns \['pass_rate_2'\]"):
        aider_retry_evidence(p)
