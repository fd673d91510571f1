"""The report's plots: matplotlib (Agg) figures rendered to PNG ``data:`` URIs.

Every function returns ``None`` when there is nothing to draw. Figures are built with
:class:`matplotlib.figure.Figure` (no pyplot global state) and saved without a
timestamp, so the same ledger gives byte-identical images. Labels are drawn with
every ``$`` of a user-supplied name escaped: a regime or metric name containing ``$`` is
shown as written, never parsed as mathtext.
"""

from __future__ import annotations

import base64
import io
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from margin.ledger.records import LAYERS

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

    from margin.diagnose.detectors import Finding
    from margin.report.comparison import Comparison
    from margin.report.frame import GroupRow, LedgerFrame, ValueBucket

__all__ = [
    "comparison_bars",
    "cost_value_scatter",
    "findings_bars",
    "layer_vector_bars",
    "regret_by_value",
]

#: One colour per layer, stable across plots.
LAYER_COLORS = dict(
    zip(LAYERS, ("#4C72B0", "#DD8452", "#55A868", "#C44E52", "#8172B3", "#937860"), strict=True)
)
#: Colours of the realized vector's components.
VECTOR_COLORS = {"V·ΔQ": "#55A868", "ΔC": "#4C72B0", "λ·ΔL": "#DD8452", "ρ·ΔR": "#C44E52"}


def _figure(width: float, height: float) -> Figure:
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height), dpi=110, layout="constrained")


def _uri(fig: Figure) -> str:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", metadata={"Software": None})
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def _render(draw: Any, width: float, height: float) -> str:
    import matplotlib

    with matplotlib.rc_context({"font.size": 9, "axes.titlesize": 10}):
        fig = _figure(width, height)
        draw(fig)
        return _uri(fig)


def _plain(text: str) -> str:
    """User text as a literal matplotlib label (``$`` would start mathtext)."""
    return text.replace("$", r"\$")


def _log_if_wide(ax: Axes, axis: str, x: np.ndarray[Any, Any]) -> None:
    x = x[np.isfinite(x)]
    if x.size and x.min() > 0 and x.max() / x.min() > 100:
        (ax.set_xscale if axis == "x" else ax.set_yscale)("log")


def cost_value_scatter(frame: LedgerFrame, max_points: int = 5000, seed: int = 0) -> str | None:
    """ΔC against V per record, coloured by layer (a seeded subsample of ``max_points``)."""
    if frame.n == 0:
        return None
    keep = np.arange(frame.n)
    if frame.n > max_points:
        keep = np.sort(np.random.default_rng(seed).choice(frame.n, max_points, replace=False))

    def draw(fig: Figure) -> None:
        ax = fig.subplots()
        v, c, layer = frame.value[keep], frame.cost[keep], frame.layer[keep]
        for name in LAYERS:
            m = layer == name
            if m.any():
                ax.scatter(v[m], c[m], s=10, alpha=0.6, color=LAYER_COLORS[name], label=name)
        _log_if_wide(ax, "x", v)
        _log_if_wide(ax, "y", c)
        ax.set_xlabel("task value V (USD)")
        ax.set_ylabel("realized ΔC (USD)")
        sub = f" ({keep.size:,} of {frame.n:,} records)" if keep.size < frame.n else ""
        ax.set_title("Cost against value, per decision" + sub)
        ax.legend(title="layer", loc="best", fontsize=8)
        ax.grid(alpha=0.3)

    return _render(draw, 6.2, 3.8)


def regret_by_value(buckets: Sequence[ValueBucket]) -> str | None:
    """Total and mean regret per request, by V bucket (quantiles of V)."""
    if not buckets or all(b.regret_total == 0 for b in buckets):
        return None

    def draw(fig: Figure) -> None:
        left, right = fig.subplots(1, 2)
        labels = [f"{b.low:.3g}–{b.high:.3g}" for b in buckets]
        x = np.arange(len(buckets))
        left.bar(x, [b.regret_total for b in buckets], color="#C44E52")
        right.bar(x, [b.regret_mean for b in buckets], color="#8172B3")
        for ax, title in ((left, "total regret (USD)"), (right, "mean regret per request (USD)")):
            ax.set_xticks(x, labels, rotation=30, ha="right")
            ax.set_xlabel("V bucket (USD)")
            ax.set_title(title)
            ax.grid(axis="y", alpha=0.3)
        for k, b in enumerate(buckets):
            left.annotate(
                f"n={b.requests}", (k, b.regret_total), ha="center", va="bottom", fontsize=7
            )

    return _render(draw, 8.0, 3.4)


def layer_vector_bars(rows: Sequence[GroupRow]) -> str | None:
    """Per layer: V·ΔQ up, ΔC + λ·ΔL + ρ·ΔR stacked down, the net surplus marked."""
    if not rows:
        return None

    def draw(fig: Figure) -> None:
        ax = fig.subplots()
        x = np.arange(len(rows))
        ax.bar(x, [r.value_quality for r in rows], 0.6, color=VECTOR_COLORS["V·ΔQ"], label="V·ΔQ")
        bottom = np.zeros(len(rows))
        for label, attr in (("ΔC", "cost"), ("λ·ΔL", "latency_cost"), ("ρ·ΔR", "risk_cost")):
            h = -np.array([getattr(r, attr) for r in rows])
            ax.bar(x, h, 0.6, bottom=bottom, color=VECTOR_COLORS[label], label=f"−{label}")
            bottom += h
        ax.scatter(
            x, [r.surplus for r in rows], marker="D", color="black", zorder=3, label="net surplus"
        )
        ax.axhline(0.0, color="black", linewidth=0.8)
        ax.set_xticks(x, [r.key for r in rows])
        ax.set_ylabel("USD (sum over decisions)")
        ax.set_title("Realized vector by layer (Eq. 1)")
        ax.legend(fontsize=8, loc="best")
        ax.grid(axis="y", alpha=0.3)

    return _render(draw, 6.2, 3.6)


def findings_bars(findings: Sequence[Finding]) -> str | None:
    """Estimated loss (USD) per failure mode that fired."""
    hits = [f for f in findings if f.count]
    if not hits:
        return None

    def draw(fig: Figure) -> None:
        ax = fig.subplots()
        y = np.arange(len(hits))
        ax.barh(y, [f.loss for f in hits], color="#C44E52")
        ax.set_yticks(y, [f"{f.mode} ({f.count:,})" for f in hits])
        ax.invert_yaxis()
        ax.set_xlabel("estimated loss (USD)")
        ax.set_title("Failure modes found (Table 2)")
        ax.grid(axis="x", alpha=0.3)

    return _render(draw, 6.2, 0.6 + 0.45 * len(hits))


def comparison_bars(comparison: Comparison) -> str | None:
    """One small panel per metric, one bar per regime."""
    names = comparison.metric_names
    if not names:
        return None
    shown = names[:12]
    cols = min(6, len(shown))
    rows = -(-len(shown) // cols)

    def draw(fig: Figure) -> None:
        axes = np.atleast_1d(fig.subplots(rows, cols, squeeze=False)).ravel()
        palette = ["#4C72B0", "#55A868", "#DD8452", "#8172B3", "#C44E52", "#937860"]
        for ax, metric in zip(axes, shown, strict=False):
            regs = [r for r in comparison.regimes if metric in comparison.metrics[r]]
            vals = [comparison.metrics[r][metric] for r in regs]
            ax.bar(range(len(regs)), vals, color=[palette[k % 6] for k in range(len(regs))])
            ax.set_xticks(
                range(len(regs)), [_plain(r) for r in regs], rotation=20 if len(regs) > 2 else 0
            )
            ax.set_title(_plain(metric))
            ax.axhline(0.0, color="black", linewidth=0.6)
            ax.grid(axis="y", alpha=0.3)
        for ax in axes[len(shown) :]:
            ax.set_visible(False)

    return _render(draw, 1.75 * cols, 1.8 * rows)
