"""`route fit|choose|compare`: output shapes, atomic files, exit code 2 on bad input."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from margin.cli.route import app

runner = CliRunner()


@pytest.fixture(scope="module")
def model_and_tables(tmp_path_factory):
    from margin.routing.data import RoutingDataset

    tmp = tmp_path_factory.mktemp("route")
    import numpy as np

    rng = np.random.default_rng(0)
    n = 80
    prompts, q = [], []
    for k in range(n):
        hard = k % 2 == 1
        prompts.append(f"{'hard tricky proof' if hard else 'easy simple sum'} item {k}")
        q.append([0.0, float(rng.random() < 0.5), 1.0] if hard else [1.0, 1.0, 1.0])
    d = RoutingDataset.from_arrays(
        prompts,
        ("small", "medium", "large"),
        q,
        np.tile([0.001, 0.004, 0.02], (n, 1)),
        tasks=["t"] * n,
        sample_ids=[f"s{k}" for k in range(n)],
    )
    return d, tmp


def _write(path: Path, data, **kw) -> Path:
    import csv

    models = kw.get("models") or list(data.models)
    value = kw.get("value")
    with path.open("w", newline="") as fh:
        w = csv.writer(fh)
        header = ["sample_id", "prompt", "eval_name"]
        for m in models:
            header += [m, f"{m}|total_cost"]
        if value is not None:
            header.append("value")
        w.writerow(header)
        for k in range(data.n):
            row = [data.sample_ids[k], data.prompts[k], data.tasks[k]]
            for m in models:
                j = data.models.index(m)
                row += [data.quality[k, j], data.cost[k, j]]
            if value is not None:
                row.append(value[k])
            w.writerow(row)
    return path


@pytest.fixture(scope="module")
def fitted_model(model_and_tables):
    d, tmp = model_and_tables
    train = _write(tmp / "train.csv", d)
    out = tmp / "m.router"
    res = runner.invoke(app, ["fit", "--train", str(train), "--out", str(out), "--json"])
    assert res.exit_code == 0, res.output
    summary = json.loads(res.stdout)
    assert summary["rows"] == d.n and summary["models"] == list(d.models)
    return out


def test_choose_json_shape_with_reordered_models_and_row_values(model_and_tables, fitted_model):
    d, tmp = model_and_tables
    sub = d.subset([0, 1, 2, 3])
    # a different column order and a per-row value that overrides --value for row s1
    path = _write(
        tmp / "in.csv", sub, models=["large", "small", "medium"], value=["", 0.0001, "", ""]
    )
    res = runner.invoke(
        app,
        ["choose", "--model", str(fitted_model), "--input", str(path), "--value", "10", "--json"],
    )
    assert res.exit_code == 0, res.output
    out = json.loads(res.stdout)
    assert list(out) == ["choices"]
    assert [c["sample_id"] for c in out["choices"]] == ["s0", "s1", "s2", "s3"]
    assert all(set(c) == {"sample_id", "model"} for c in out["choices"])
    models = [c["model"] for c in out["choices"]]
    assert models[3] == "large"  # hard prompt at V = 10
    assert models[1] == "small"  # hard prompt, but its own V = 0.0001


def test_choose_unseen_prompts_without_model_columns(model_and_tables, fitted_model):
    _, tmp = model_and_tables
    p = tmp / "new.csv"
    p.write_text("sample_id,prompt\nn1,an easy simple sum never seen\nn2,hard tricky proof\n")
    res = runner.invoke(
        app, ["choose", "--model", str(fitted_model), "--input", str(p), "--value", "1", "--json"]
    )
    assert res.exit_code == 0, res.output
    choices = json.loads(res.stdout)["choices"]
    assert [c["sample_id"] for c in choices] == ["n1", "n2"]
    assert choices[1]["model"] == "large"
    human = runner.invoke(
        app, ["choose", "--model", str(fitted_model), "--input", str(p), "--value", "1"]
    )
    assert human.exit_code == 0 and "n2" in human.stdout


def test_choose_appends_to_the_ledger(model_and_tables, fitted_model):
    store = pytest.importorskip("margin.ledger.store")
    _, tmp = model_and_tables
    p = tmp / "few.csv"
    p.write_text("sample_id,prompt\nl1,easy simple sum\n")
    db = tmp / "ledger.sqlite"
    res = runner.invoke(
        app,
        [
            "choose",
            "--model",
            str(fitted_model),
            "--input",
            str(p),
            "--value",
            "1",
            "--ledger",
            str(db),
            "--json",
        ],
    )
    assert res.exit_code == 0, res.output
    with store.Ledger(db) as led:
        recs = list(led.records(layer="routing"))
    assert [r.request_id for r in recs] == ["l1"]


def test_bad_inputs_exit_2_with_one_line(model_and_tables, fitted_model):
    _, tmp = model_and_tables
    not_model = tmp / "not_a_model.csv"
    not_model.write_text("sample_id,prompt\n1,hi\n")
    bad_csv = tmp / "bad.csv"
    bad_csv.write_text("sample_id,prompt,a,a|total_cost\n1,hi,oops,0.1\n")
    cases = [
        ["choose", "--model", str(not_model), "--input", str(not_model), "--value", "1"],
        ["choose", "--model", str(fitted_model), "--input", str(bad_csv), "--value", "1"],
        ["choose", "--model", str(fitted_model), "--input", str(tmp / "nope.csv"), "--value", "1"],
        ["choose", "--model", str(fitted_model), "--input", str(not_model), "--value", "-1"],
        ["fit", "--train", str(bad_csv), "--out", str(tmp / "x.router")],
        ["compare", "--train", str(bad_csv)],
        ["compare", "--train", str(not_model), "--values", "a,b"],
        ["compare", "--train", str(not_model), "--routers", "nope"],
    ]
    for args in cases:
        res = runner.invoke(app, args)
        assert res.exit_code == 2, (args, res.output)
        assert res.stderr.count("\n") == 1 and "Traceback" not in res.output, res.stderr
    assert not (tmp / "x.router").exists()
    assert "bad.csv:2" in runner.invoke(app, cases[1]).stderr


def test_compare_json_and_plots(model_and_tables):
    d, tmp = model_and_tables
    train = _write(tmp / "cmp.csv", d)
    plots = tmp / "plots"
    res = runner.invoke(
        app,
        [
            "compare",
            "--train",
            str(train),
            "--values",
            "0.01,10",
            "--routers",
            "marginal,best_fixed,oracle,cheapest",
            "--json",
            "--plots",
            str(plots),
        ],
    )
    assert res.exit_code == 0, res.output
    out = json.loads(res.stdout)
    assert out["values"] == [0.01, 10.0]
    assert out["split"]["test_rows"] == 24 and out["split"]["train_rows"] == 56
    assert {r["router"] for r in out["rows"]} == {"marginal", "best_fixed", "oracle", "cheapest"}
    assert len(out["rows"]) == 8
    assert sorted(Path(p).name for p in out["plots"]) == ["frontier.png", "regret_by_tier.png"]
    assert (plots / "frontier.png").read_bytes()[:4] == b"\x89PNG"
    # --test overlapping --train: the file is split, the test part held out
    res2 = runner.invoke(
        app,
        [
            "compare",
            "--train",
            str(train),
            "--test",
            str(train),
            "--values",
            "1",
            "--routers",
            "best_fixed,oracle",
            "--json",
        ],
    )
    assert res2.exit_code == 0, res2.output
    assert json.loads(res2.stdout)["split"]["test_rows"] == 24
    human = runner.invoke(
        app, ["compare", "--train", str(train), "--values", "1", "--routers", "best_fixed,oracle"]
    )
    assert human.exit_code == 0 and "best_fixed" in human.stdout


def _mmlu_folder(tmp: Path, n: int = 60) -> Path:
    import csv

    gpt4, mix = "gpt-4-1106-preview", "mistralai/Mixtral-8x7B-Instruct-v0.1"
    folder = tmp / "mmlu_responses"
    folder.mkdir(exist_ok=True)
    for subject in ("anatomy", "virology"):
        with (folder / f"mmlu_{subject}.csv").open("w", newline="") as fh:
            w = csv.writer(fh)
            w.writerow(["prompt", mix, gpt4])
            for k in range(n):
                hard = k % 2 == 1
                w.writerow(
                    [
                        f"{'hard tricky' if hard else 'easy simple'} {subject} q{k}",
                        0 if hard else 1,
                        1,
                    ]
                )
    return folder


def test_commands_read_routellm_files(model_and_tables):
    _, tmp = model_and_tables
    folder = _mmlu_folder(tmp)
    res = runner.invoke(
        app,
        [
            "compare",
            "--train",
            str(folder),
            "--values",
            "0.001,1",
            "--routers",
            "marginal,best_fixed,oracle",
            "--json",
        ],
    )
    assert res.exit_code == 0, res.output
    out = json.loads(res.stdout)
    assert out["split"]["train_rows"] + out["split"]["test_rows"] == 120
    assert "two_model" in out and out["best_fixed"]["1.0"] == "gpt-4-1106-preview"
    model = tmp / "mmlu.router"
    res = runner.invoke(
        app, ["fit", "--train", str(folder), "--format", "routellm-mmlu", "--out", str(model)]
    )
    assert res.exit_code == 0, res.output
    one = folder / "mmlu_virology.csv"
    res = runner.invoke(
        app, ["choose", "--model", str(model), "--input", str(one), "--value", "1", "--json"]
    )
    assert res.exit_code == 0, res.output
    choices = json.loads(res.stdout)["choices"]
    assert len(choices) == 60 and choices[0]["sample_id"] == "virology:2"
    assert {c["model"] for c in choices} <= {
        "gpt-4-1106-preview",
        "mistralai/Mixtral-8x7B-Instruct-v0.1",
    }


def test_unknown_formats_exit_2(model_and_tables):
    _, tmp = model_and_tables
    folder = _mmlu_folder(tmp)
    odd = tmp / "odd.jsonl"
    odd.write_text("{}\n")
    empty = tmp / "empty_dir"
    empty.mkdir(exist_ok=True)
    rb = _write(tmp / "rb_fmt.csv", model_and_tables[0])
    cases = [
        ["compare", "--train", str(folder), "--format", "xlsx"],
        ["fit", "--train", str(odd), "--out", str(tmp / "y.router")],
        ["fit", "--train", str(empty), "--out", str(tmp / "y.router")],
        ["compare", "--train", str(rb), "--contaminated", str(odd)],
        ["choose", "--model", str(tmp / "m.router"), "--input", str(odd), "--value", "1"],
    ]
    for args in cases:
        res = runner.invoke(app, args)
        assert res.exit_code == 2, (args, res.output)
        assert res.stderr.count("\n") == 1 and "Traceback" not in res.output, res.stderr
    assert "unknown format 'xlsx'" in runner.invoke(app, cases[0]).stderr
    assert not (tmp / "y.router").exists()
