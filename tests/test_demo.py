"""The main job: worked example and price discovery on the shared RouterBench tables."""

from __future__ import annotations

import io
from collections.abc import Callable
from pathlib import Path

import pytest
from rich.console import Console
from typer.testing import CliRunner

from margin.cli.app import app
from margin.cli.demo import run_demo


def test_demo_reproduces_prices(shared_data: Callable[[str], Path]) -> None:
    folder = shared_data("routing/routerbench/mbpp_train.csv").parents[2]
    console = Console(file=io.StringIO(), width=120)
    out = run_demo(console, folder, seed=0, intervals=300)
    assert out["worked_example"] == {"v_star": 20.0, "v_star_with_risk": 10.0}
    d = out["discovery"]
    mu_c, _, mu_r = d["mu"]
    assert mu_c > 0 and mu_r > 0  # both budgets bind
    assert d["controller_mu"][1] == 0.0  # no latency budget: its price stays 0
    assert d["controller_mu"][0] == pytest.approx(mu_c, rel=0.1)
    assert d["controller_mu"][2] == pytest.approx(mu_r, rel=0.1)
    text = console.file.getvalue()  # type: ignore[attr-defined]
    assert "Crossover V* = (c_f − c_c)/(q_f − q_c) = 20" in text


def test_demo_without_data_exits_2(tmp_path: Path) -> None:
    res = CliRunner().invoke(app, ["demo", "--data-dir", str(tmp_path)])
    assert res.exit_code == 2
    assert "RouterBench data not found" in res.stderr


def test_demo_economy_writes_ledger_and_diagnoses(
    shared_data: Callable[[str], Path], tmp_path: Path
) -> None:
    from margin.economy.config import EconomyConfig
    from margin.ledger.store import Ledger

    folder = shared_data("routing/routerbench/mbpp_train.csv").parents[2]
    small = EconomyConfig(
        n_coding=8, horizon_s=120.0, interval_s=60.0, chat_rate=0.2, long_rate=0.02, seed=2
    )
    console = Console(file=io.StringIO(), width=160)
    out = run_demo(console, folder, out_dir=tmp_path, intervals=50, economy=small)
    eco = out["economy"]
    assert eco["welfare"]["shared"] > eco["welfare"]["siloed"]
    with Ledger(tmp_path / "ledger.db") as led:
        assert len(led) == eco["records"] > 0
    assert sum(eco["findings"]["siloed"].values()) > 0
    assert sum(eco["findings"]["shared"].values()) == 0
    page = (tmp_path / "report.html").read_text()
    assert page.startswith("<!DOCTYPE html>") and "siloed" in page and "shared" in page
    assert "Failure modes of Table 2" in console.file.getvalue()  # type: ignore[attr-defined]
