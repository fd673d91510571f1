"""Loaders: RouterBench, generic, RouteLLM, RouterArena; the dataset value object; the split."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest

from margin.core.prices import InputError
from margin.routing.data import (
    RoutingDataset,
    concat_datasets,
    load_generic,
    load_routellm_gsm8k,
    load_routellm_mmlu,
    load_routellm_mt_bench,
    load_routerarena,
    load_routerbench,
    load_table,
    train_test_split,
)


def test_routerbench_roundtrip_and_dropped_rows(rb_csv, synth):
    d = synth(10)
    path = rb_csv(data=d, blank=[(3, "medium"), (7, "large")])
    got = load_routerbench(path)
    assert got.models == ("small", "medium", "large")
    assert got.n == 8
    assert got.reports[0].dropped == 2
    assert got.reports[0].reasons == {"missing quality": 2}
    assert "s3" not in got.sample_ids and "s7" not in got.sample_ids
    keep = [k for k in range(10) if k not in (3, 7)]
    np.testing.assert_array_equal(got.quality, d.quality[keep])
    np.testing.assert_allclose(got.cost, d.cost[keep])
    assert got.responses is not None and got.responses[0] == (
        "answer of small",
        "answer of medium",
        "answer of large",
    )


def test_routerbench_model_order_follows_file(rb_csv, synth):
    d = synth(6)
    got = load_routerbench(rb_csv(data=d, models=["large", "small", "medium"]))
    assert got.models == ("large", "small", "medium")
    np.testing.assert_array_equal(got.quality[:, 1], d.quality[:, 0])


def test_malformed_number_names_file_line_and_column(tmp_path: Path):
    p = tmp_path / "bad.csv"
    p.write_text("sample_id,prompt,eval_name,a,a|total_cost\n1,hi,t,1.0,0.1\n2,yo,t,maybe,0.1\n")
    with pytest.raises(InputError, match=r"bad\.csv:3: column 'a' is not a number"):
        load_routerbench(p)


def test_wrong_field_count_and_missing_file(tmp_path: Path):
    p = tmp_path / "short.csv"
    p.write_text("sample_id,prompt,eval_name,a,a|total_cost\n1,hi,t,1.0\n")
    with pytest.raises(InputError, match=r"short\.csv:2: expected 5 fields"):
        load_routerbench(p)
    with pytest.raises(InputError, match="file not found"):
        load_routerbench(tmp_path / "absent.csv")
    empty = tmp_path / "empty.csv"
    empty.write_text("")
    with pytest.raises(InputError, match="empty file"):
        load_routerbench(empty)


def test_negative_cost_and_no_models(tmp_path: Path):
    p = tmp_path / "neg.csv"
    p.write_text("prompt,a,a|total_cost\nhi,1,-0.1\n")
    with pytest.raises(InputError, match=r"neg\.csv:2: a 'cost' value is negative"):
        load_routerbench(p)
    q = tmp_path / "nomodel.csv"
    q.write_text("sample_id,prompt\n1,hello\n")
    with pytest.raises(InputError, match="no model columns"):
        load_routerbench(q)
    assert load_routerbench(q, require_models=False).prompts == ("hello",)


def test_generic_format_with_value_latency_and_risk(tmp_path: Path):
    p = tmp_path / "g.csv"
    p.write_text(
        "sample_id,prompt,task,value,risk_class,a|quality,a|cost,a|latency,b|quality,b|cost,"
        "b|latency\n"
        "x,hello,t,2.5,deploy,1,0.1,0.5,0,0.3,1.5\n"
        "y,world,t,,read,0,0.1,0.5,1,0.3,1.5\n"
    )
    d = load_table(p)
    assert d.models == ("a", "b")
    assert d.risk_class == ("deploy", "read")
    assert d.latency is not None and d.latency.tolist() == [[0.5, 1.5], [0.5, 1.5]]
    assert d.values(7.0).tolist() == [2.5, 7.0]
    with pytest.raises(InputError, match="missing column 'b\\|cost'"):
        bad = tmp_path / "g2.csv"
        bad.write_text("prompt,a|quality,a|cost,b|quality\nhi,1,0.1,0\n")
        load_generic(bad)


def test_dataset_is_frozen_and_validated(synth):
    d = synth(4)
    with pytest.raises(dataclasses.FrozenInstanceError):
        d.models = ("x",)  # type: ignore[misc]
    with pytest.raises(ValueError):
        d.quality[0, 0] = 5.0
    with pytest.raises(InputError, match="shape"):
        RoutingDataset.from_arrays(["a"], ["m"], [[1, 1]], [[1]])
    with pytest.raises(InputError, match="duplicate"):
        RoutingDataset.from_arrays(["a"], ["m", "m"], [[1, 1]], [[1, 1]])


def test_concat_aligns_models_and_split_is_stratified_and_seeded(synth):
    a = synth(20, seed=1)
    b = a.select_models(["large", "small", "medium"])
    both = concat_datasets([a, b])
    np.testing.assert_array_equal(both.quality[20:], a.quality)
    tr, te = train_test_split(both, 0.3, seed=5)
    assert tr.n + te.n == 40
    assert sorted(te.tasks).count("math") == round(0.3 * 20)
    _, te2 = train_test_split(both, 0.3, seed=5)
    assert te.sample_ids == te2.sample_ids
    tr3, te3 = train_test_split(a, 0.25, seed=0)
    assert set(tr3.sample_ids).isdisjoint(te3.sample_ids)
    assert set(tr3.sample_ids) | set(te3.sample_ids) == set(a.sample_ids)


@pytest.mark.data
def test_real_routerbench_arc_drops_corrupt_rows(shared_data):
    d = load_routerbench(shared_data("routing/routerbench/arc_challenge_train.csv"))
    assert d.m == 11
    assert d.reports[0].dropped == 20
    assert d.n == 1019
    assert d.labeled
    assert "gpt-4-1106-preview" in d.models


@pytest.mark.data
def test_real_routellm_and_routerarena(shared_data):
    mmlu = load_routellm_mmlu(shared_data("routing/routellm/mmlu_responses/mmlu_anatomy.csv"))
    assert mmlu.models == ("mistralai/Mixtral-8x7B-Instruct-v0.1", "gpt-4-1106-preview")
    assert mmlu.n == 135
    # GPT-4 at $10/M input tokens costs 10/0.6 times Mixtral's input price
    assert np.all(mmlu.cost[:, 1] > 10 * mmlu.cost[:, 0])
    gsm = load_routellm_gsm8k(
        shared_data("routing/routellm/gsm8k/gsm8k_responses.csv"),
        contaminated=shared_data("routing/routellm/gsm8k/contaminated_prompts.jsonl"),
    )
    assert gsm.n + gsm.dropped == 1319
    assert gsm.dropped > 0
    files = [
        shared_data("routing/routerarena/claude-3-haiku-20240307.jsonl"),
        shared_data("routing/routerarena/gemini-2.0-flash-001.jsonl"),
    ]
    arena = load_routerarena(files)
    assert arena.n == 809 and arena.m == 2
    # scores are mostly 0/1 accuracies; a few graded metrics dip slightly below 0
    assert arena.quality.max() == 1.0 and arena.quality.min() > -0.1
    assert np.all(arena.cost > 0)


def test_routerarena_bad_json(tmp_path: Path):
    a = tmp_path / "a.jsonl"
    a.write_text(
        '{"global_index": "X_1", "question": "q", "llm_selected": "a",'
        ' "evaluation_result": {"score": 1.0, "inference_cost": 0.1}}\n{oops\n'
    )
    b = tmp_path / "b.jsonl"
    b.write_text(
        '{"global_index": "X_1", "question": "q", "llm_selected": "b",'
        " \"evaluation_result\": \"{'score': 0.0, 'inference_cost': 0.2}\"}\n"
    )
    with pytest.raises(InputError, match=r"a\.jsonl:2: not valid JSON"):
        load_routerarena([a, b])
    a.write_text(a.read_text().splitlines()[0] + "\n")
    d = load_routerarena([a, b])
    assert d.quality.tolist() == [[1.0, 0.0]] and d.cost.tolist() == [[0.1, 0.2]]


def _mt_bench_dir(tmp_path: Path, judgements: list[dict[str, object]]) -> Path:
    import json

    d = tmp_path / "mt"
    d.mkdir()
    (d / "question.jsonl").write_text(
        json.dumps({"question_id": 1, "category": "math", "turns": ["2+2?", "times 3?"]}) + "\n"
    )
    (d / "judgements.jsonl").write_text("".join(json.dumps(j) + "\n" for j in judgements))
    return d


def _judge(model: str, turn: int, score: float, answers: list[str]) -> dict[str, object]:
    if turn == 1:
        prompt = (
            "[Question]\n2+2?\n\n[The Start of Assistant's Answer]\n"
            f"{answers[0]}\n[The End of Assistant's Answer]"
        )
    else:
        prompt = "".join(f"### User:\nq\n\n### Assistant A:\n{a}\n\n" for a in answers)
        prompt += "<|The End of Assistant A's Conversation with User|>"
    return {"question_id": 1, "model": model, "turn": turn, "score": score, "user_prompt": prompt}


def test_mt_bench_hand_built(tmp_path: Path) -> None:
    gpt, mix = "gpt-4-1106-preview", "mistralai/Mixtral-8x7B-Instruct-v0.1"
    d = _mt_bench_dir(
        tmp_path,
        [
            _judge(gpt, 1, 9, ["4" * 400]),
            _judge(mix, 1, 6, ["4" * 40]),
            _judge(gpt, 2, 10, ["4" * 400, "12" * 200]),
            _judge(mix, 2, 3, ["4" * 40, "12"]),
        ],
    )
    got = load_routellm_mt_bench(d)
    assert got.models == (gpt, mix) and got.sample_ids == ("mt_bench:1:1", "mt_bench:1:2")
    np.testing.assert_allclose(got.quality, [[0.9, 0.6], [1.0, 0.3]])
    assert got.tasks == ("math", "math") and got.prompts[1] == "2+2?\n\ntimes 3?"
    # turn 1: 1 input token ("2+2?"), 100 output tokens at $10/$30 per M for GPT-4
    assert got.cost[0, 0] == pytest.approx((10 * 1 + 30 * 100) / 1e6)
    # turn 2: input = both user turns (4 tokens) + the model's first answer (100 tokens)
    assert got.cost[1, 0] == pytest.approx((10 * (4 + 100) + 30 * 100) / 1e6)
    # A (question, turn) judged for only one model is dropped and counted.
    (tmp_path / "x").mkdir()
    one_sided = [_judge(gpt, 1, 9, ["4"]), _judge(gpt, 2, 9, ["4", "5"]), _judge(mix, 1, 5, ["4"])]
    d2 = _mt_bench_dir(tmp_path / "x", one_sided)
    got2 = load_routellm_mt_bench(d2)
    assert got2.n == 1 and got2.reports[0].reasons == {"missing quality": 1}


def test_mt_bench_errors_name_file_and_line(tmp_path: Path) -> None:
    d = _mt_bench_dir(tmp_path, [])
    (d / "judgements.jsonl").write_text('{"question_id": 1}\n{broken\n')
    with pytest.raises(InputError, match=r"judgements\.jsonl:1: missing field 'model'"):
        load_routellm_mt_bench(d)
    (d / "judgements.jsonl").write_text("\n{broken\n")
    with pytest.raises(InputError, match=r"judgements\.jsonl:2: not valid JSON"):
        load_routellm_mt_bench(d)


def test_real_mt_bench(shared_data) -> None:
    folder = shared_data("routing/routellm/mt_bench/judgements.jsonl").parent
    d = load_routellm_mt_bench(folder, contaminated=folder / "contaminated_prompts.jsonl")
    assert d.n == 144 and d.reports[0].reasons == {"contaminated": 16}
    # MT-Bench's published ordering: GPT-4-Turbo above Mixtral-8x7B-Instruct, both 8–9.5 / 10.
    mean = d.quality.mean(axis=0)
    assert 0.85 < mean[0] < 0.97 and 0.75 < mean[1] < 0.9 and mean[0] > mean[1]
    assert np.all(d.cost[:, 0] > d.cost[:, 1])


GPT4, MIX = "gpt-4-1106-preview", "mistralai/Mixtral-8x7B-Instruct-v0.1"


def _mmlu_csv(path: Path, rows: list[tuple[str, int, int]]) -> Path:
    import csv

    with path.open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["prompt", MIX, GPT4])
        w.writerows(rows)
    return path


def test_detect_format_and_load_any(tmp_path: Path, rb_csv, synth) -> None:
    from margin.routing.data import DATA_FORMATS, detect_format, load_any

    assert detect_format(rb_csv(data=synth(4))) == "routerbench"
    generic = tmp_path / "g.csv"
    generic.write_text("prompt,a|quality,a|cost\nhi,1,0.1\n")
    assert detect_format(generic) == "generic"
    prompts_only = tmp_path / "p.csv"
    prompts_only.write_text("sample_id,prompt\n1,hi\n")
    assert detect_format(prompts_only) == "routerbench"
    # bare quality columns of models without a RouteLLM price stay RouterBench
    bare = tmp_path / "bare.csv"
    bare.write_text("prompt,a,b\nhi,1,0\n")
    assert detect_format(bare) == "routerbench"
    folder = tmp_path / "mmlu_responses"
    folder.mkdir()
    one = _mmlu_csv(folder / "mmlu_anatomy.csv", [("What is " + "x" * 392, 0, 1), ("Why?", 1, 1)])
    _mmlu_csv(folder / "mmlu_virology.csv", [("How?", 1, 0)])
    assert detect_format(one) == "routellm-mmlu" and detect_format(folder) == "routellm-mmlu"
    d = load_any(folder)
    assert d.models == (MIX, GPT4) and d.n == 3
    assert d.tasks == ("anatomy", "anatomy", "virology")
    assert d.quality.tolist() == [[0.0, 1.0], [1.0, 1.0], [1.0, 0.0]]
    # 100 prompt tokens + 1 answer token at $10/$30 per M tokens (ROUTELLM_PRICES)
    assert d.cost[0, 1] == pytest.approx((10 * 100 + 30 * 1) / 1e6)
    contaminated = tmp_path / "bad.jsonl"
    contaminated.write_text('{"eval_prompt": "Why?"}\n')
    clean = load_any(folder, contaminated=contaminated)
    assert clean.n == 2 and clean.dropped == 1
    gsm = tmp_path / "gsm8k_responses.csv"
    gsm.write_text(f"prompt,{MIX},{GPT4},{MIX}_response,{GPT4}_response\n2+2?,1,1,4,four\n")
    assert detect_format(gsm) == "routellm-gsm8k" and detect_format(tmp_path) == "routellm-gsm8k"
    assert load_any(gsm).models == (MIX, GPT4)
    # a forced format is used as given; every name in DATA_FORMATS is accepted
    assert load_any(one, "routerbench").labeled is False
    assert set(DATA_FORMATS) >= {"auto", "routellm-mt-bench", "routerarena"}


def test_load_any_errors_name_the_path(tmp_path: Path) -> None:
    from margin.routing.data import detect_format, load_any

    with pytest.raises(InputError, match="unknown format 'xlsx'"):
        load_any(tmp_path / "a.csv", "xlsx")
    j = tmp_path / "x.jsonl"
    j.write_text("{}\n")
    with pytest.raises(InputError, match=r"x\.jsonl: unknown routing data format"):
        detect_format(j)
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(InputError, match="unknown routing data folder"):
        load_any(empty)
    with pytest.raises(InputError, match="file not found"):
        load_any(tmp_path / "missing.csv")
    rb = tmp_path / "rb.csv"
    rb.write_text("prompt,a,a|total_cost\nhi,1,0.1\n")
    with pytest.raises(InputError, match="RouteLLM data only"):
        load_any(rb, contaminated=j)
    with pytest.raises(InputError, match="folder of one JSONL file per model"):
        load_any(j, "routerarena")


@pytest.mark.data
def test_load_any_detects_the_shared_routing_data(shared_data) -> None:
    from margin.routing.data import detect_format, load_any

    mt = shared_data("routing/routellm/mt_bench/judgements.jsonl").parent
    assert detect_format(mt) == "routellm-mt-bench"
    gsm = shared_data("routing/routellm/gsm8k/gsm8k_responses.csv")
    assert detect_format(gsm) == "routellm-gsm8k"
    arena = shared_data("routing/routerarena/gemini-2.0-flash-001.jsonl").parent
    assert detect_format(arena) == "routerarena"
    assert load_any(arena).n == 809
    anatomy = shared_data("routing/routellm/mmlu_responses/mmlu_anatomy.csv")
    assert detect_format(anatomy.parent) == "routellm-mmlu"
    assert load_any(anatomy).n == 135
