"""The token-aware report: content, numbers, escaping, offline-ness, atomic write."""

from __future__ import annotations

import base64
import io
import math
import re
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from margin.core.prices import InputError, Option, PriceVector
from margin.diagnose import diagnose
from margin.ledger.records import LAYERS, LedgerRecord, TokenUsage, nanos_to_usd
from margin.report import (
    LedgerFrame,
    build_report,
    format_usd,
    parse_comparison,
    write_report,
)
from margin.report.page import fmt_number

IMG = re.compile(r'<img alt="([^"]*)" src="([^"]*)"')


def _pngs(page: str) -> dict[str, bytes]:
    out = {}
    for alt, src in IMG.findall(page):
        prefix = "data:image/png;base64,"
        assert src.startswith(prefix), src[:40]
        out[alt] = base64.b64decode(src[len(prefix) :], validate=True)
    return out


def _rows(page: str, section: str) -> list[str]:
    body = page.split(f'<section id="{section}">', 1)[1].split("</section>", 1)[0]
    return re.findall(r"<tr>(.*?)</tr>", body.split("<tbody>", 1)[1], flags=re.S)


def test_sections_and_headline_numbers(records: list[LedgerRecord]) -> None:
    page = build_report(records, title="Sample")
    for section in ("summary", "layers", "tenants", "findings", "regret", "requests"):
        assert f'<section id="{section}">' in page
    assert '<section id="comparison">' not in page
    assert "<title>Sample</title>" in page
    total = sum(r.cost_nanos for r in records)
    assert f'<div class="v">{format_usd(total)}</div>' in page
    tokens = sum(r.usage.total for r in records)
    assert f"{tokens:,}" in page
    assert "130 decisions · 40 requests · 4 tenants" in page
    # Layers in the paper's order, each with its exact money.
    layer_rows = _rows(page, "layers")
    names = [re.search(r'<td class="key">(.*?)</td>', r).group(1) for r in layer_rows[:4]]  # type: ignore[union-attr]
    assert names == ["routing", "agent", "serving", "capital"]
    capital = sum(r.cost_nanos for r in records if r.layer == "capital")
    assert f'<td class="n">{format_usd(capital)}</td>' in layer_rows[3]


def test_findings_are_shown_with_inequality_and_examples(records: list[LedgerRecord]) -> None:
    findings = diagnose(records)
    page = build_report(records, findings=findings)
    hits = [f for f in findings if f.count]
    assert len(hits) >= 3
    assert f"{len(hits)} of {len(findings)} failure modes found" in page
    for f in hits:
        assert f'<tr class="finding-hit"><td>{f.mode}</td><td class="n">{f.count:,}</td>' in page
        assert f"{f.mode}: {len(f.examples)} example" in page
        for ex in f.examples:
            assert ex["request_id"] in page
    # Passing no finding replaces the detectors' output.
    quiet = build_report(records, findings=[])
    assert "No failure mode found" in quiet
    assert "Loss by failure mode" not in quiet


def test_hostile_names_are_escaped(records: list[LedgerRecord], hostile: str) -> None:
    cmp = {"<img src=x onerror=alert(1)>": {"welfare": 1.0}, "$x^ & co": {"welfare": 2.0}}
    page = build_report(records, comparison=cmp, title="</title><script>x()</script>")
    assert hostile in {r.tenant for r in records}
    assert "<script" not in page.lower()
    assert "&lt;script&gt;alert(&#34;pwned&#34;)&lt;/script&gt;" in page
    assert "&lt;img src=x onerror=alert(1)&gt;" in page
    assert "$x^ &amp; co" in page
    assert "<title>&lt;/title&gt;&lt;script&gt;x()&lt;/script&gt;</title>" in page


def test_page_is_offline_and_images_are_embedded(
    records: list[LedgerRecord], comparison: dict[str, Any]
) -> None:
    import matplotlib.image as mpimg

    page = build_report(records, comparison=comparison)
    assert "http://" not in page and "https://" not in page
    assert "<link" not in page and "@import" not in page and "url(" not in page
    assert "<script" not in page
    for m in re.finditer(r'\b(?:src|href)="([^"]*)"', page):
        assert m.group(1).startswith("data:image/png;base64,")
    images = _pngs(page)
    assert set(images) == {
        "Metrics by regime",
        "Realized vector by layer",
        "Loss by failure mode",
        "Regret by V bucket",
        "Cost against value by layer",
    }
    for name, png in images.items():
        assert png.startswith(b"\x89PNG\r\n\x1a\n"), name
        pixels = mpimg.imread(io.BytesIO(png), format="png")
        assert pixels.shape[0] >= 150 and pixels.shape[1] >= 400, name
        assert np.ptp(pixels[..., :3]) > 0.5, name  # not a blank image


def test_report_is_deterministic(records: list[LedgerRecord]) -> None:
    assert build_report(records) == build_report(iter(records))


def test_per_request_table_is_capped_and_sorted_by_regret(
    make_ledger: Callable[..., list[LedgerRecord]],
) -> None:
    recs = make_ledger(n_requests=60, seed=4)
    page = build_report(recs, max_requests=10)
    assert "Showing the 10 requests with the largest regret, of 60." in page
    rows = _rows(page, "requests")
    assert len(rows) == 10
    regret: dict[str, float] = {}
    for r in recs:
        regret[r.request_id] = regret.get(r.request_id, 0.0) + (r.regret or 0.0)
    expected = sorted(regret, key=lambda k: -regret[k])[:10]
    shown = [re.search(r'<td class="id">(.*?)</td>', r).group(1) for r in rows]  # type: ignore[union-attr]
    assert shown == expected
    top = expected[0]
    assert fmt_number(regret[top]) in rows[0]
    assert "routing: cheap → frontier" in page
    full = build_report(recs, max_requests=1000)
    assert "All 60 requests, largest regret first." in full


def test_comparison_section(records: list[LedgerRecord], comparison: dict[str, Any]) -> None:
    page = build_report(records, comparison=comparison)
    section = page.split('<section id="comparison">', 1)[1].split("</section>", 1)[0]
    assert '<th class="n">shared − siloed</th>' in section
    assert '<tr><td>welfare</td><td class="n">7.5</td><td class="n">11.25</td>' in section
    assert '<td class="n">3.75</td>' in section  # the difference and welfare_gain
    assert "<td>routing</td><td>shared</td>" in section  # per-layer rows
    assert "interaction" in section
    assert "prices" not in section  # non-numeric series are not shown


def test_parse_comparison_shapes_and_errors(comparison: dict[str, Any]) -> None:
    c = parse_comparison(comparison)
    assert c.regimes == ("siloed", "shared")
    assert c.metrics["shared"]["welfare"] == 11.25
    assert c.metrics["siloed"]["success_rate"] == 0.61
    assert c.headline == {"seed": 3.0, "welfare_gain": 3.75}
    assert c.attribution["serving"] == 2.0
    assert [(ly, r) for ly, r, _ in c.layer_rows] == [
        ("routing", "siloed"),
        ("routing", "shared"),
        ("serving", "siloed"),
        ("serving", "shared"),
    ]
    with pytest.raises(InputError, match=r"cmp\.shared\.welfare: must be a finite number"):
        parse_comparison({"shared": {"welfare": math.inf}}, where="cmp")
    with pytest.raises(InputError, match=r"comparison\.siloed: expected a number or a mapping"):
        parse_comparison({"siloed": [1, 2]})
    with pytest.raises(InputError, match="no regime found"):
        parse_comparison({"welfare_gain": 1.0})
    with pytest.raises(InputError, match=r"comparison\.a\.layers\.routing: expected a mapping"):
        parse_comparison({"a": {"layers": {"routing": 3}}})


def test_empty_ledger() -> None:
    page = build_report([])
    assert "The ledger is empty" in page
    assert "<img" not in page
    assert '<section id="requests">' not in page


def test_bad_arguments() -> None:
    with pytest.raises(InputError, match="'title'"):
        build_report([], title="  ")
    with pytest.raises(InputError, match="'max_requests'"):
        build_report([], max_requests=-1)
    with pytest.raises(InputError, match="record 1: expected a LedgerRecord"):
        build_report([{"layer": "routing"}])  # type: ignore[list-item]


def test_write_report_is_atomic(tmp_path: Path, records: list[LedgerRecord]) -> None:
    out = tmp_path / "report.html"
    assert write_report(out, records) == out
    first = out.read_text(encoding="utf-8")
    assert first == build_report(records)
    # A failure part-way leaves the previous file as it was and no temporary file.
    with pytest.raises(InputError):
        write_report(out, records, comparison={"siloed": "x"})
    assert out.read_text(encoding="utf-8") == first
    assert sorted(p.name for p in tmp_path.iterdir()) == ["report.html"]
    with pytest.raises(InputError, match="does not exist"):
        write_report(tmp_path / "nope" / "r.html", records)
    with pytest.raises(InputError, match="is a directory"):
        write_report(tmp_path, records)


# --------------------------------------------------------------- aggregation invariants

OPTS = (Option("a", 0.5, 0.01, latency=1.0, risk=0.1), Option("b", 0.9, 0.05, latency=2.0))


@st.composite
def ledgers(draw: st.DrawFn) -> list[LedgerRecord]:
    n = draw(st.integers(1, 30))
    out = []
    for k in range(n):
        out.append(
            LedgerRecord(
                request_id=f"r{draw(st.integers(0, 8))}",
                layer=draw(st.sampled_from(LAYERS)),
                choice=draw(st.sampled_from(["a", "b", None])),
                options=OPTS,
                prices=PriceVector(
                    draw(st.floats(0.0, 100.0)),
                    latency_price=draw(st.floats(0.0, 1.0)),
                    risk_price=draw(st.floats(0.0, 10.0)),
                ),
                tenant=draw(st.sampled_from(["t1", "t2", "<t3>"])),
                usage=TokenUsage(*draw(st.tuples(*[st.integers(0, 10**6)] * 5))),
                cost_nanos=draw(st.integers(0, 10**12)),
                regret=draw(st.none() | st.floats(0.0, 50.0)),
                record_id=f"id{k}",
                timestamp=float(k),
            )
        )
    return out


@settings(max_examples=60, deadline=None)
@given(ledgers())
def test_breakdowns_conserve_money_tokens_regret_and_surplus(recs: list[LedgerRecord]) -> None:
    f = LedgerFrame(recs)
    total_nanos = sum(r.cost_nanos for r in recs)
    surplus = 0.0
    for r in recs:
        v = r.realized_vector()
        q = r.chosen.quality if r.chosen is not None else 0.0
        surplus += v["V"] * q - v["dC"] - v["lambda_dL"] - v["rho_dR"]
    regret = sum(r.regret for r in recs if r.regret is not None)
    for by in ("layer", "tenant"):
        rows = f.breakdown(by)
        assert sum(g.records for g in rows) == len(recs)
        assert sum(g.cost_nanos for g in rows) == total_nanos  # exact
        for b in ("input", "cached_input", "cache_write", "output", "reasoning", "total"):
            expected = sum(getattr(r.usage, b) for r in recs)
            assert sum(g.tokens[b] for g in rows) == expected
        assert sum(g.regret_total for g in rows) == pytest.approx(regret, abs=1e-9)
        assert sum(g.surplus for g in rows) == pytest.approx(surplus, rel=1e-9, abs=1e-9)
    buckets = f.value_buckets()
    known = {r.request_id for r in recs if r.regret is not None}
    assert sum(b.requests for b in buckets) == len(known)
    assert sum(b.regret_total for b in buckets) == pytest.approx(regret, abs=1e-9)
    top = f.top_requests(1000)
    assert sorted(t.request_id for t in top) == sorted({r.request_id for r in recs})
    regrets = [t.regret or 0.0 for t in top]
    assert regrets == sorted(regrets, reverse=True)


@given(st.integers(-(10**18), 10**18))
def test_format_usd_is_exact(nanos: int) -> None:
    s = format_usd(nanos)
    sign = -1 if s.startswith("−") else 1
    assert Decimal(s.lstrip("−$").replace(",", "")) * sign == nanos_to_usd(nanos)
    assert re.fullmatch(r"−?\$\d{1,3}(,\d{3})*\.\d{2,9}", s)


def test_full_price_card_and_unknown_optimum() -> None:
    opts = (Option("cheap", 0.7, 1.0, latency=2.0, risk=0.5), Option("frontier", 0.9, 5.0))
    p = PriceVector(10.0, latency_price=0.25, risk_price=2.0)
    recs = [
        LedgerRecord("r1", "routing", "cheap", opts, p, regret=0.75, record_id="a"),
        LedgerRecord("r1", "agent", "frontier", opts, p, record_id="b"),
    ]
    page = build_report(recs)
    # Σ over decisions of ΔC + λ·ΔL + ρ·ΔR: (1 + 0.5 + 1) + (5 + 0 + 0).
    assert '<div class="v">$7.5</div>' in page
    assert "routing: cheap → ?" in page
    row = _rows(page, "requests")[0]
    assert '<td class="n">10</td><td class="n">6</td><td class="n">0.5</td>' in row
    assert '<td class="n">1</td><td class="n">0.75</td>' in row
