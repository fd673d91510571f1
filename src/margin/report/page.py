"""The token-aware report: one self-contained, offline HTML page per ledger (Sec. 4).

The paper's "token-aware dashboard" reports, per request, the realized vector
(V, ΔC_i, λ·ΔL_i, ρ·ΔR_i) of Eq. 1 and the gap between the realized and the ex-post
optimal allocation (the regret). The page adds the per-layer and per-tenant breakdowns
(records, exact money, tokens per bucket, regret), the failure modes of Table 2 found by
:func:`margin.diagnose.diagnose`, and an optional comparison of regimes (siloed vs
shared prices).

Offline by construction: the CSS is inline, the plots are PNG ``data:`` URIs, there is
no script, and no URL to fetch. Text from the ledger is HTML-escaped (jinja2 autoescape).
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from margin._io import atomic_write_text
from margin.core.prices import InputError
from margin.ledger.records import LedgerRecord
from margin.report import plots
from margin.report.comparison import Comparison, parse_comparison
from margin.report.frame import TOKEN_BUCKETS, LedgerFrame, format_usd

if TYPE_CHECKING:
    import jinja2

    from margin.diagnose.detectors import Finding

__all__ = ["DEFAULT_TITLE", "build_report", "write_report"]

DEFAULT_TITLE = "Token-aware report"
#: Rows of the per-request table (the requests with the largest regret).
MAX_REQUESTS = 200
TOKEN_LABELS = {
    "input": "input",
    "cached_input": "cached input",
    "cache_write": "cache write",
    "output": "output",
    "reasoning": "reasoning",
}


def fmt_number(x: float | int | None) -> str:
    """A compact, readable number: ``—`` for missing, thousands separators for large
    values, four significant digits otherwise, a true minus sign.

    Examples
    --------
    >>> [fmt_number(x) for x in (None, 0, 12345.678, 0.0012345, -2.5, 3e-7)]
    ['—', '0', '12,345.68', '0.001234', '−2.5', '3.000e-07']
    """
    if x is None:
        return "—"
    if isinstance(x, int) and not isinstance(x, bool):
        s = f"{x:,}"
    else:
        v = float(x)
        if not math.isfinite(v):
            return str(v)
        a = abs(v)
        if v == 0:
            s = "0"
        elif a >= 1e4:
            s = f"{v:,.2f}"
        elif a >= 1e-3:
            s = f"{v:.4g}"
        else:
            s = f"{v:.3e}"
    return s.replace("-", "−", 1) if s.startswith("-") else s


def _fmt_cell(x: Any) -> str:
    if isinstance(x, float | int) and not isinstance(x, bool):
        return fmt_number(x)
    return "—" if x is None else str(x)


def _environment() -> jinja2.Environment:
    import jinja2

    env = jinja2.Environment(
        loader=jinja2.PackageLoader("margin.report", "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["num"] = fmt_number
    env.filters["cell"] = _fmt_cell
    env.filters["usd"] = format_usd
    return env


def _example_table(examples: Sequence[Mapping[str, Any]]) -> tuple[list[str], list[list[Any]]]:
    keys = list(dict.fromkeys(k for e in examples for k in e if k != "record_id"))
    return keys, [[e.get(k) for k in keys] for e in examples]


def build_report(
    records: Iterable[LedgerRecord],
    *,
    findings: Sequence[Finding] | None = None,
    comparison: Mapping[str, Any] | Comparison | None = None,
    title: str = DEFAULT_TITLE,
    max_requests: int = MAX_REQUESTS,
) -> str:
    """Render the token-aware report of a ledger as one self-contained HTML page.

    Parameters
    ----------
    records : iterable of LedgerRecord
        The ledger (a :class:`~margin.ledger.store.Ledger`'s ``records()``, or a list).
    findings : sequence of Finding, optional
        The failure modes to show; by default :func:`margin.diagnose.diagnose` is run
        over ``records``.
    comparison : mapping, optional
        ``{regime: {metric: value}}``, optionally with per-layer rows under
        ``"layers"`` (see :func:`~margin.report.comparison.parse_comparison`);
        ``EconomyResult.as_dict()`` fits as is.
    title : str
        The page title.
    max_requests : int
        Rows of the per-request table: the requests with the largest regret.

    Returns
    -------
    str
        The HTML page. Per request it shows the realized vector of Eq. 1,
        (V, ΔC, λ·ΔL, ρ·ΔR), summed over the request's decisions, and the regret
        S(ex-post optimum) − S(choice) ≥ 0.

    Examples
    --------
    >>> from margin.core.prices import Option, PriceVector
    >>> opts = (Option("cheap", 0.7, 1.0), Option("frontier", 0.9, 5.0))
    >>> rec = LedgerRecord("r1", "routing", "frontier", opts, PriceVector(10.0),
    ...                    tenant="<b>acme</b>", regret=2.0, ex_post_optimal="cheap")
    >>> page = build_report([rec], title="Demo")
    >>> page.startswith("<!DOCTYPE html>"), "&lt;b&gt;acme&lt;/b&gt;" in page, "<b>acme" in page
    (True, True, False)
    """
    if not isinstance(title, str) or not title.strip():
        raise InputError("report: field 'title' must be a non-empty string")
    if isinstance(max_requests, bool) or not isinstance(max_requests, int) or max_requests < 0:
        raise InputError(
            f"report: field 'max_requests' must be an integer >= 0, got {max_requests!r}"
        )
    recs = list(records)
    frame = LedgerFrame(recs)
    if findings is None:
        from margin.diagnose.detectors import diagnose

        findings = diagnose(recs)
    cmp = None if comparison is None else parse_comparison(comparison)

    layers = frame.breakdown("layer")
    tenants = frame.breakdown("tenant")
    buckets = frame.value_buckets()
    top = frame.top_requests(max_requests)
    hits = [f for f in findings if f.count]
    finding_rows = []
    for f in findings:
        keys, rows = _example_table(f.examples)
        finding_rows.append({"f": f, "cols": keys, "rows": rows})
    regimes = cmp.regimes if cmp is not None else ()
    context = {
        "title": title,
        "n_records": frame.n,
        "n_requests": frame.requests,
        "n_tenants": len(tenants),
        "cost_usd": format_usd(frame.cost_nanos_total),
        "tokens_total": int(frame.tokens.sum()),
        "regret_total": frame.regret_total(),
        "regret_known": int((frame.regret == frame.regret).sum()),
        "full_price": float((frame.cost + frame.latency_cost + frame.risk_cost).sum()),
        "layers": layers,
        "tenants": tenants,
        "buckets": TOKEN_BUCKETS,
        "TOKEN_LABELS": TOKEN_LABELS,
        "value_buckets": buckets,
        "top": top,
        "max_requests": max_requests,
        "findings": finding_rows,
        "n_hits": len(hits),
        "flagged": sum(f.count for f in hits),
        "flagged_loss": sum(f.loss for f in hits),
        "cmp": cmp,
        "diff_pair": (regimes[0], regimes[1]) if len(regimes) == 2 else None,
        "img": {
            "scatter": plots.cost_value_scatter(frame),
            "regret_v": plots.regret_by_value(buckets),
            "layers": plots.layer_vector_bars(layers),
            "findings": plots.findings_bars(findings),
            "comparison": plots.comparison_bars(cmp) if cmp is not None else None,
        },
        "version": _version(),
    }
    return _environment().get_template("report.html").render(context)


def _version() -> str:
    from margin import __version__

    return str(__version__)


def write_report(
    path: str | os.PathLike[str],
    records: Iterable[LedgerRecord],
    *,
    findings: Sequence[Finding] | None = None,
    comparison: Mapping[str, Any] | Comparison | None = None,
    title: str = DEFAULT_TITLE,
    max_requests: int = MAX_REQUESTS,
) -> Path:
    """Write :func:`build_report` (same arguments) to ``path`` atomically: a temporary
    file in the same folder, then ``os.replace``.

    On any error the temporary file is removed and ``path`` is left as it was.

    Examples
    --------
    >>> import tempfile, os
    >>> out = write_report(os.path.join(tempfile.mkdtemp(), "r.html"), [], title="Empty")
    >>> "The ledger is empty" in out.read_text(encoding="utf-8")
    True
    """
    target = Path(path)
    if target.is_dir():
        raise InputError(f"{target}: is a directory, not an output file")
    if not target.parent.is_dir():
        raise InputError(f"{target}: folder {target.parent} does not exist")
    page = build_report(
        records,
        findings=findings,
        comparison=comparison,
        title=title,
        max_requests=max_requests,
    )
    atomic_write_text(target, page)
    return target
