"""Price tables in LiteLLM's format and exact ΔC arithmetic."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, strategies as st

from margin.core.prices import InputError
from margin.ledger.importers import usage_from_anthropic
from margin.ledger.pricing import PriceTable
from margin.ledger.records import TokenUsage

# A fragment in the exact shape of LiteLLM's model_prices_and_context_window.json.
LITELLM_FRAGMENT = """{
    "sample_spec": {
        "input_cost_per_token": 0.0,
        "litellm_provider": "one of https://docs.litellm.ai/docs/providers",
        "max_tokens": "LEGACY parameter",
        "output_cost_per_reasoning_token": 0.0,
        "output_cost_per_token": 0.0
    },
    "1024-x-1024/dall-e-2": {
        "input_cost_per_pixel": 1.9e-08,
        "litellm_provider": "openai",
        "mode": "image_generation",
        "output_cost_per_pixel": 0.0
    },
    "o-reasoner": {
        "cache_read_input_token_cost": 5.5e-07,
        "input_cost_per_token": 1.1e-06,
        "litellm_provider": "openai",
        "max_input_tokens": 200000,
        "mode": "chat",
        "output_cost_per_reasoning_token": 8.8e-06,
        "output_cost_per_token": 4.4e-06,
        "supports_reasoning": true
    },
    "plain-model": {
        "input_cost_per_token": 3e-07,
        "output_cost_per_token": 1.2e-06,
        "mode": "chat"
    },
    "embedder": {
        "input_cost_per_token": 1e-07,
        "mode": "embedding"
    }
}"""


@pytest.fixture
def table(tmp_path: Path) -> PriceTable:
    p = tmp_path / "model_prices_and_context_window.json"
    p.write_text(LITELLM_FRAGMENT)
    return PriceTable.load(p)


def test_load_litellm_format(table: PriceTable) -> None:
    assert sorted(table) == ["embedder", "o-reasoner", "plain-model"]  # no sample_spec, no images
    r = table["o-reasoner"]
    assert (r.input, r.cache_read, r.output, r.reasoning) == (
        Decimal("1.1e-06"),
        Decimal("5.5e-07"),
        Decimal("4.4e-06"),
        Decimal("8.8e-06"),
    )
    assert r.cache_write == r.input  # missing cache-write price falls back to input
    p = table["plain-model"]
    assert p.cache_read == p.input == Decimal("3e-07")  # fallback to input
    assert p.reasoning == p.output == Decimal("1.2e-06")  # fallback to output
    assert table["embedder"].output == 0


def test_cost_arithmetic_is_exact(table: PriceTable) -> None:
    u = TokenUsage(input=1000, cached_input=2000, cache_write=0, output=300, reasoning=700)
    # 1000·1.1e-6 + 2000·5.5e-7 + 300·4.4e-6 + 700·8.8e-6 = 0.0011 + 0.0011 + 0.00132 + 0.00616
    assert table.cost_usd("o-reasoner", u) == Decimal("0.00968")
    assert table.cost_nanos("o-reasoner", u) == 9_680_000
    # one token of a 3e-07 model is 300 nano-dollars exactly (a float product would not be)
    assert table.cost_nanos("plain-model", TokenUsage(input=1)) == 300
    # 7 tokens at 1.25e-06 (claude-3-haiku output) = 8750 nUSD; half-even rounding only once
    assert PriceTable.builtin().cost_nanos("claude-3-haiku-20240307", TokenUsage(output=7)) == 8750


def test_rounding_happens_once() -> None:
    t = PriceTable.from_mapping(
        {"m": {"input_cost_per_token": "0.0000000004", "output_cost_per_token": 0}}
    )
    # each token is 0.4 nUSD: summing rounded per-token costs would give 0
    assert t.cost_nanos("m", TokenUsage(input=10)) == 4
    assert t.cost_nanos("m", TokenUsage(input=1)) == 0
    assert t.cost_nanos("m", TokenUsage(input=5)) == 2  # 2.0 exactly
    t2 = PriceTable.from_mapping({"m": {"input_cost_per_token": "0.0000000005"}})
    assert t2.cost_nanos("m", TokenUsage(input=1)) == 0  # 0.5 -> 0 (half-even)
    assert t2.cost_nanos("m", TokenUsage(input=3)) == 2  # 1.5 -> 2


@given(
    st.builds(TokenUsage, *[st.integers(0, 10**8)] * 5),
    st.builds(TokenUsage, *[st.integers(0, 10**8)] * 5),
)
def test_cost_is_additive_and_monotone(a: TokenUsage, b: TokenUsage) -> None:
    t = PriceTable.builtin()
    for model in ("gpt-4o", "claude-haiku-4-5", "cerebras/llama3.1-70b"):
        assert t.cost_usd(model, a + b) == t.cost_usd(model, a) + t.cost_usd(model, b)
        assert (
            abs(t.cost_nanos(model, a + b) - t.cost_nanos(model, a) - t.cost_nanos(model, b)) <= 1
        )
        assert t.cost_nanos(model, a + b) >= t.cost_nanos(model, a)


def test_builtin_table() -> None:
    t = PriceTable.builtin()
    assert 8 <= len(t) <= 15
    for m in t:
        p = t[m]
        assert p.input > 0 and p.output > 0 and p.output >= p.input, m
        assert p.cache_read <= p.input, m
    assert t["gpt-4o"].input == Decimal("2.5e-06") and t["gpt-4o"].output == Decimal("1e-05")
    assert t["gpt-4-1106-preview"].output == Decimal("3e-05")
    assert (
        "mixtral-8x7b" in t
        and t["mixtral-8x7b"] == t["bedrock/us-west-2/mistral.mixtral-8x7b-instruct-v0:1"]
    )
    assert "mistralai/mixtral-8x7b-chat" in t  # RouterBench's name for it
    with pytest.raises(InputError, match="unknown model 'gpt-9'"):
        t.cost_nanos("gpt-9", TokenUsage(input=1))


@pytest.mark.parametrize(
    ("data", "match"),
    [
        (
            {"m": {"input_cost_per_token": -1e-6}},
            r"model 'm' field 'input_cost_per_token': price must be >= 0",
        ),
        ({"m": {"input_cost_per_token": "abc"}}, r"cannot read 'abc'"),
        ({"m": {"input_cost_per_token": True}}, r"expected a number"),
        ({"m": [1, 2]}, r"model 'm': expected an object"),
        (
            {"m": {"input_cost_per_token": 1e-6}, "_aliases": {"x": "y"}},
            r"alias 'x' points to unknown model 'y'",
        ),
    ],
)
def test_bad_tables(data: dict[str, Any], match: str) -> None:
    with pytest.raises(InputError, match=match):
        PriceTable.from_mapping(data)


def test_bad_files(tmp_path: Path) -> None:
    bad = tmp_path / "prices.json"
    bad.write_text('{\n  "m": {"input_cost_per_token": 1e-6,}\n}')
    with pytest.raises(InputError, match=r"prices\.json: line 2: invalid JSON"):
        PriceTable.load(bad)
    with pytest.raises(InputError, match="not found"):
        PriceTable.load(tmp_path / "none.json")


def test_builtin_agrees_with_routerarena_price_table(shared_data: Any) -> None:
    """RouterArena (Apache-2.0) publishes USD per million tokens; where it lists one of our
    models, the list prices must agree."""
    theirs = json.loads(shared_data("routing/routerarena/model_cost.json").read_text())
    t = PriceTable.builtin()
    common = [m for m in t if m in theirs]
    assert len(common) >= 8
    for m in common:
        assert t[m].input * 10**6 == Decimal(str(theirs[m]["input_token_price_per_million"])), m
        assert t[m].output * 10**6 == Decimal(str(theirs[m]["output_token_price_per_million"])), m


def test_routerarena_costs_reproduced(shared_data: Any) -> None:
    """Recompute, from its token usage, the per-query cost RouterArena logged for
    claude-3-haiku (809 queries), and the total."""
    path = shared_data("routing/routerarena/claude-3-haiku-20240307.jsonl")
    t = PriceTable.builtin()
    total_nanos, logged = 0, []
    for line in path.read_text().splitlines():
        row = json.loads(line)
        usage = usage_from_anthropic(row["token_usage"])
        nanos = t.cost_nanos(row["llm_selected"], usage)
        logged.append(row["evaluation_result"]["inference_cost"])
        assert nanos / 1e9 == pytest.approx(logged[-1], rel=1e-9, abs=1e-15)
        total_nanos += nanos
    assert len(logged) == 809
    assert total_nanos / 1e9 == pytest.approx(sum(logged), rel=1e-9)
