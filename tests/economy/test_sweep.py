"""Sweeps: grid expansion, validation, identical results on every backend, Parquet, CLI."""

from __future__ import annotations

import itertools
import json
import math
import sys
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import given, settings, strategies as st
from typer.testing import CliRunner

from margin.cli.sweep import app
from margin.core.prices import InputError
from margin.economy import REGIMES, EconomyConfig, run_regime
from margin.economy.stream import draw_stream
from margin.economy.sweep import (
    BACKENDS,
    METRICS,
    SweepSpec,
    load_sweep,
    parse_regime,
    run_sweep,
    summarize_sweep,
)

#: The engine doctest's tiny economy (a few seconds per shared-price run).
TINY: dict[str, Any] = {
    "n_coding": 6,
    "horizon_s": 120.0,
    "interval_s": 60.0,
    "chat_rate": 0.2,
    "long_rate": 0.02,
}
SPEC: dict[str, Any] = {
    "base": TINY,
    "grid": {"seed": [2], "latency_price_coding": [0.005, 0.02]},
    "regimes": ["siloed", "shared"],
    "regret": False,
}
LAYERS = ("routing", "agent", "serving", "capital")

runner = CliRunner()


def _write(tmp_path: Path, data: Any, name: str = "sweep.json") -> Path:
    p = tmp_path / name
    if name.endswith((".yaml", ".yml")):
        import yaml

        p.write_text(yaml.safe_dump(data))
    else:
        p.write_text(json.dumps(data))
    return p


@pytest.fixture(scope="module")
def serial_table() -> pa.Table:
    return run_sweep(SPEC, backend="serial")


# --------------------------------------------------------------------------- expansion


def test_grid_expands_point_major_with_validated_values() -> None:
    spec = SweepSpec.from_dict(
        {
            "base": {"n_coding": 6},
            "grid": {"seed": [0, 1], "risk_price": [1, 2.5], "replicas": [2, 4]},
            "regimes": ["siloed", "siloed+serving", "shared"],
        }
    )
    jobs = spec.jobs()
    assert (spec.n_points, spec.n_jobs, len(jobs)) == (8, 24, 24)
    assert [j.job for j in jobs] == list(range(24))
    # point-major: each point's regimes are consecutive and share one config
    assert [j.regime for j in jobs[:3]] == ["siloed", "siloed+serving", "shared"]
    assert jobs[0].config is jobs[2].config and jobs[0].point == jobs[2].point == 0
    # first axis slowest, values validated (risk_price 1 -> 1.0)
    assert jobs[3].params == (("seed", 0), ("risk_price", 1.0), ("replicas", 4))
    assert jobs[-1].params == (("seed", 1), ("risk_price", 2.5), ("replicas", 4))
    assert isinstance(jobs[0].params[1][1], float)
    assert all(j.config.n_coding == 6 for j in jobs)
    assert jobs[-1].config.risk_price == 2.5 and jobs[-1].config.replicas == 4


@settings(max_examples=25, deadline=None)
@given(
    sizes=st.lists(st.integers(1, 4), min_size=0, max_size=3),
    n_regimes=st.integers(1, 3),
)
def test_grid_is_the_cartesian_product(sizes: list[int], n_regimes: int) -> None:
    axes = ("seed", "latency_price_chat", "long_value")[: len(sizes)]
    grid = {
        a: [k + (0 if a == "seed" else 0.5) for k in range(n)]
        for a, n in zip(axes, sizes, strict=True)
    }
    regimes = ["siloed", "shared", "siloed+agent"][:n_regimes]
    spec = SweepSpec.from_dict({"grid": grid, "regimes": regimes})
    jobs = spec.jobs()
    assert len(jobs) == spec.n_jobs == len(regimes) * math.prod(sizes)
    combos = [(tuple(v for _, v in j.params), j.regime) for j in jobs]
    assert len(set(combos)) == len(combos)  # every combination exactly once
    want = {
        (tuple(float(x) if a != "seed" else x for a, x in zip(axes, c, strict=True)), r)
        for c in itertools.product(*grid.values())
        for r in regimes
    }
    assert set(combos) == want


def test_parse_regime_and_swaps() -> None:
    assert parse_regime("shared") is REGIMES["shared"]
    r = parse_regime("siloed+capital")
    assert (r.name, r.capital, r.routing) == ("siloed+capital", "shared", "siloed")
    with pytest.raises(InputError, match="unknown regime 'siloed\\+cache'"):
        parse_regime("siloed+cache")


@pytest.mark.parametrize(
    ("data", "needle"),
    [
        ({"grids": {}}, "unknown field 'grids'"),
        ({"grid": {"seeds": [0, 1]}}, "grid: unknown field 'seeds'"),
        ({"base": {"n_codng": 3}}, "base: unknown field 'n_codng'"),
        ({"grid": {"tiers": [[]]}}, "field 'tiers' cannot be a grid axis"),
        ({"grid": {"seed": 3}}, "field 'seed' must be a list"),
        ({"grid": {"seed": []}}, "field 'seed' must be a non-empty list"),
        ({"grid": {"seed": [1, 1]}}, "field 'seed' has duplicate values"),
        ({"base": {"seed": 1}, "grid": {"seed": [1, 2]}}, "'seed' is both in base and grid"),
        ({"regimes": ["siloed", "central"]}, "field 'regimes': unknown regime 'central'"),
        ({"regimes": "shared"}, "field 'regimes' must be a list"),
        ({"regret": "yes"}, "field 'regret' must be true or false"),
        ({"grid": {"seed": [0, 1, 2]}, "max_jobs": 5}, "field 'max_jobs'"),
        ({"grid": {"seed": [0, 1]}, "max_jobs": 0}, "field 'max_jobs' must be >= 1"),
        (
            {"grid": {"horizon_s": [120.0, 30.0]}},
            "grid point 1 (horizon_s=30.0): field 'interval_s' must be <= 'horizon_s'",
        ),
        ({"grid": {"n_coding": [4, 2.5]}}, "field 'n_coding' must be an integer"),
        ([1, 2], "expected an object"),
    ],
)
@pytest.mark.parametrize("ext", ["json", "yaml"])
def test_validation_errors_name_file_and_field(
    tmp_path: Path, data: Any, needle: str, ext: str
) -> None:
    p = _write(tmp_path, data, f"bad.{ext}")
    with pytest.raises(InputError) as e:
        load_sweep(p)
    assert str(p) in str(e.value) and needle in str(e.value)


def test_max_jobs_counts_regimes(tmp_path: Path) -> None:
    data = {"grid": {"seed": [0, 1, 2]}, "regimes": ["siloed", "shared"], "max_jobs": 5}
    with pytest.raises(InputError, match="3 points × 2 regimes = 6 jobs"):
        load_sweep(_write(tmp_path, data))
    assert load_sweep(_write(tmp_path, {**data, "max_jobs": 6})).n_jobs == 6


def test_syntax_errors_and_missing_file(tmp_path: Path) -> None:
    p = tmp_path / "s.json"
    p.write_text('{"grid": {"seed": [0,\n }')
    with pytest.raises(InputError, match=r"s\.json:2: invalid JSON"):
        load_sweep(p)
    with pytest.raises(InputError, match="not found"):
        load_sweep(tmp_path / "absent.yaml")


def test_bad_backend_and_workers() -> None:
    with pytest.raises(InputError, match="unknown backend 'dask'"):
        run_sweep(SPEC, backend="dask")
    with pytest.raises(InputError, match="workers must be >= 1"):
        run_sweep(SPEC, backend="serial", workers=0)


def test_missing_ray_is_one_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "ray", None)  # import ray -> ImportError
    with pytest.raises(InputError, match=r"install margin\[ray\]"):
        BACKENDS["ray"].map([{}], 1, None)


# --------------------------------------------------------------------------- running


def test_rows_are_the_engine_results(serial_table: pa.Table) -> None:
    t = serial_table
    assert t.num_rows == 4
    assert t.column_names[:5] == ["job", "point", "seed", "latency_price_coding", "regime"]
    assert t["regime"].to_pylist() == ["siloed", "shared"] * 2
    assert t["latency_price_coding"].to_pylist() == [0.005, 0.005, 0.02, 0.02]
    for layer in ("total", *LAYERS):
        for m in METRICS:
            assert f"{layer}_{m}" in t.column_names
    # each row is exactly run_regime on the grid point's stream
    cfg = EconomyConfig.from_dict({**TINY, "seed": 2, "latency_price_coding": 0.02})
    direct = run_regime(cfg, draw_stream(cfg), REGIMES["siloed"], regret=False)
    row = t.slice(2, 1).to_pylist()[0]
    assert row["total_welfare"] == direct.total.welfare
    assert row["routing_cost"] == direct.layers["routing"].cost
    assert row["calls"] == direct.calls and row["success_rate"] == direct.success_rate
    # the per-layer split adds up to the total; a higher delay price lowers the welfare of
    # the siloed regime, whose decisions ignore it (the shared regime re-optimizes, so its
    # *realized* welfare on a 6-task stream need not fall)
    for r in t.to_pylist():
        assert sum(r[f"{x}_welfare"] for x in LAYERS) == pytest.approx(r["total_welfare"])
        assert r["wall_s"] > 0
    w = t["total_welfare"].to_pylist()
    assert w[2] < w[0]


def test_backends_give_identical_tables(serial_table: pa.Table) -> None:
    """Serial, a 2-process spawn pool and a local Ray instance: the same numbers."""
    pytest.importorskip("ray")
    ticks: list[tuple[int, int]] = []
    proc = run_sweep(SPEC, backend="process", workers=2, progress=lambda d, n: ticks.append((d, n)))
    ray_t = run_sweep(SPEC, backend="ray", workers=2)
    base = serial_table.drop_columns(["wall_s"])
    assert proc.drop_columns(["wall_s"]).equals(base)
    assert ray_t.drop_columns(["wall_s"]).equals(base)
    assert ticks[-1] == (4, 4) and [d for d, _ in ticks] == [1, 2, 3, 4]
    import ray

    assert not ray.is_initialized()  # shut down the instance it started


def test_parquet_round_trip(tmp_path: Path, serial_table: pa.Table) -> None:
    p = tmp_path / "r.parquet"
    pq.write_table(serial_table, p)
    back = pq.read_table(p)
    assert back.equals(serial_table)
    spec = json.loads(back.schema.metadata[b"margin.sweep"])
    assert spec["grid"] == SPEC["grid"] and spec["regimes"] == SPEC["regimes"]
    assert summarize_sweep(back) == summarize_sweep(serial_table)


def test_summary_matches_the_rows(serial_table: pa.Table) -> None:
    s = summarize_sweep(serial_table)
    w = serial_table["total_welfare"].to_pylist()
    assert s["welfare_by_regime"]["siloed"] == pytest.approx((w[0] + w[2]) / 2)
    assert s["welfare_by_regime"]["shared"] == pytest.approx((w[1] + w[3]) / 2)
    assert s["first_axis"] == "latency_price_coding"
    assert s["welfare_by_axis"][2] == {"value": 0.02, "regime": "siloed", "welfare": w[2]}
    (g,) = s["gain_by_seed"]
    assert g["seed"] == 2 and g["points"] == 2
    assert g["gain"] == pytest.approx(((w[1] - w[0]) + (w[3] - w[2])) / 2)
    assert g["shared_wins"] == (w[1] > w[0]) + (w[3] > w[2])


# --------------------------------------------------------------------------- CLI


def test_cli_json_shape_and_parquet(tmp_path: Path) -> None:
    cfg = _write(
        tmp_path,
        {"base": TINY, "grid": {"seed": [2]}, "regimes": ["siloed", "shared"], "regret": False},
        "s.yaml",
    )
    out = tmp_path / "res.parquet"
    res = runner.invoke(
        app, ["--config", str(cfg), "--out", str(out), "--backend", "serial", "--json"]
    )
    assert res.exit_code == 0, res.output
    data = json.loads(res.stdout)
    assert list(data) == ["jobs", "rows", "out", "backend", "wall_s", "summary"]
    assert (data["jobs"], data["rows"], data["out"], data["backend"]) == (
        2,
        2,
        str(out),
        "serial",
    )
    assert data["wall_s"] > 0
    assert set(data["summary"]) == {
        "welfare_by_regime",
        "first_axis",
        "welfare_by_axis",
        "gain_by_seed",
    }
    t = pq.read_table(out)
    assert t["regime"].to_pylist() == ["siloed", "shared"]
    assert data["summary"]["welfare_by_regime"]["shared"] == t["total_welfare"][1].as_py()
    assert data["summary"]["gain_by_seed"][0]["seed"] == 2
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["--backend", "dask"], "unknown backend 'dask'"),
        (["--workers", "0"], "--workers must be >= 1"),
        (["--config", "{missing}"], "not found"),
        (["--config", "{bad}"], "grid: unknown field 'seeds'"),
        (["--out", "{nodir}"], "does not exist"),
    ],
)
def test_cli_bad_input_exits_2_without_output(tmp_path: Path, args: list[str], needle: str) -> None:
    good = _write(tmp_path, {"base": TINY, "regimes": ["siloed"]}, "good.json")
    bad = _write(tmp_path, {"grid": {"seeds": [1]}}, "bad.json")
    out = tmp_path / "res.parquet"
    sub = {
        "{missing}": str(tmp_path / "none.json"),
        "{bad}": str(bad),
        "{nodir}": str(tmp_path / "no" / "r.parquet"),
    }
    opts = {"--config": str(good), "--out": str(out), "--backend": "serial"}
    for flag, value in zip(args[::2], args[1::2], strict=True):
        opts[flag] = sub.get(value, value)
    res = runner.invoke(app, [*itertools.chain(*opts.items()), "--json"])
    assert res.exit_code == 2, res.output
    assert needle in res.stderr and res.stderr.count("\n") == 1
    assert "Traceback" not in res.output and res.stdout == ""
    assert not out.exists()


def test_cli_table_output(tmp_path: Path) -> None:
    cfg = _write(
        tmp_path,
        {"base": TINY, "grid": {"replicas": [1, 2]}, "regimes": ["siloed"], "regret": False},
    )
    out = tmp_path / "r.parquet"
    res = runner.invoke(app, ["--config", str(cfg), "--out", str(out), "--backend", "serial"])
    assert res.exit_code == 0, res.output
    text = " ".join(res.stdout.split())  # rich wraps titles on a narrow terminal
    assert "Mean total welfare by regime" in text and "Mean total welfare by replicas" in text
    w = pq.read_table(out)["total_welfare"].to_pylist()
    assert f"{sum(w) / 2:,.2f}" in text and f"{w[0]:,.2f}" in text
    assert "2 rows (serial" in text and out.exists()


def test_data_dir_is_calibrated_once_per_config(
    shared_data: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With ``base.data_dir`` every job runs on the data-calibrated config, computed once."""
    import margin.economy.config as config_mod

    mbpp = shared_data("routing/routerbench/mbpp_train.csv")
    shared_data("serving/AzureLLMInferenceTrace_conv.csv")
    shared_data("rl/rl_staleness_ablations.csv")
    root = str(mbpp.parents[2])
    calls: list[str] = []
    real = config_mod.calibrate_from_data

    def counting(cfg: EconomyConfig, data_dir: Any) -> EconomyConfig:
        calls.append(str(data_dir))
        return real(cfg, data_dir)

    monkeypatch.setattr(config_mod, "calibrate_from_data", counting)
    spec = {
        "base": {**TINY, "seed": 2, "data_dir": root},
        "regimes": ["siloed", "siloed+routing"],
        "regret": False,
    }
    t = run_sweep(spec, backend="serial")
    assert calls == [root]
    cfg = real(EconomyConfig.from_dict({**TINY, "seed": 2}), root)
    direct = run_regime(cfg, draw_stream(cfg), REGIMES["siloed"], regret=False)
    assert t["total_welfare"][0].as_py() == direct.total.welfare
