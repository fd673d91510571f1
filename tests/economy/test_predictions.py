"""The three predictions of Sec. 4 on the shared data (quick mode), their plots and CLI."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st
from typer.testing import CliRunner

from margin.cli.predictions import app
from margin.core.prices import InputError
from margin.economy.predictions import (
    DATA_FILES,
    PLOT_FILES,
    QualityBarRouter,
    _regret_table,
    _windows,
    congestion_prediction,
)
from margin.routing.data import RoutingDataset

runner = CliRunner()
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
_RUN: dict[str, Any] = {}


def _data_root(shared_data: Any) -> Path:
    paths = [shared_data(rel) for files in DATA_FILES.values() for rel in files]
    return Path(str(paths[0])[: -len(DATA_FILES["verifier"][0])])


@pytest.fixture
def quick_run(shared_data: Any, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """One ``margin predictions run --quick --json`` on the real data, shared by the tests."""
    root = _data_root(shared_data)
    if "result" not in _RUN:
        out = tmp_path_factory.mktemp("predictions") / "plots"
        res = runner.invoke(
            app, ["run", "--out", str(out), "--data-dir", str(root), "--quick", "--json"]
        )
        assert res.exit_code == 0, res.output
        _RUN["result"] = json.loads(res.stdout)
        _RUN["out"] = out
    return dict(_RUN)


# ----------------------------------------------------------------------- the predictions


def test_prediction1_risk_falls_to_the_optimum_and_underverifying_costs(quick_run):
    r = quick_run["result"]["verifier"]
    low, high = r["classes"]["low"], r["classes"]["high"]
    for c in (low, high):
        b = np.asarray(c["budgets"])
        risk = np.asarray(c["realized_risk"])
        u = np.asarray(c["utility"])
        below = b <= c["optimal_budget"]
        assert c["risk_monotone_to_optimum"]
        assert np.all(np.diff(risk[below]) <= 1e-12) and risk[0] > 0.5 > 10 * risk[below][-1]
        # utility rises up to T_v*: the optimum beats no tests and half the optimum
        i_star = int(np.flatnonzero(b == c["optimal_budget"])[0])
        i_half = int(np.argmin(np.abs(b - c["optimal_budget"] / 2)))
        assert u[i_star] > u[i_half] > u[0]
        # T_v* is where the sweep peaks, up to sampling noise (4 s.e.)
        se = np.asarray(c["utility_se"])
        assert u.max() - u[i_star] <= 4 * math.hypot(se[i_star], se[int(np.argmax(u))]) + 0.5
    assert high["optimal_budget"] > low["optimal_budget"]
    # an agent verifying at the low-risk optimum reliably under-performs on high-risk tasks
    under = r["under_verification"]["low_risk_budget"]
    assert under["low"]["shortfall_usd"] == 0.0
    assert under["high"]["shortfall_usd"] > 1.0 and under["high"]["z"] > 3.0
    no_tests = r["under_verification"]["no_tests"]
    assert no_tests["high"]["shortfall_usd"] > 10 * no_tests["low"]["shortfall_usd"] > 0
    cal = r["calibration"]
    assert 0.3 < cal["p_sat_swe_bench_pro"] < 0.45 and cal["aider_retry_gain_points"] > 0


def test_prediction2_cost_minimizer_regret_rises_with_v_and_exceeds_eq4(quick_run):
    t = quick_run["result"]["router_regret"]["routerbench"]
    cm, eq4 = t["routers"]["cost_min"], t["routers"]["eq4"]
    reg = np.asarray(cm["mean_regret"], dtype=float)
    assert np.all(np.diff(reg) > 0)
    assert cm["mean_regret"][-1] > eq4["mean_regret"][-1]
    assert cm["total_regret"] > eq4["total_regret"]
    # concentrated on the long tail: the top tier is a few % of requests, most of the regret
    assert t["request_share"][-1] < 0.05 and cm["regret_share"][-1] > 0.3
    assert sum(t["requests"]) == quick_run["result"]["router_regret"]["split"]["stream"]
    assert quick_run["result"]["router_regret"]["split"]["leaked_dropped"] >= 0


def test_prediction3_fcfs_fingerprint_vanishes_under_pricing(quick_run):
    s = quick_run["result"]["externality"]["schedulers"]
    fcfs, priced = s["fcfs"], s["priced"]
    assert fcfs["slope_s_per_mtok"] > 10 * max(priced["slope_s_per_mtok"], 0.0)
    assert fcfs["corr"] > 0.3
    assert fcfs["busy_minus_quiet_ttft_s"] > 1.0 > priced["busy_minus_quiet_ttft_s"]
    assert priced["short_ttft"]["mean"] < fcfs["short_ttft"]["mean"]
    # the short-context tenant is never the one priced out
    assert priced["rejected"]["short-context"] == 0 and fcfs["rejected"]["long-context"] == 0
    # per-window points reproduce the fingerprint's slope
    x, y = np.asarray(fcfs["long_volume_mtok"]), np.asarray(fcfs["short_ttft_s"])
    assert np.polyfit(x, y, 1)[0] == pytest.approx(fcfs["slope_s_per_mtok"], rel=1e-9)


def test_headline_matches_details(quick_run):
    r = quick_run["result"]
    h = r["headline"]
    assert (
        h["verifier"]["optimal_budget_high"] == r["verifier"]["classes"]["high"]["optimal_budget"]
    )
    rb = r["router_regret"]["routerbench"]
    assert (
        h["router_regret"]["cost_min_top_tier_regret_usd"]
        == rb["routers"]["cost_min"]["mean_regret"][-1]
    )
    ext = r["externality"]["schedulers"]
    assert h["externality"]["priced_corr"] == ext["priced"]["corr"]
    json.dumps(r, allow_nan=False)


def test_plots_are_valid_pngs(quick_run):
    import matplotlib.image as mpimg

    out = quick_run["out"]
    assert sorted(p.name for p in out.iterdir()) == sorted(PLOT_FILES.values())
    for name, file in PLOT_FILES.items():
        p = out / file
        assert quick_run["result"]["plots"][name] == str(p)
        assert p.read_bytes()[:8] == PNG_MAGIC and p.stat().st_size > 20_000
        img = mpimg.imread(p)
        assert img.shape[0] > 400 and img.shape[1] > 1000 and img.std() > 0.05


# ----------------------------------------------------------------------- CLI


def test_cli_json_shape(quick_run):
    r = quick_run["result"]
    assert set(r) == {
        "quick",
        "seed",
        "data_dir",
        "verifier",
        "router_regret",
        "externality",
        "headline",
        "plots",
    }
    assert r["quick"] is True and r["seed"] == 0
    assert set(r["headline"]) == {"verifier", "router_regret", "externality"}
    assert set(r["headline"]["verifier"]) == {
        "optimal_budget_low",
        "optimal_budget_high",
        "risk_at_zero_high",
        "risk_at_optimum_high",
        "shortfall_high_at_low_budget_usd",
        "shortfall_z",
    }
    assert set(r["headline"]["externality"]) == {
        "fcfs_slope_s_per_mtok",
        "priced_slope_s_per_mtok",
        "fcfs_corr",
        "priced_corr",
        "fcfs_short_ttft_mean_s",
        "priced_short_ttft_mean_s",
    }
    assert "economy" not in r["router_regret"]  # quick mode skips the economy's ledger
    assert r["headline"]["router_regret"]["economy_siloed_top_regret_usd"] is None


def test_cli_bad_input_exits_2(tmp_path):
    res = runner.invoke(app, ["run", "--out", str(tmp_path / "o"), "--data-dir", "/nonexistent"])
    assert res.exit_code == 2
    assert "does not exist" in res.stderr and len(res.stderr.strip().splitlines()) == 1
    # a data folder without the files: one line naming the missing file, no PNG written
    (tmp_path / "data" / "agent").mkdir(parents=True)
    out = tmp_path / "out"
    res = runner.invoke(app, ["run", "--out", str(out), "--data-dir", str(tmp_path / "data")])
    assert res.exit_code == 2 and "swebench_pro" in res.stderr
    assert "Traceback" not in res.output + res.stderr
    assert not any(out.glob("*.png"))
    # --out is a file
    f = tmp_path / "file"
    f.write_text("x")
    res = runner.invoke(app, ["run", "--out", str(f), "--data-dir", str(tmp_path / "data")])
    assert res.exit_code == 2 and "not a folder" in res.stderr


def test_library_bad_input(tmp_path, shared_data):
    root = _data_root(shared_data)
    with pytest.raises(InputError, match="load"):
        congestion_prediction(root, load=0.0)
    with pytest.raises(InputError, match="max_requests"):
        congestion_prediction(root, max_requests=5)


# ----------------------------------------------------------------------- pieces


def test_windows_reproduce_the_fingerprint(shared_data):
    from margin.serving.metrics import externality_fingerprint
    from margin.serving.schedulers import FCFS
    from margin.serving.simulator import ServingConfig, Simulator
    from margin.serving.traces import load_azure, tag_context_tenants

    t = tag_context_tenants(load_azure(shared_data(DATA_FILES["externality"][0])).head(1500))
    res = Simulator(ServingConfig(replicas=1)).run(t.scaled(2.0), FCFS())
    fp = externality_fingerprint(res, window_s=20.0)
    start, vol, ttft = _windows(res, 20.0)
    assert vol.size == fp["windows"] and np.all(np.diff(start) > 0)
    assert np.polyfit(vol, ttft, 1)[0] == pytest.approx(fp["slope_s_per_mtok"], rel=1e-9)
    assert np.corrcoef(vol, ttft)[0, 1] == pytest.approx(fp["corr"], rel=1e-9)


def _dataset(q: np.ndarray, c: np.ndarray, tasks: list[str]) -> RoutingDataset:
    n, m = q.shape
    return RoutingDataset.from_arrays(
        [f"p{k}" for k in range(n)], [f"m{j}" for j in range(m)], q, c, tasks=tasks
    )


def test_quality_bar_router_rules():
    q = np.array([[1, 1, 1], [0, 1, 1], [0, 0, 1], [0, 0, 1]], dtype=float)
    c = np.tile([0.001, 0.002, 0.01], (4, 1))
    d = _dataset(q, c, ["a", "a", "b", "b"])
    r = QualityBarRouter(bar=0.5).fit(d)
    assert r.task_choice_ == {"a": 0, "b": 2}  # on a, m0 scores 0.5: the cheapest at the bar
    r = QualityBarRouter(bar=0.6).fit(d)
    assert r.task_choice_["a"] == 1 and r.task_choice_["b"] == 2
    # unseen task: the pooled rule; a bar nobody meets: the best model
    other = _dataset(q[:1], c[:1], ["zzz"])
    assert r.route(other, 1.0).choice.tolist() == [r.default_]
    assert QualityBarRouter(bar=1.0).fit(_dataset(q[1:3], c[1:3], ["a", "a"])).default_ == 2
    with pytest.raises(InputError, match="bar"):
        QualityBarRouter(bar=1.5).fit(d)
    wrong = RoutingDataset.from_arrays(["x"], ["u", "v", "w"], [[1, 1, 1]], [[1.0, 1.0, 1.0]])
    with pytest.raises(InputError, match="models"):
        r.route(wrong, 1.0)


@settings(max_examples=60, deadline=None)
@given(
    q=st.lists(st.lists(st.integers(0, 1), min_size=4, max_size=4), min_size=3, max_size=12),
    cost=st.lists(st.floats(1e-4, 1.0), min_size=4, max_size=4),
    bars=st.tuples(st.floats(0.0, 1.0), st.floats(0.0, 1.0)),
)
def test_quality_bar_router_monotone_in_the_bar(q, cost, bars):
    """A stricter bar never buys a cheaper model nor one of lower training quality (when
    both bars are met), and the choice always meets the bar when any model does."""
    qa = np.asarray(q, dtype=float)
    d = _dataset(qa, np.tile(cost, (qa.shape[0], 1)), ["t"] * qa.shape[0])
    lo, hi = sorted(bars)
    a = QualityBarRouter(bar=lo).fit(d).task_choice_["t"]
    b = QualityBarRouter(bar=hi).fit(d).task_choice_["t"]
    mq = qa.mean(axis=0)
    if (mq >= hi).any():
        assert mq[b] >= hi and cost[b] >= cost[a]
    if (mq >= lo).any():
        assert mq[a] >= lo


@settings(max_examples=60, deadline=None)
@given(
    v=st.lists(st.floats(1e-5, 1e3), min_size=1, max_size=50),
    seed=st.integers(0, 1000),
)
def test_regret_table_conserves_requests_and_regret(v, seed):
    va = np.asarray(v)
    r = np.random.default_rng(seed).random(va.size)
    t = _regret_table(va, {"x": r})
    assert sum(t["requests"]) == va.size
    assert sum(t["request_share"]) == pytest.approx(1.0)
    assert sum(t["routers"]["x"]["regret_share"]) == pytest.approx(1.0)
    assert t["routers"]["x"]["total_regret"] == pytest.approx(float(r.sum()))


def test_economy_ledger_regret_table(shared_data):
    """The economy's routing records, tiered by V: well-formed and conserving regret."""
    from margin.economy.predictions import router_regret_prediction

    r = router_regret_prediction(
        _data_root(shared_data), repeats=1, economy=True, economy_tasks=16
    )["economy"]
    assert r["tasks"] == 16 and r["tiers"] == ["bottom 50% of V", "50–90%", "top 10%"]
    assert r["tier_upper_usd"] == sorted(r["tier_upper_usd"])
    for regime in ("siloed", "shared"):
        x = r["routers"][regime]
        assert all(m >= 0 for m in x["mean_regret"]) and x["total_regret"] >= 0
        if x["total_regret"] > 0:
            assert sum(x["regret_share"]) == pytest.approx(1.0)
