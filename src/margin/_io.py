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
    from typing import Any

__all__ = ["parse_structured"]

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
