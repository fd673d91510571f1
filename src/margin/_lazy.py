"""Lazy attribute loading for package ``__init__`` modules (PEP 562).

``margin gate`` runs before every tool call of a coding agent, so importing
``margin`` must not pull numpy or scipy until a name that needs them is used.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping, Sequence

# Not `typing.TYPE_CHECKING`: importing typing costs ~9 ms of `margin gate`'s start-up.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

__all__ = ["attach"]


def attach(
    package: str, submodules: Mapping[str, Sequence[str]]
) -> tuple[Callable[[str], Any], Callable[[], list[str]], list[str]]:
    """Return ``(__getattr__, __dir__, __all__)`` exporting ``names`` from ``submodules``.

    ``submodules`` maps a module path relative to ``package`` (e.g. ``"core.prices"``)
    to the public names it provides.
    """
    where = {name: mod for mod, names in submodules.items() for name in names}
    public = sorted(where)

    def __getattr__(name: str) -> Any:
        mod = where.get(name)
        if mod is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(f"{package}.{mod}"), name)
        return value

    def __dir__() -> list[str]:
        return public

    return __getattr__, __dir__, public
