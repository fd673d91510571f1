"""Shared fixtures. Real data is read from ../shared/data (or $MARGIN_SHARED_DATA).

A test that needs a data file skips with the reason when the file is absent, except
under CI (CI=true), where a missing file is a failure.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pytest

SHARED_DATA = Path(
    os.environ.get("MARGIN_SHARED_DATA", Path(__file__).resolve().parents[2] / "shared" / "data")
)


def require_shared(relative: str) -> Path:
    """Path of a shared data file; skip (or fail under CI=true) when it is missing."""
    path = SHARED_DATA / relative
    if not path.exists():
        reason = f"shared data file {path} is absent (see ../shared/data/README.md)"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(reason)
        pytest.skip(reason)
    return path


@pytest.fixture
def shared_data() -> Callable[[str], Path]:
    """``shared_data("serving/AzureLLMInferenceTrace_conv.csv")`` -> Path, or skip/fail."""
    return require_shared
