"""The report in a real headless browser (Debian's chromium): it loads, logs no console
error, and its screenshot shows the page and its plots.

Skipped with the reason when chromium is absent, except under CI=true, where that fails.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pytest

from margin.ledger.records import LedgerRecord
from margin.report import write_report


def _chromium() -> str:
    for name in ("chromium", "chromium-browser", "/usr/bin/chromium"):
        path = shutil.which(name)
        if path:
            return path
    reason = "chromium is not installed (Debian: apt-get install -y chromium)"
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(reason)
    pytest.skip(reason)


def _render(page: Path, tmp: Path, size: str = "1280,3000") -> tuple[npt.NDArray[np.float32], str]:
    """Screenshot ``page``; return its pixels (RGB in [0, 1]) and chromium's stderr."""
    import matplotlib.image as mpimg

    shot = tmp / "shot.png"
    cmd = [
        _chromium(),
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        f"--user-data-dir={tmp / 'profile'}",
        "--enable-logging=stderr",
        "--v=0",
        f"--screenshot={shot}",
        f"--window-size={size}",
        page.resolve().as_uri(),
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert shot.is_file() and shot.stat().st_size > 0, proc.stderr[-2000:]
    pixels = np.asarray(mpimg.imread(shot), dtype=np.float32)[..., :3]
    return pixels, proc.stderr


def _console_errors(stderr: str) -> list[str]:
    """Lines where the page logged to the console or threw (chromium logs both as
    ``CONSOLE`` lines; an uncaught exception reads ``Uncaught ...``)."""
    return [
        line
        for line in stderr.splitlines()
        if "Uncaught" in line or "ERROR:CONSOLE" in line or ":CONSOLE" in line
    ]


def _share(pixels: npt.NDArray[np.float32], hex_color: str) -> float:
    rgb = np.array([int(hex_color[k : k + 2], 16) / 255 for k in (1, 3, 5)], dtype=np.float32)
    close = np.abs(pixels - rgb).max(axis=-1) < 6 / 255
    return float(close.mean())


def test_report_renders_in_chromium(
    tmp_path: Path, records: list[LedgerRecord], comparison: dict[str, Any]
) -> None:
    page = write_report(tmp_path / "report.html", records, comparison=comparison, title="Sample")
    pixels, stderr = _render(page, tmp_path)
    assert pixels.shape == (3000, 1280, 3)
    assert _console_errors(stderr) == []
    # Not one flat colour: a white page with dark text and coloured plots.
    assert float(pixels.std()) > 0.05
    assert _share(pixels, "#ffffff") > 0.3
    dark = (pixels.max(axis=-1) < 0.3).mean()
    assert dark > 0.002  # headings and table text
    # The embedded PNGs were decoded and drawn: the plots' bar colours are on screen
    # (green V·ΔQ and the shared regime; red ρ·ΔR and regret; blue siloed and ΔC).
    for color in ("#55A868", "#4C72B0", "#C44E52"):
        assert _share(pixels, color) > 0.0005, color  # > 1,900 pixels of each


def test_console_errors_are_detected(tmp_path: Path) -> None:
    """The check above can fail: a page that throws is caught."""
    bad = tmp_path / "bad.html"
    bad.write_text(
        "<!DOCTYPE html><html><body><h1>x</h1><script>undefined_fn();</script></body></html>",
        encoding="utf-8",
    )
    _, stderr = _render(bad, tmp_path, size="400,300")
    errors = _console_errors(stderr)
    assert errors and "undefined_fn" in errors[0]
