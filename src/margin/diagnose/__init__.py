"""Failure-mode diagnostics over any ledger (Table 2 of the paper)."""

from typing import TYPE_CHECKING

from margin._lazy import attach

__getattr__, __dir__, __all__ = attach(
    __name__,
    {"detectors": ["DETECTORS", "Detector", "Finding", "diagnose", "make_detector"]},
)

if TYPE_CHECKING:
    from margin.diagnose.detectors import (
        DETECTORS as DETECTORS,
        Detector as Detector,
        Finding as Finding,
        diagnose as diagnose,
        make_detector as make_detector,
    )
