from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from margin.core.prices import InputError
from margin.serving.traces import (
    Trace,
    load_azure,
    load_mooncake,
    load_trace,
    load_vidur,
    synthetic_trace,
    tag_context_tenants,
)


def write(tmp_path: Path, name: str, text: str) -> Path:
    p = tmp_path / name
    p.write_text(text)
    return p


def test_azure_real(shared_data):
    t = load_azure(shared_data("serving/AzureLLMInferenceTrace_conv.csv"))
    assert len(t) == 19366
    assert t.arrival[0] == 0.0
    assert 3501 < t.duration < 3503
    assert abs(t.prompt.mean() - 1155) < 1 and abs(t.output.mean() - 211) < 1


def test_vidur_matches_azure(shared_data):
    a = load_azure(shared_data("serving/AzureLLMInferenceTrace_conv.csv"))
    v = load_vidur(shared_data("serving/vidur_splitwise_conv.csv"))
    assert np.allclose(a.arrival, v.arrival, atol=1e-6)
    assert np.array_equal(a.prompt, v.prompt)


def test_mooncake_real(shared_data):
    t = load_mooncake(shared_data("serving/mooncake_conversation_trace.jsonl"))
    assert len(t) == 12031
    assert list(t.hashes(0)[:3]) == [0, 1, 2]
    assert t.hash_block_tokens == 512
    # one hash per 512-token prompt block
    blocks = np.diff(t.hash_offsets)
    assert np.array_equal(blocks, -(-t.prompt // 512))


def test_unseen_files_all_formats(tmp_path):
    az = write(
        tmp_path,
        "a.csv",
        "TIMESTAMP,ContextTokens,GeneratedTokens\n"
        "2024-01-01 00:00:00.5,10,3\n2024-01-01 00:00:02.0,20,4\n",
    )
    t = load_trace(az, "azure")
    assert t.arrival.tolist() == [0.0, 1.5] and t.prompt.tolist() == [10, 20]
    mc = write(
        tmp_path,
        "m.jsonl",
        '{"timestamp": 1000, "input_length": 600, "output_length": 2,'
        ' "hash_ids": [7, 8]}\n\n{"timestamp": 3000, "input_length": 5, '
        '"output_length": 1, "hash_ids": [9]}\n',
    )
    t = load_trace(mc, "mooncake")
    assert t.arrival.tolist() == [0.0, 2.0] and t.hashes(1).tolist() == [9]
    vd = write(tmp_path, "v.csv", "arrived_at,num_prefill_tokens,num_decode_tokens\n1,5,6\n2,7,8\n")
    assert load_trace(vd, "vidur").output.tolist() == [6, 8]
    sy = write(tmp_path, "s.json", json.dumps({"n": 50, "rate": 2.0, "arrival": "gamma", "cv": 2}))
    assert len(load_trace(sy, "synthetic")) == 50


@pytest.mark.parametrize(
    ("fmt", "text", "where"),
    [
        (
            "azure",
            "TIMESTAMP,ContextTokens,GeneratedTokens\n2024-01-01 00:00:00,1,1\n"
            "2024-01-01 00:00:01,x,1\n",
            ":3: field 'ContextTokens'",
        ),
        (
            "azure",
            "TIMESTAMP,ContextTokens,GeneratedTokens\nnot-a-date,1,1\n",
            ":2: field 'TIMESTAMP'",
        ),
        ("azure", "TIMESTAMP,Context\n2024-01-01,1\n", ":1: missing column"),
        (
            "azure",
            "TIMESTAMP,ContextTokens,GeneratedTokens\n2024-01-01 00:00:00,1,1,9\n",
            ":2: expected 3 fields",
        ),
        (
            "azure",
            "TIMESTAMP,ContextTokens,GeneratedTokens\n2024-01-01 00:00:05,1,1\n"
            "2024-01-01 00:00:01,1,1\n",
            ":3: field 'TIMESTAMP' goes back",
        ),
        (
            "vidur",
            "arrived_at,num_prefill_tokens,num_decode_tokens\n0,1,1\n1,1,0\n",
            ":3: field 'num_decode_tokens' must be >= 1",
        ),
        (
            "vidur",
            "arrived_at,num_prefill_tokens,num_decode_tokens\nnan?,1,1\n",
            ":2: field 'arrived_at'",
        ),
        (
            "mooncake",
            '{"timestamp": 0, "input_length": 1, "output_length": 1}\n{bad\n',
            ":2: invalid JSON",
        ),
        ("mooncake", '{"timestamp": 0, "input_length": 1}\n', ":1: missing field 'output_length'"),
        (
            "mooncake",
            '{"timestamp": 0, "input_length": 1, "output_length": 1, "hash_ids": "x"}\n',
            ":1: field 'hash_ids'",
        ),
        ("synthetic", '{"n": 5, "rate": 1, "bogus": 1}', ":1: unknown field 'bogus'"),
    ],
)
def test_malformed_lines_name_file_and_line(tmp_path, fmt, text, where):
    p = write(tmp_path, "bad.txt", text)
    with pytest.raises(InputError) as e:
        load_trace(p, fmt)
    assert str(p) in str(e.value)
    assert where in str(e.value)


def test_missing_file_and_format(tmp_path):
    with pytest.raises(InputError, match="not found"):
        load_azure(tmp_path / "none.csv")
    with pytest.raises(InputError, match="format"):
        load_trace(tmp_path / "x", "parquet")


@settings(max_examples=25, deadline=None)
@given(scale=st.floats(0.1, 10.0), seed=st.integers(0, 100))
def test_rate_scale_multiplies_rate(scale, seed):
    t = synthetic_trace(100, rate=3.0, seed=seed)
    s = t.scaled(scale)
    assert s.rate == pytest.approx(t.rate * scale, rel=1e-9)
    assert np.array_equal(s.prompt, t.prompt)


def test_trace_is_immutable_and_validated():
    t = synthetic_trace(10, rate=1.0)
    with pytest.raises(ValueError):
        t.prompt[0] = 5
    with pytest.raises(InputError, match="non-decreasing"):
        Trace(arrival=np.array([1.0, 0.0]), prompt=np.array([1, 1]), output=np.array([1, 1]))
    with pytest.raises(InputError, match="rate_scale"):
        t.scaled(0.0)


def test_tenants_and_take():
    t = synthetic_trace(200, rate=1.0, seed=3)
    tt = tag_context_tenants(t, value={"short-context": 5.0})
    short = tt.tenant == 0
    assert np.all(tt.prompt[short] <= np.median(t.prompt))
    assert np.all(tt.value[short] == 5.0) and np.all(tt.latency_price[~short] == 0.25)
    sub = tt.take([5, 2, 9])
    assert sub.arrival[0] == 0.0 and len(sub) == 3
    assert sub.prompt.tolist() == [t.prompt[2], t.prompt[5], t.prompt[9]]
