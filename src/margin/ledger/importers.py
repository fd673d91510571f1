"""Token usage and ledger records from provider payloads and OpenTelemetry GenAI spans.

Providers count overlapping figures; :class:`~margin.ledger.records.TokenUsage` keeps
five non-overlapping buckets, so importers subtract:

* **OpenAI** Chat Completions (``prompt_tokens``, ``completion_tokens``,
  ``prompt_tokens_details.cached_tokens``, ``completion_tokens_details.reasoning_tokens``)
  and Responses API (``input_tokens``, ``output_tokens``, ``input_tokens_details.
  cached_tokens``, ``output_tokens_details.reasoning_tokens``): cached tokens are *inside*
  the prompt count and reasoning tokens *inside* the completion count, so
  ``input = prompt − cached`` and ``output = completion − reasoning``.
* **Anthropic** Messages: ``input_tokens`` already *excludes* ``cache_read_input_tokens``
  and ``cache_creation_input_tokens``; nothing is subtracted.
* **OpenTelemetry GenAI** semantic conventions: ``gen_ai.usage.input_tokens`` SHOULD
  include ``gen_ai.usage.cache_read.input_tokens`` and
  ``gen_ai.usage.cache_creation.input_tokens``, and ``gen_ai.usage.output_tokens``
  includes reasoning tokens (``gen_ai.usage.reasoning.output_tokens``), so both are
  subtracted. Sources: the OpenTelemetry semantic-conventions registry as published in
  @opentelemetry/semantic-conventions (``ATTR_GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS``,
  ``ATTR_GEN_AI_USAGE_CACHE_CREATION_INPUT_TOKENS``: "The value SHOULD be included in
  gen_ai.usage.input_tokens"), https://open-telemetry.github.io/opentelemetry-js/ , and
  Sentry's conventions registry (``gen_ai.usage.output_tokens``: "including reasoning
  tokens"; ``gen_ai.usage.reasoning.output_tokens``),
  https://getsentry.github.io/relay/relay_conventions/attributes/ . The deprecated names
  ``gen_ai.usage.prompt_tokens`` / ``gen_ai.usage.completion_tokens`` are read as
  fallbacks.

A count that makes a bucket negative (e.g. cached > input) raises
:class:`~margin.core.prices.InputError` naming the fields.

Standard library only.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Iterable, Iterator, Mapping
from typing import TYPE_CHECKING, Any

from margin.core.prices import InputError, Option, PriceVector
from margin.ledger.records import LAYERS, NANOS_PER_USD, LedgerRecord, Outcome, TokenUsage

if TYPE_CHECKING:
    from margin.ledger.pricing import PriceTable

__all__ = [
    "records_from_otel_spans",
    "usage_from_anthropic",
    "usage_from_openai",
    "usage_from_otel",
]

OTEL_INPUT = "gen_ai.usage.input_tokens"
OTEL_OUTPUT = "gen_ai.usage.output_tokens"
OTEL_CACHE_READ = "gen_ai.usage.cache_read.input_tokens"
OTEL_CACHE_CREATION = "gen_ai.usage.cache_creation.input_tokens"
OTEL_REASONING = "gen_ai.usage.reasoning.output_tokens"
_OTEL_DEPRECATED = {
    OTEL_INPUT: "gen_ai.usage.prompt_tokens",
    OTEL_OUTPUT: "gen_ai.usage.completion_tokens",
}


def _count(where: str, name: str, value: Any) -> int:
    """A token count: a non-negative integer (int-valued floats and digit strings, as
    OTLP/JSON encodes int64, are accepted)."""
    if value is None:
        return 0
    if isinstance(value, bool):
        raise InputError(f"{where}: field '{name}' must be a token count, got {value!r}")
    if (isinstance(value, float) and value.is_integer()) or (
        isinstance(value, str) and value.strip().isdigit()
    ):
        value = int(value)
    if not isinstance(value, int) or value < 0:
        raise InputError(f"{where}: field '{name}' must be an integer >= 0, got {value!r}")
    return value


def _sub(where: str, total_name: str, total: int, part_names: tuple[str, ...], parts: int) -> int:
    if parts > total:
        named = " + ".join(f"'{p}'" for p in part_names)
        raise InputError(
            f"{where}: field {named} ({parts}) exceeds '{total_name}' ({total}), "
            "which should include it"
        )
    return total - parts


def _details(usage: Mapping[str, Any], key: str, where: str) -> Mapping[str, Any]:
    d = usage.get(key)
    if d is None:
        return {}
    if not isinstance(d, Mapping):
        raise InputError(f"{where}: field '{key}' must be an object, got {type(d).__name__}")
    return d


def usage_from_openai(usage: Mapping[str, Any]) -> TokenUsage:
    """Non-overlapping buckets from an OpenAI ``usage`` object (as a mapping, e.g.
    ``response.usage.model_dump()``), Chat Completions or Responses API.

    Examples
    --------
    >>> usage_from_openai({"prompt_tokens": 1200, "completion_tokens": 300,
    ...     "prompt_tokens_details": {"cached_tokens": 1000},
    ...     "completion_tokens_details": {"reasoning_tokens": 256}})
    TokenUsage(input=200, cached_input=1000, cache_write=0, output=44, reasoning=256)
    >>> usage_from_openai({"input_tokens": 10, "output_tokens": 5,
    ...     "input_tokens_details": {"cached_tokens": 0}})
    TokenUsage(input=10, cached_input=0, cache_write=0, output=5, reasoning=0)
    """
    where = "OpenAI usage"
    if not isinstance(usage, Mapping):
        raise InputError(f"{where}: expected an object, got {type(usage).__name__}")
    if "prompt_tokens" in usage or "completion_tokens" in usage:
        pin, pout, din, dout = (
            "prompt_tokens",
            "completion_tokens",
            "prompt_tokens_details",
            "completion_tokens_details",
        )
    elif "input_tokens" in usage or "output_tokens" in usage:
        pin, pout, din, dout = (
            "input_tokens",
            "output_tokens",
            "input_tokens_details",
            "output_tokens_details",
        )
    else:
        raise InputError(
            f"{where}: missing field 'prompt_tokens' (Chat Completions) "
            "or 'input_tokens' (Responses API)"
        )
    prompt = _count(where, pin, usage.get(pin))
    completion = _count(where, pout, usage.get(pout))
    cached_name, reasoning_name = f"{din}.cached_tokens", f"{dout}.reasoning_tokens"
    cached = _count(where, cached_name, _details(usage, din, where).get("cached_tokens"))
    reasoning = _count(where, reasoning_name, _details(usage, dout, where).get("reasoning_tokens"))
    return TokenUsage(
        input=_sub(where, pin, prompt, (cached_name,), cached),
        cached_input=cached,
        output=_sub(where, pout, completion, (reasoning_name,), reasoning),
        reasoning=reasoning,
    )


def usage_from_anthropic(usage: Mapping[str, Any]) -> TokenUsage:
    """Buckets from an Anthropic Messages ``usage`` object (``input_tokens`` already
    excludes the cache read and cache creation counts, so nothing is subtracted).

    Examples
    --------
    >>> usage_from_anthropic({"input_tokens": 50, "output_tokens": 400,
    ...     "cache_read_input_tokens": 9000, "cache_creation_input_tokens": 1200})
    TokenUsage(input=50, cached_input=9000, cache_write=1200, output=400, reasoning=0)
    """
    where = "Anthropic usage"
    if not isinstance(usage, Mapping):
        raise InputError(f"{where}: expected an object, got {type(usage).__name__}")
    if "input_tokens" not in usage and "output_tokens" not in usage:
        raise InputError(f"{where}: missing field 'input_tokens'")
    return TokenUsage(
        input=_count(where, "input_tokens", usage.get("input_tokens")),
        cached_input=_count(where, "cache_read_input_tokens", usage.get("cache_read_input_tokens")),
        cache_write=_count(
            where, "cache_creation_input_tokens", usage.get("cache_creation_input_tokens")
        ),
        output=_count(where, "output_tokens", usage.get("output_tokens")),
    )


def _otel_get(attrs: Mapping[str, Any], name: str) -> tuple[str, Any]:
    if name in attrs:
        return name, attrs[name]
    old = _OTEL_DEPRECATED.get(name)
    if old is not None and old in attrs:
        return old, attrs[old]
    return name, None


def usage_from_otel(attributes: Mapping[str, Any], *, where: str = "span") -> TokenUsage:
    """Buckets from OpenTelemetry GenAI span attributes (cache reads and writes counted
    inside ``gen_ai.usage.input_tokens``, reasoning inside ``gen_ai.usage.output_tokens``).

    Examples
    --------
    >>> usage_from_otel({"gen_ai.usage.input_tokens": 1500,
    ...                  "gen_ai.usage.output_tokens": 300,
    ...                  "gen_ai.usage.cache_read.input_tokens": 1000,
    ...                  "gen_ai.usage.cache_creation.input_tokens": 200,
    ...                  "gen_ai.usage.reasoning.output_tokens": 100})
    TokenUsage(input=300, cached_input=1000, cache_write=200, output=200, reasoning=100)
    """
    if not isinstance(attributes, Mapping):
        raise InputError(f"{where}: attributes must be an object, got {type(attributes).__name__}")
    in_name, in_v = _otel_get(attributes, OTEL_INPUT)
    out_name, out_v = _otel_get(attributes, OTEL_OUTPUT)
    total_in = _count(where, in_name, in_v)
    total_out = _count(where, out_name, out_v)
    cr = _count(where, OTEL_CACHE_READ, attributes.get(OTEL_CACHE_READ))
    cw = _count(where, OTEL_CACHE_CREATION, attributes.get(OTEL_CACHE_CREATION))
    rs = _count(where, OTEL_REASONING, attributes.get(OTEL_REASONING))
    return TokenUsage(
        input=_sub(where, in_name, total_in, (OTEL_CACHE_READ, OTEL_CACHE_CREATION), cr + cw),
        cached_input=cr,
        cache_write=cw,
        output=_sub(where, out_name, total_out, (OTEL_REASONING,), rs),
        reasoning=rs,
    )


# -- spans ----------------------------------------------------------------------------


def _otlp_value(v: Any, where: str) -> Any:
    """Decode an OTLP/JSON ``AnyValue`` (``{"stringValue": ...}`` etc.)."""
    if not isinstance(v, Mapping):
        return v
    if "stringValue" in v:
        return v["stringValue"]
    if "intValue" in v:
        try:
            return int(v["intValue"])
        except (TypeError, ValueError):
            raise InputError(f"{where}: bad intValue {v['intValue']!r}") from None
    if "doubleValue" in v:
        return float(v["doubleValue"])
    if "boolValue" in v:
        return bool(v["boolValue"])
    if "arrayValue" in v:
        return [_otlp_value(x, where) for x in (v["arrayValue"] or {}).get("values", [])]
    if "kvlistValue" in v:
        return _otlp_attrs((v["kvlistValue"] or {}).get("values", []), where)
    if "bytesValue" in v:
        return v["bytesValue"]
    return None


def _otlp_attrs(attrs: Any, where: str) -> dict[str, Any]:
    if attrs is None:
        return {}
    if isinstance(attrs, Mapping):  # already flat
        return {str(k): _otlp_value(v, where) for k, v in attrs.items()}
    if not isinstance(attrs, list):
        raise InputError(f"{where}: field 'attributes' must be a list or an object")
    out: dict[str, Any] = {}
    for kv in attrs:
        if not isinstance(kv, Mapping) or "key" not in kv:
            raise InputError(f"{where}: attribute entries need a 'key', got {kv!r}")
        out[str(kv["key"])] = _otlp_value(kv.get("value"), where)
    return out


def _flatten_otlp(doc: Mapping[str, Any], where: str) -> Iterator[dict[str, Any]]:
    """Spans of an OTLP ``ExportTraceServiceRequest`` (``resourceSpans``) as flat dicts
    with the resource attributes merged under the span's own."""
    rs_list = doc.get("resourceSpans", doc.get("resource_spans"))
    if not isinstance(rs_list, list):
        raise InputError(f"{where}: field 'resourceSpans' must be a list")
    for i, rs in enumerate(rs_list):
        w = f"{where}: resourceSpans[{i}]"
        if not isinstance(rs, Mapping):
            raise InputError(f"{w}: expected an object")
        res_attrs = _otlp_attrs((rs.get("resource") or {}).get("attributes"), w)
        scopes = rs.get("scopeSpans", rs.get("scope_spans", rs.get("instrumentationLibrarySpans")))
        for j, ss in enumerate(scopes or []):
            for k, span in enumerate((ss or {}).get("spans") or []):
                ws = f"{w}.scopeSpans[{j}].spans[{k}]"
                if not isinstance(span, Mapping):
                    raise InputError(f"{ws}: expected an object")
                flat = dict(span)
                flat["attributes"] = {**res_attrs, **_otlp_attrs(span.get("attributes"), ws)}
                flat["_where"] = ws
                yield flat


def _read_span_file(path: str) -> list[dict[str, Any]]:
    try:
        with open(path, encoding="utf-8") as f:
            text = f.read()
    except FileNotFoundError:
        raise InputError(f"{path}: span file not found") from None
    except IsADirectoryError:
        raise InputError(
            f"{path}: is a directory, expected an OTLP/JSON or JSON-lines file"
        ) from None
    except UnicodeDecodeError:
        raise InputError(f"{path}: not a UTF-8 text file") from None
    docs: list[tuple[str, Any]] = []
    try:
        docs.append((path, json.loads(text)))
    except json.JSONDecodeError as whole_err:
        lines = [ln for ln in enumerate(text.splitlines(), 1) if ln[1].strip()]
        if len(lines) <= 1:
            raise InputError(
                f"{path}: line {whole_err.lineno}: invalid JSON ({whole_err.msg})"
            ) from None
        for n, line in lines:
            try:
                docs.append((f"{path}: line {n}", json.loads(line)))
            except json.JSONDecodeError as e:
                raise InputError(f"{path}: line {n}: invalid JSON ({e.msg})") from None
    out: list[dict[str, Any]] = []
    for where, doc in docs:
        out.extend(_spans_of(doc, where))
    return out


def _spans_of(doc: Any, where: str) -> Iterator[dict[str, Any]]:
    if isinstance(doc, list):
        for i, item in enumerate(doc):
            yield from _spans_of(item, f"{where}[{i}]")
    elif isinstance(doc, Mapping):
        if "resourceSpans" in doc or "resource_spans" in doc:
            yield from _flatten_otlp(doc, where)
        else:
            flat = dict(doc)
            flat.setdefault("_where", where)
            yield flat
    else:
        raise InputError(f"{where}: expected a span object or an OTLP export, got {doc!r}")


def _first(span: Mapping[str, Any], *keys: str) -> Any:
    for k in keys:
        v = span.get(k)
        if v is not None:
            return v
        ctx = span.get("context")
        if isinstance(ctx, Mapping) and ctx.get(k) is not None:
            return ctx[k]
    return None


def _hex_id(v: Any) -> str | None:
    if v is None or v == "":
        return None
    s = str(v)
    return s[2:] if s.startswith("0x") else s


def _nanos(v: Any, where: str, name: str) -> int | None:
    if v is None:
        return None
    if isinstance(v, int | float) and not isinstance(v, bool):
        return int(v)
    if isinstance(v, str) and v.isdigit():
        return int(v)
    raise InputError(f"{where}: field '{name}' must be unix nanoseconds, got {v!r}")


def records_from_otel_spans(
    spans: Iterable[Mapping[str, Any]] | str | os.PathLike[str],
    *,
    prices: PriceTable | None = None,
    tenant_attribute: str = "tenant.id",
    layer: str = "routing",
    price_vector: PriceVector | None = None,
    alternatives: Mapping[str, float] | None = None,
) -> list[LedgerRecord]:
    """One :class:`LedgerRecord` per GenAI span of an OpenTelemetry trace export.

    Parameters
    ----------
    spans : iterable of mappings, or path
        Span mappings (flat ``{"trace_id", "span_id", "name", "attributes": {...},
        "start_time_unix_nano", "end_time_unix_nano"}``, OTel SDK console-exporter shape
        with a ``context`` object, or OTLP ``{"traceId", "spanId", "startTimeUnixNano",
        "attributes": [{"key", "value": {"intValue": ...}}]}``), OTLP export requests
        (``{"resourceSpans": [...]}``), or the path of a file holding one JSON document
        of those or JSON lines (one per line, as the Collector's file exporter writes).
    prices : PriceTable, optional
        When given, ``cost_nanos`` is ΔC of the span's usage on its model (an unknown
        model raises InputError); otherwise cost is 0 and the outcome cost unknown.
    tenant_attribute : str
        Span (or resource) attribute naming who pays; ``"default"`` when absent.
    layer : str
        Ledger layer of the decisions (a model call is a routing decision by default).
    price_vector : PriceVector, optional
        The prices in force; telemetry does not carry (V, λ, ρ), so the default is the
        zero vector, meaning "not recorded".
    alternatives : mapping of model → expected quality ΔQ, optional
        The models that could have answered, with the quality you expect of each (e.g.
        your eval pass rates). With ``prices``, each record then carries one option per
        alternative, ΔC = that model's price of the span's own token usage, so the
        routing detectors of :mod:`margin.diagnose` can test Eq. 1 on your logs
        (was this call over- or under-routed at value V?). The model that ran must be
        one of them.

    Returns
    -------
    list of LedgerRecord
        In input order. A span is a GenAI span when it has ``gen_ai.request.model`` or
        ``gen_ai.response.model``; other spans are skipped. ``choice`` is the response
        model (the one that actually ran), else the request model; ``request_id`` is the
        trace id; ``record_id`` is ``<trace id>-<span id>``; ``options`` is empty
        (telemetry records no alternatives) unless ``alternatives`` is given; ``outcome``
        holds the realized latency (span duration) and cost; attributes keep operation,
        provider, models, span name/ids.

    Examples
    --------
    >>> recs = records_from_otel_spans([{
    ...     "trace_id": "ab12", "span_id": "cd34", "name": "chat gpt-4o",
    ...     "start_time_unix_nano": 1_700_000_000_000_000_000,
    ...     "end_time_unix_nano": 1_700_000_001_500_000_000,
    ...     "attributes": {"gen_ai.operation.name": "chat",
    ...                    "gen_ai.request.model": "gpt-4o",
    ...                    "gen_ai.usage.input_tokens": 1200,
    ...                    "gen_ai.usage.cache_read.input_tokens": 1000,
    ...                    "gen_ai.usage.output_tokens": 100, "tenant.id": "acme"}}])
    >>> r = recs[0]
    >>> r.choice, r.tenant, r.request_id, r.usage.input, r.outcome.latency
    ('gpt-4o', 'acme', 'ab12', 200, 1.5)
    """
    if layer not in LAYERS:
        raise InputError(f"records_from_otel_spans: field 'layer' must be one of {LAYERS}")
    if isinstance(spans, str | os.PathLike):
        items: list[dict[str, Any]] = _read_span_file(os.fspath(spans))
    else:
        items = []
        for i, s in enumerate(spans):
            items.extend(_spans_of(s, f"span {i}"))
    pv = price_vector if price_vector is not None else PriceVector(0.0)
    if alternatives is not None and prices is None:
        raise InputError("alternatives: a price table is needed to cost the alternatives")
    alt = {} if alternatives is None else _alternatives(alternatives)
    out: list[LedgerRecord] = []
    for n, span in enumerate(items):
        where = str(span.get("_where", f"span {n}"))
        attrs = _otlp_attrs(span.get("attributes"), where)
        req_model = attrs.get("gen_ai.request.model")
        resp_model = attrs.get("gen_ai.response.model")
        model = resp_model or req_model
        if not model:
            continue
        if not isinstance(model, str):
            raise InputError(f"{where}: attribute 'gen_ai.response.model' must be a string")
        trace_id = _hex_id(_first(span, "trace_id", "traceId"))
        span_id = _hex_id(_first(span, "span_id", "spanId"))
        if trace_id is None:
            raise InputError(f"{where}: missing field 'trace_id' (or 'traceId')")
        if span_id is None:
            raise InputError(f"{where}: missing field 'span_id' (or 'spanId')")
        usage = usage_from_otel(attrs, where=where)
        start = _nanos(_first(span, "start_time_unix_nano", "startTimeUnixNano"), where, "start")
        end = _nanos(_first(span, "end_time_unix_nano", "endTimeUnixNano"), where, "end")
        latency = (end - start) / 1e9 if start is not None and end is not None else None
        if latency is not None and latency < 0:
            raise InputError(f"{where}: span ends before it starts")
        cost = prices.cost_nanos(model, usage) if prices is not None else 0
        options: tuple[Option, ...] = ()
        if alt:
            assert prices is not None
            if model not in alt:
                raise InputError(f"{where}: model '{model}' is not among the alternatives")
            options = tuple(
                Option(name, q, prices.cost_nanos(name, usage) / NANOS_PER_USD)
                for name, q in alt.items()
            )
        tenant = attrs.get(tenant_attribute)
        extra: dict[str, Any] = {
            "source": "otel",
            "trace_id": trace_id,
            "span_id": span_id,
            "span_name": span.get("name"),
            "operation": attrs.get("gen_ai.operation.name"),
            "provider": attrs.get("gen_ai.provider.name", attrs.get("gen_ai.system")),
            "request_model": req_model,
            "response_model": resp_model,
        }
        kwargs: dict[str, Any] = {}
        ts = start if start is not None else end
        if ts is not None:
            kwargs["timestamp"] = ts / 1e9
        out.append(
            LedgerRecord(
                request_id=trace_id,
                layer=layer,
                choice=model,
                options=options,
                prices=pv,
                tenant=str(tenant) if tenant not in (None, "") else "default",
                usage=usage,
                cost_nanos=cost,
                outcome=Outcome(cost_nanos=cost if prices is not None else None, latency=latency),
                record_id=f"{trace_id}-{span_id}",
                attributes={k: v for k, v in extra.items() if v is not None},
                **kwargs,
            )
        )
    return out


def _alternatives(alternatives: Mapping[str, float]) -> dict[str, float]:
    out: dict[str, float] = {}
    for name, q in alternatives.items():
        if isinstance(q, bool) or not isinstance(q, int | float) or not math.isfinite(q):
            raise InputError(f"alternatives: quality of '{name}' must be a number, got {q!r}")
        out[str(name)] = float(q)
    if not out:
        raise InputError("alternatives: give at least one model")
    return out
