"""Importers: provider usage payloads and OpenTelemetry GenAI spans (hand-written fixtures
in the documented formats)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, strategies as st

from margin.core.prices import InputError, PriceVector
from margin.ledger.importers import (
    records_from_otel_spans,
    usage_from_anthropic,
    usage_from_openai,
    usage_from_otel,
)
from margin.ledger.pricing import PriceTable
from margin.ledger.records import TokenUsage
from margin.ledger.store import Ledger

# A Chat Completions usage object as the API returns it (o-series model, cached prompt).
OPENAI_CHAT = {
    "prompt_tokens": 2006,
    "completion_tokens": 300,
    "total_tokens": 2306,
    "prompt_tokens_details": {"cached_tokens": 1920, "audio_tokens": 0},
    "completion_tokens_details": {
        "reasoning_tokens": 192,
        "audio_tokens": 0,
        "accepted_prediction_tokens": 0,
        "rejected_prediction_tokens": 0,
    },
}
# A Responses API usage object.
OPENAI_RESPONSES = {
    "input_tokens": 328,
    "input_tokens_details": {"cached_tokens": 128},
    "output_tokens": 52,
    "output_tokens_details": {"reasoning_tokens": 0},
    "total_tokens": 380,
}
# An Anthropic Messages usage object.
ANTHROPIC = {
    "input_tokens": 21,
    "cache_creation_input_tokens": 188086,
    "cache_read_input_tokens": 0,
    "output_tokens": 393,
    "service_tier": "standard",
}


def test_openai_chat_subtracts_overlaps() -> None:
    u = usage_from_openai(OPENAI_CHAT)
    assert u == TokenUsage(input=86, cached_input=1920, cache_write=0, output=108, reasoning=192)
    assert u.prompt_total == OPENAI_CHAT["prompt_tokens"]
    assert u.completion_total == OPENAI_CHAT["completion_tokens"]
    assert u.total == OPENAI_CHAT["total_tokens"]


def test_openai_responses_api() -> None:
    u = usage_from_openai(OPENAI_RESPONSES)
    assert u == TokenUsage(input=200, cached_input=128, output=52)
    assert u.total == OPENAI_RESPONSES["total_tokens"]


def test_openai_null_details() -> None:
    u = usage_from_openai(
        {"prompt_tokens": 10, "completion_tokens": 3, "prompt_tokens_details": None}
    )
    assert u == TokenUsage(input=10, output=3)


def test_openai_cached_exceeding_prompt_names_the_field() -> None:
    bad = {**OPENAI_CHAT, "prompt_tokens_details": {"cached_tokens": 5000}}
    with pytest.raises(
        InputError,
        match=r"'prompt_tokens_details\.cached_tokens' \(5000\) exceeds 'prompt_tokens' \(2006\)",
    ):
        usage_from_openai(bad)
    bad = {**OPENAI_RESPONSES, "output_tokens_details": {"reasoning_tokens": 53}}
    with pytest.raises(InputError, match=r"output_tokens_details\.reasoning_tokens"):
        usage_from_openai(bad)


@pytest.mark.parametrize(
    ("payload", "match"),
    [
        ({"total_tokens": 3}, "missing field 'prompt_tokens'"),
        ({"prompt_tokens": -1, "completion_tokens": 0}, "'prompt_tokens' must be an integer >= 0"),
        ({"prompt_tokens": True, "completion_tokens": 0}, "'prompt_tokens' must be a token count"),
        ({"prompt_tokens": 1.5, "completion_tokens": 0}, "'prompt_tokens'"),
        (
            {"prompt_tokens": 1, "prompt_tokens_details": [1]},
            "'prompt_tokens_details' must be an object",
        ),
    ],
)
def test_openai_bad_payloads(payload: dict[str, Any], match: str) -> None:
    with pytest.raises(InputError, match=match):
        usage_from_openai(payload)


def test_anthropic_buckets_are_already_disjoint() -> None:
    u = usage_from_anthropic(ANTHROPIC)
    assert u == TokenUsage(input=21, cached_input=0, cache_write=188086, output=393)
    assert usage_from_anthropic(
        {"input_tokens": 5, "output_tokens": 1, "cache_read_input_tokens": None}
    ) == TokenUsage(5, 0, 0, 1, 0)
    with pytest.raises(InputError, match="missing field 'input_tokens'"):
        usage_from_anthropic({"usage": {}})


def test_otel_counts_cache_inside_input() -> None:
    attrs = {
        "gen_ai.usage.input_tokens": 2006,
        "gen_ai.usage.output_tokens": 300,
        "gen_ai.usage.cache_read.input_tokens": 1920,
        "gen_ai.usage.reasoning.output_tokens": 192,
    }
    assert usage_from_otel(attrs) == usage_from_openai(OPENAI_CHAT)
    attrs = {
        "gen_ai.usage.input_tokens": 21 + 188086,
        "gen_ai.usage.output_tokens": 393,
        "gen_ai.usage.cache_creation.input_tokens": 188086,
        "gen_ai.usage.cache_read.input_tokens": 0,
    }
    assert usage_from_otel(attrs) == usage_from_anthropic(ANTHROPIC)


def test_otel_deprecated_names_and_errors() -> None:
    old = {"gen_ai.usage.prompt_tokens": 7, "gen_ai.usage.completion_tokens": 2}
    assert usage_from_otel(old) == TokenUsage(input=7, output=2)
    with pytest.raises(
        InputError,
        match=(
            r"'gen_ai\.usage\.cache_read\.input_tokens' \+ "
            r"'gen_ai\.usage\.cache_creation\.input_tokens' \(12\) "
            r"exceeds 'gen_ai\.usage\.input_tokens' \(10\)"
        ),
    ):
        usage_from_otel(
            {
                "gen_ai.usage.input_tokens": 10,
                "gen_ai.usage.cache_read.input_tokens": 8,
                "gen_ai.usage.cache_creation.input_tokens": 4,
            }
        )


@given(st.integers(0, 10**7), st.integers(0, 10**7), st.integers(0, 10**7), st.integers(0, 10**7))
def test_openai_buckets_partition_the_totals(inp: int, cached: int, out: int, rs: int) -> None:
    payload = {
        "prompt_tokens": inp + cached,
        "completion_tokens": out + rs,
        "prompt_tokens_details": {"cached_tokens": cached},
        "completion_tokens_details": {"reasoning_tokens": rs},
    }
    u = usage_from_openai(payload)
    assert u == TokenUsage(input=inp, cached_input=cached, output=out, reasoning=rs)
    assert u.total == inp + cached + out + rs


# -- spans ----------------------------------------------------------------------------


def _kv(key: str, value: Any) -> dict[str, Any]:
    if isinstance(value, str):
        return {"key": key, "value": {"stringValue": value}}
    if isinstance(value, int):
        return {"key": key, "value": {"intValue": str(value)}}  # OTLP/JSON int64 is a string
    return {"key": key, "value": {"doubleValue": value}}


def _otlp_span(
    trace: str, span: str, attrs: dict[str, Any], start: int, dur_ns: int
) -> dict[str, Any]:
    return {
        "traceId": trace,
        "spanId": span,
        "name": f"chat {attrs.get('gen_ai.request.model', '')}",
        "kind": 3,
        "startTimeUnixNano": str(start),
        "endTimeUnixNano": str(start + dur_ns),
        "attributes": [_kv(k, v) for k, v in attrs.items()],
        "status": {},
    }


T0 = 1_731_000_000_000_000_000
OTLP_EXPORT = {
    "resourceSpans": [
        {
            "resource": {"attributes": [_kv("service.name", "agent"), _kv("tenant.id", "acme")]},
            "scopeSpans": [
                {
                    "scope": {"name": "opentelemetry.instrumentation.openai"},
                    "spans": [
                        _otlp_span(
                            "5b8efff798038103d269b633813fc60c",
                            "eee19b7ec3c1b174",
                            {
                                "gen_ai.operation.name": "chat",
                                "gen_ai.provider.name": "openai",
                                "gen_ai.request.model": "gpt-4o",
                                "gen_ai.response.model": "gpt-4o-mini",
                                "gen_ai.usage.input_tokens": 2006,
                                "gen_ai.usage.output_tokens": 300,
                                "gen_ai.usage.cache_read.input_tokens": 1920,
                            },
                            T0,
                            1_250_000_000,
                        ),
                        {  # an HTTP span, not GenAI: skipped
                            "traceId": "5b8efff798038103d269b633813fc60c",
                            "spanId": "aaa19b7ec3c1b174",
                            "name": "POST",
                            "startTimeUnixNano": str(T0),
                            "endTimeUnixNano": str(T0 + 10),
                            "attributes": [_kv("http.request.method", "POST")],
                        },
                        _otlp_span(
                            "5b8efff798038103d269b633813fc60c",
                            "fff19b7ec3c1b175",
                            {
                                "gen_ai.operation.name": "chat",
                                "gen_ai.provider.name": "anthropic",
                                "gen_ai.request.model": "claude-haiku-4-5",
                                "gen_ai.usage.input_tokens": 21 + 188086,
                                "gen_ai.usage.output_tokens": 393,
                                "gen_ai.usage.cache_creation.input_tokens": 188086,
                                "tenant.id": "globex",
                            },
                            T0 + 2_000_000_000,
                            3_000_000_000,
                        ),
                    ],
                }
            ],
        }
    ]
}


def test_otlp_json_file_to_records(tmp_path: Path) -> None:
    path = tmp_path / "traces.json"
    path.write_text(json.dumps(OTLP_EXPORT, indent=2))
    table = PriceTable.builtin()
    recs = records_from_otel_spans(path, prices=table)
    assert len(recs) == 2
    a, b = recs
    assert a.choice == "gpt-4o-mini"  # the model that ran, not the one asked for
    assert a.request_id == "5b8efff798038103d269b633813fc60c" == b.request_id
    assert a.record_id == "5b8efff798038103d269b633813fc60c-eee19b7ec3c1b174"
    assert a.tenant == "acme" and b.tenant == "globex"  # resource attr, overridden per span
    assert a.usage == TokenUsage(input=86, cached_input=1920, output=300)
    assert a.cost_nanos == table.cost_nanos("gpt-4o-mini", a.usage)
    # 86·1.5e-7 + 1920·7.5e-8 + 300·6e-7 = 0.0003369 USD
    assert a.cost_nanos == 336_900
    assert b.cost_nanos == table.cost_nanos("claude-haiku-4-5", TokenUsage(21, 0, 188086, 393, 0))
    assert a.outcome is not None and a.outcome.latency == 1.25 and a.outcome.cost_nanos == 336_900
    assert a.timestamp == T0 / 1e9
    assert a.attributes["operation"] == "chat" and a.attributes["provider"] == "openai"
    assert a.attributes["request_model"] == "gpt-4o"
    assert a.prices == PriceVector(0.0) and a.options == () and a.chosen is None
    assert a.realized_vector()["lambda_dL"] == 0.0
    # they store and summarize like any other record
    with Ledger(tmp_path / "l.db") as led:
        led.extend(recs)
        s = led.summary()
    assert s["cost_nanos"] == a.cost_nanos + b.cost_nanos
    assert s["tokens"]["cache_write"] == 188086


def test_jsonl_and_flat_spans(tmp_path: Path) -> None:
    flat = {
        "name": "chat gpt-4o",
        "context": {"trace_id": "0xabc", "span_id": "0x01"},
        "start_time_unix_nano": T0,
        "end_time_unix_nano": T0 + 500_000_000,
        "attributes": {
            "gen_ai.request.model": "gpt-4o",
            "gen_ai.usage.input_tokens": 10,
            "gen_ai.usage.output_tokens": 2,
            "team": "search",
        },
    }
    path = tmp_path / "spans.jsonl"
    path.write_text(json.dumps(OTLP_EXPORT) + "\n\n" + json.dumps(flat) + "\n")
    recs = records_from_otel_spans(path, tenant_attribute="team", layer="agent")
    assert [r.request_id for r in recs][-1] == "abc"
    assert recs[-1].record_id == "abc-01" and recs[-1].tenant == "search"
    assert recs[0].tenant == "default"  # no 'team' attribute there
    assert all(r.layer == "agent" and r.cost_nanos == 0 for r in recs)
    assert recs[-1].outcome is not None and recs[-1].outcome.cost_nanos is None
    # the same spans passed as mappings give the same records
    again = records_from_otel_spans([OTLP_EXPORT, flat], tenant_attribute="team", layer="agent")
    assert again == recs


@pytest.mark.parametrize(
    ("content", "match"),
    [
        ('{"resourceSpans": [', r"line 1: invalid JSON"),
        ('{"a": 1}\n{"b": \n', r"line 2: invalid JSON"),
        ('{"resourceSpans": 3}', r"'resourceSpans' must be a list"),
        ('[{"attributes": {"gen_ai.request.model": "m"}}]', r"missing field 'trace_id'"),
        (
            '[{"trace_id": "t", "span_id": "s", "attributes": {"gen_ai.request.model": "m", '
            '"gen_ai.usage.input_tokens": 1, "gen_ai.usage.cache_read.input_tokens": 2}}]',
            r"cache_read\.input_tokens.*exceeds 'gen_ai\.usage\.input_tokens'",
        ),
    ],
)
def test_bad_span_files(tmp_path: Path, content: str, match: str) -> None:
    path = tmp_path / "bad.json"
    path.write_text(content)
    with pytest.raises(InputError, match=match) as e:
        records_from_otel_spans(path)
    assert "bad.json" in str(e.value)


def test_span_errors(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="span file not found"):
        records_from_otel_spans(tmp_path / "missing.json")
    with pytest.raises(InputError, match="unknown model 'no-such-model'"):
        records_from_otel_spans(
            [
                {
                    "trace_id": "t",
                    "span_id": "s",
                    "attributes": {"gen_ai.request.model": "no-such-model"},
                }
            ],
            prices=PriceTable.builtin(),
        )
    with pytest.raises(InputError, match="layer"):
        records_from_otel_spans([], layer="kitchen")


def test_alternatives_become_priced_options() -> None:
    from margin.ledger.pricing import PriceTable

    span = {
        "trace_id": "ab",
        "span_id": "01",
        "attributes": {
            "gen_ai.request.model": "gpt-4o",
            "gen_ai.usage.input_tokens": 1000,
            "gen_ai.usage.output_tokens": 100,
        },
    }
    table = PriceTable.builtin()
    (rec,) = records_from_otel_spans(
        [span], prices=table, alternatives={"gpt-4o": 0.9, "gpt-4o-mini": 0.8}
    )
    assert [o.name for o in rec.options] == ["gpt-4o", "gpt-4o-mini"]
    usage = rec.usage
    assert rec.option("gpt-4o-mini").cost == table.cost_nanos("gpt-4o-mini", usage) / 1e9
    assert rec.option("gpt-4o").cost == rec.cost_nanos / 1e9
    with pytest.raises(InputError, match="price table is needed"):
        records_from_otel_spans([span], alternatives={"gpt-4o": 0.9})
    with pytest.raises(InputError, match="quality of 'x'"):
        records_from_otel_spans([span], prices=table, alternatives={"gpt-4o": 0.9, "x": "hi"})
