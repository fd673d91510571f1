"""Reading configuration files: JSON, or YAML by suffix, with errors that name the place.

Stdlib only at import (PyYAML is imported when a YAML file is read): the schedule of
``margin gate`` is read through here.
"""

from __future__ import annotations

import json
import os

from margin.core.prices import InputError

# Not `typing.TYPE_CHECKING`: the gate reads its schedule through here and must start fast.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path
    from typing import Any

__all__ = ["atomic_write", "atomic_write_text", "parse_structured"]

YAML_SUFFIXES = (".yaml", ".yml")


def parse_structured(text: str, path: str | os.PathLike[str]) -> Any:
    """Parse ``text`` read from ``path``: YAML for ``.yaml``/``.yml``, JSON otherwise.

    A syntax error raises :class:`InputError` as ``PATH:LINE: invalid JSON (why)`` or
    ``PATH:LINE: invalid YAML``. An empty YAML document is ``None``.

    Examples
    --------
    >>> parse_structured('{"a": 1}', "x.json")
    {'a': 1}
    >>> parse_structured("[1, 2", "x.json")
    Traceback (most recent call last):
    ...
    margin.core.prices.InputError: x.json:1: invalid JSON (Expecting ',' delimiter)
    """
    p = os.fspath(path)
    if p.lower().endswith(YAML_SUFFIXES):
        import yaml

        try:
            return yaml.safe_load(text)
        except yaml.YAMLError as e:
            mark = getattr(e, "problem_mark", None)
            line = f":{mark.line + 1}" if mark is not None else ""
            raise InputError(f"{p}{line}: invalid YAML") from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as e:
        raise InputError(f"{p}:{e.lineno}: invalid JSON ({e.msg})") from None


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def atomic_write(path: str | os.PathLike[str], write: Callable[[Path], object]) -> Path:
    """Call ``write(tmp)`` on a temporary file beside ``path`` and rename it into place.

    A crash or a bad input part-way leaves no half-written output: the temporary file
    is removed and ``path`` is untouched. The output gets the permissions of the umask
    (``mkstemp`` alone would leave it 0600).
    """
    import tempfile  # not at import time: the gate reads its schedule through this module
    from pathlib import Path

    target = Path(path)
    if not target.parent.exists():
        raise InputError(f"{target}: folder {target.parent} does not exist")
    fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.", dir=target.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        write(tmp)
        if tmp.exists():
            os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, target)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return target


def atomic_write_text(path: str | os.PathLike[str], text: str) -> Path:
    """Write ``text`` (UTF-8) to ``path`` atomically; see :func:`atomic_write`."""
    return atomic_write(path, lambda tmp: tmp.write_text(text, encoding="utf-8"))
