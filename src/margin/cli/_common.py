"""Shared CLI plumbing: one-line errors with exit code 2, JSON input, atomic output."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn, TypeVar

from margin._io import atomic_write
from margin.core.prices import InputError

if TYPE_CHECKING:
    from collections.abc import Iterable

    from margin.ledger.records import LedgerRecord

__all__ = [
    "atomic_write",
    "existing_ledger",
    "fail",
    "guard",
    "print_json",
    "read_json",
    "write_ledger",
]

F = TypeVar("F", bound=Callable[..., Any])

EXIT_BAD_INPUT = 2


def fail(message: str) -> NoReturn:
    """Print one line to stderr and exit with code 2 (bad input)."""
    line = " ".join(str(message).split())
    print(f"margin: error: {line}", file=sys.stderr)
    raise SystemExit(EXIT_BAD_INPUT)


@contextmanager
def guard() -> Iterator[None]:
    """Turn user-input errors into one line on stderr and exit code 2, never a traceback."""
    try:
        yield
    except InputError as e:
        fail(str(e))
    except FileNotFoundError as e:
        fail(f"no such file: {e.filename}")
    except IsADirectoryError as e:
        fail(f"is a directory, not a file: {e.filename}")
    except PermissionError as e:
        fail(f"permission denied: {e.filename}")
    except UnicodeDecodeError as e:
        fail(f"not a text file ({e.reason})")


def read_json(path: Path | str) -> Any:
    """Parse a JSON file; errors name the file, line and column."""
    p = Path(path)
    if not p.exists():
        raise InputError(f"{p}: no such file")
    if p.is_dir():
        raise InputError(f"{p}: is a directory, not a JSON file")
    text = p.read_text(encoding="utf-8")
    try:
        return json.loads(text)
    except json.JSONDecodeError as e:
        raise InputError(f"{p}:{e.lineno}:{e.colno}: invalid JSON: {e.msg}") from None


def print_json(data: Any) -> None:
    """Print machine-readable JSON on stdout (plain print: no rich markup or wrapping)."""
    print(json.dumps(data, indent=2, sort_keys=False, allow_nan=False))


def write_ledger(path: Path | str, records: Iterable[LedgerRecord]) -> int:
    """Write ``records`` to a new SQLite ledger at ``path`` atomically (replacing any file).

    The ledger is built beside ``path`` and renamed into place only when complete.
    """
    from margin.ledger.store import Ledger

    target = Path(path)
    if target.is_dir():
        raise InputError(f"{target}: is a directory, not a ledger file")
    count = 0

    def build(tmp: Path) -> None:
        nonlocal count
        tmp.unlink()  # SQLite creates the database itself
        try:
            with Ledger(tmp) as led:
                count = led.extend(records)
        except BaseException:
            for extra in (tmp.with_name(tmp.name + "-wal"), tmp.with_name(tmp.name + "-shm")):
                extra.unlink(missing_ok=True)
            raise

    atomic_write(target, build)
    return count


def existing_ledger(db: Path) -> Path:
    """An existing, non-empty ledger file; opening an empty one would write a schema into
    it, so a command that only reads must refuse it."""
    if not db.exists():
        raise InputError(f"{db}: no such ledger file")
    if db.is_dir():
        raise InputError(f"{db}: is a directory, not a ledger file")
    if db.stat().st_size == 0:
        raise InputError(f"{db}: empty file, not a margin ledger")
    return db
