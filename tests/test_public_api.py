"""The curated public API stays in sync (in the spirit of httpx's test_exports)."""

from __future__ import annotations

import ast
import importlib
import inspect
from pathlib import Path

import pytest

import margin

LAZY_PACKAGES = [
    "margin",
    "margin.core",
    "margin.ledger",
    "margin.diagnose",
    "margin.capital",
    "margin.agent",
    "margin.routing",
    "margin.serving",
    "margin.economy",
    "margin.report",
]


def _type_checking_names(module_name: str) -> set[str]:
    src = Path(importlib.import_module(module_name).__file__ or "").read_text()
    names: set[str] = set()
    for node in ast.walk(ast.parse(src)):
        if isinstance(node, ast.If) and getattr(node.test, "id", "") == "TYPE_CHECKING":
            for stmt in node.body:
                if isinstance(stmt, ast.ImportFrom):
                    names.update(a.asname or a.name for a in stmt.names)
    return names


@pytest.mark.parametrize("module_name", LAZY_PACKAGES)
def test_all_matches_type_checking_imports(module_name: str) -> None:
    mod = importlib.import_module(module_name)
    exported = set(mod.__all__) - {"__version__"}
    assert exported == _type_checking_names(module_name)


@pytest.mark.parametrize("module_name", LAZY_PACKAGES)
def test_every_exported_name_resolves(module_name: str) -> None:
    mod = importlib.import_module(module_name)
    for name in mod.__all__:
        obj = getattr(mod, name)
        if inspect.isclass(obj) or inspect.isfunction(obj):
            assert obj.__module__.startswith("margin."), name
    with pytest.raises(AttributeError):
        _ = mod.definitely_not_a_name


def test_top_level_reexports_are_the_same_objects() -> None:
    from margin.core.allocation import allocate
    from margin.core.prices import PriceVector

    assert margin.allocate is allocate
    assert margin.PriceVector is PriceVector
    assert "PriceVector" in dir(margin)


def test_importing_margin_does_not_import_numpy() -> None:
    import subprocess
    import sys

    code = (
        "import margin, margin.core.prices, margin.ledger.records, sys;"
        "print('numpy' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
