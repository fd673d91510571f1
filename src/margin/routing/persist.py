"""Saving and loading a fitted router: a versioned header line, then a pickle payload.

The file starts with ``MARGIN-ROUTER <format version>\\n``; anything else (a CSV, a
truncated file, another library's pickle) is refused with an :class:`InputError` before
any unpickling. Only load router files you wrote yourself: the payload is a pickle.
"""

from __future__ import annotations

import pickle
from pathlib import Path
from typing import Any

from margin._io import atomic_write
from margin.core.prices import InputError

__all__ = ["FORMAT_VERSION", "MAGIC", "load_router", "save_router"]

MAGIC = b"MARGIN-ROUTER"
#: Bumped whenever the pickled classes change incompatibly.
FORMAT_VERSION = 1


def save_router(router: Any, path: str | Path, *, meta: dict[str, Any] | None = None) -> Path:
    """Write ``router`` (and ``meta``) atomically: a temp file in the same folder, then
    ``os.replace``, so a failure never leaves a half-written model.

    Examples
    --------
    >>> import tempfile, os
    >>> from margin.routing.peers import Cheapest
    >>> from margin.routing.data import RoutingDataset
    >>> d = RoutingDataset.from_arrays(["a"], ["x", "y"], [[1, 1]], [[2.0, 1.0]])
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     p = save_router(Cheapest().fit(d), os.path.join(tmp, "m.router"))
    ...     r, meta = load_router(p)
    >>> r.route(d, 1.0).names(), meta
    (['y'], {})
    """
    out = Path(path)
    if not out.parent.exists():
        raise InputError(f"{out}: folder {out.parent} does not exist")
    payload = pickle.dumps({"router": router, "meta": dict(meta or {})}, protocol=5)
    header = MAGIC + b" " + str(FORMAT_VERSION).encode() + b"\n"
    atomic_write(out, lambda tmp: tmp.write_bytes(header + payload))
    return out


def load_router(path: str | Path) -> tuple[Any, dict[str, Any]]:
    """Read a file written by :func:`save_router`: ``(router, meta)``.

    Raises :class:`InputError` when the file is missing, lacks the header, has another
    format version, or its payload cannot be read.
    """
    p = Path(path)
    if not p.is_file():
        raise InputError(f"{p}: model file not found")
    with p.open("rb") as fh:
        head = fh.readline(64)
        parts = head.strip().split(b" ")
        if len(parts) != 2 or parts[0] != MAGIC:
            raise InputError(f"{p}:1: not a margin router file (missing '{MAGIC.decode()}' header)")
        if parts[1] != str(FORMAT_VERSION).encode():
            raise InputError(
                f"{p}:1: router format version {parts[1].decode(errors='replace')}, "
                f"this library reads version {FORMAT_VERSION}"
            )
        try:
            obj = pickle.load(fh)
        except Exception as e:
            raise InputError(f"{p}: corrupt router payload ({type(e).__name__})") from None
    if not isinstance(obj, dict) or "router" not in obj:
        raise InputError(f"{p}: corrupt router payload (no router)")
    return obj["router"], dict(obj.get("meta", {}))
