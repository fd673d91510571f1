from __future__ import annotations

import csv
import json
from collections import defaultdict

import numpy as np
import pytest

from margin.core.prices import InputError
from margin.serving.costmodel import DistServeCostModel, SplitwiseCostModel, load_cost_model
from margin.serving.profiles import DISTSERVE_A100_80G


def test_embedded_profile_equals_published_file(shared_data):
    data = json.loads(shared_data("serving/distserve_profiler-a100-80g.distserve.json").read_text())
    for model, per_tp in data.items():
        for tp, prof in per_tp.items():
            emb = DISTSERVE_A100_80G[model][int(tp)]
            assert list(emb["prefill"]) == prof["prefill"]
            assert list(emb["decoding_smallbs"]) == prof["decoding_smallbs"]
            assert list(emb["decoding_largebs"]) == prof["decoding_largebs"]


def test_from_json_loads_vllm_profile(shared_data):
    path = shared_data("serving/distserve_profiler-a100-80g.vllm.json")
    m = DistServeCostModel.from_json(path, "facebook/opt-66b", 2)
    a, b, c = m.prefill
    assert m.iteration_time(100, 100 * 100, 0, 0) == pytest.approx((a + b * 100 + c * 1e4) * 1e-3)
    a, b, c = m.decode_large
    assert m.iteration_time(0, 0, 5000, 100) == pytest.approx((a + b * 5000 + c * 100) * 1e-3)


def test_mixed_iteration_pays_overhead_once():
    m = DistServeCostModel.default()
    p = m.iteration_time(300, 300 * 300, 0, 0)
    d = m.iteration_time(0, 0, 4000, 8)
    both = m.iteration_time(300, 300 * 300, 4000, 8)
    assert both == pytest.approx(p + d - min(m.prefill[0], m.decode_small[0]) * 1e-3)
    alpha, beta = m.decode_coefficients(8)
    assert alpha + beta * 4000 == pytest.approx(d)


def test_splitwise_reproduces_measured_means(shared_data):
    path = shared_data("serving/splitwise_sim_perf_model.csv")
    m = SplitwiseCostModel(path, "llama2-70b", "a100-80gb", 8)
    rows = [
        r
        for r in csv.DictReader(path.open())
        if r["model"] == "llama2-70b"
        and r["hardware"] == "a100-80gb"
        and r["tensor_parallel"] == "8"
    ]
    prompt = defaultdict(list)
    for r in rows:
        if r["token_size"] == "128":
            total = int(r["prompt_size"]) * int(r["batch_size"])
            prompt[total].append(float(r["prompt_time"]) / 1e3)
    means = {k: float(np.mean(v)) for k, v in sorted(prompt.items())}
    kept = [k for k in means if means[k] >= max(means[j] for j in means if j <= k)]
    assert len(kept) >= 7
    for size in kept:
        assert m.prefill_time(size) == pytest.approx(means[size], rel=1e-9)
    tok1 = (
        np.mean(
            [
                float(r["token_time"])
                for r in rows
                if r["batch_size"] == "1" and r["prompt_size"] == "512" and r["token_size"] == "128"
            ]
        )
        / 1e3
    )
    assert m.iteration_time(0, 0, 576.0, 1) == pytest.approx(tok1, rel=1e-9)
    # monotone in tokens and batch
    assert m.prefill_time(3000) < m.prefill_time(3001) < m.prefill_time(50000)


def test_load_cost_model_errors(tmp_path):
    with pytest.raises(InputError, match="no DistServe profile"):
        load_cost_model({"model": "gpt-5"})
    with pytest.raises(InputError, match="unknown field 'bogus'"):
        load_cost_model({"kind": "distserve", "bogus": 1})
    with pytest.raises(InputError, match="kind"):
        load_cost_model({"kind": "roofline"})
    bad = tmp_path / "p.json"
    bad.write_text('{"prefill": [1, 2], "decoding_smallbs": [1,1,1], "decoding_largebs": [1,1,1]}')
    with pytest.raises(InputError, match="prefill"):
        DistServeCostModel.from_json(bad)
