"""The token-aware report: one self-contained, offline HTML page per ledger (Sec. 4).

Names are loaded lazily: importing :mod:`margin.report` pulls in neither numpy,
matplotlib nor jinja2.
"""

from typing import TYPE_CHECKING

from margin._lazy import attach

__getattr__, __dir__, __all__ = attach(
    __name__,
    {
        "comparison": ["Comparison", "parse_comparison"],
        "frame": [
            "TOKEN_BUCKETS",
            "GroupRow",
            "LedgerFrame",
            "RequestRow",
            "ValueBucket",
            "format_usd",
        ],
        "page": ["DEFAULT_TITLE", "build_report", "write_report"],
    },
)

if TYPE_CHECKING:
    from margin.report.comparison import (
        Comparison as Comparison,
        parse_comparison as parse_comparison,
    )
    from margin.report.frame import (
        TOKEN_BUCKETS as TOKEN_BUCKETS,
        GroupRow as GroupRow,
        LedgerFrame as LedgerFrame,
        RequestRow as RequestRow,
        ValueBucket as ValueBucket,
        format_usd as format_usd,
    )
    from margin.report.page import (
        DEFAULT_TITLE as DEFAULT_TITLE,
        build_report as build_report,
        write_report as write_report,
    )
