"""The siloed-vs-shared comparison section: a generic ``{regime: {metric: value}}`` mapping.

The economy's result (``EconomyResult.as_dict()``) fits as is; so does a hand-written JSON
file. Shape, per top-level key:

* a mapping: one **regime**. Its numeric entries are metrics; a nested ``"total"``
  mapping adds its numeric entries as metrics too; a nested ``"layers"`` mapping
  ``{layer: {metric: value}}`` gives the regime's per-layer rows. Other entries
  (names, price series) are not shown.
* ``"attribution"`` (a mapping of numbers): the welfare difference attributed to layers.
* a number: a headline figure (e.g. ``"welfare_gain"``, ``"seed"``).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from margin.core.prices import InputError

__all__ = ["Comparison", "parse_comparison"]


@dataclass(frozen=True, slots=True)
class Comparison:
    """A normalized comparison of regimes (see the module docstring for the input shape).

    ``metrics[regime][metric]`` and ``layers[regime][layer][metric]`` are floats;
    ``headline`` holds the top-level numbers, ``attribution`` the per-layer welfare gap.
    """

    regimes: tuple[str, ...]
    metrics: dict[str, dict[str, float]]
    layers: dict[str, dict[str, dict[str, float]]] = field(default_factory=dict)
    headline: dict[str, float] = field(default_factory=dict)
    attribution: dict[str, float] = field(default_factory=dict)

    @property
    def metric_names(self) -> list[str]:
        """Every metric name, in first-seen order."""
        return list(dict.fromkeys(m for r in self.regimes for m in self.metrics[r]))

    @property
    def layer_rows(self) -> list[tuple[str, str, dict[str, float]]]:
        """``(layer, regime, metrics)`` rows, grouped by layer."""
        names = list(dict.fromkeys(ly for r in self.regimes for ly in self.layers.get(r, {})))
        return [
            (ly, r, self.layers[r][ly])
            for ly in names
            for r in self.regimes
            if ly in self.layers.get(r, {})
        ]

    @property
    def layer_metric_names(self) -> list[str]:
        return list(dict.fromkeys(m for _, _, row in self.layer_rows for m in row))


def _number(value: Any, where: str) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    x = float(value)
    if not math.isfinite(x):
        raise InputError(f"{where}: must be a finite number, got {value!r}")
    return x


def _numbers(data: Mapping[str, Any], where: str) -> dict[str, float]:
    out: dict[str, float] = {}
    for k, v in data.items():
        x = _number(v, f"{where}.{k}")
        if x is not None:
            out[str(k)] = x
    return out


def parse_comparison(data: Mapping[str, Any] | Comparison, where: str = "comparison") -> Comparison:
    """Normalize a ``{regime: {metric: value}}`` mapping into a :class:`Comparison`.

    Raises :class:`~margin.core.prices.InputError` naming the field on a value that is
    neither a number nor a mapping, a non-finite number, or no regime at all.

    Examples
    --------
    >>> c = parse_comparison({
    ...     "siloed": {"welfare": 10.0, "cost": 4.0, "layers": {"routing": {"regret": 2.0}}},
    ...     "shared": {"total": {"welfare": 14.0, "cost": 3.5}},
    ...     "welfare_gain": 4.0})
    >>> c.regimes, c.metric_names, c.headline
    (('siloed', 'shared'), ['welfare', 'cost'], {'welfare_gain': 4.0})
    >>> c.layer_rows
    [('routing', 'siloed', {'regret': 2.0})]
    """
    if isinstance(data, Comparison):
        return data
    if not isinstance(data, Mapping):
        raise InputError(f"{where}: expected a mapping {{regime: {{metric: value}}}}")
    regimes: list[str] = []
    metrics: dict[str, dict[str, float]] = {}
    layers: dict[str, dict[str, dict[str, float]]] = {}
    headline: dict[str, float] = {}
    attribution: dict[str, float] = {}
    for key, value in data.items():
        name = str(key)
        here = f"{where}.{name}"
        if name == "attribution" and isinstance(value, Mapping):
            attribution = _numbers(value, here)
            continue
        x = _number(value, here)
        if x is not None:
            headline[name] = x
            continue
        if not isinstance(value, Mapping):
            raise InputError(
                f"{here}: expected a number or a mapping of metrics, got {type(value).__name__}"
            )
        m = _numbers(value, here)
        total = value.get("total")
        if isinstance(total, Mapping):
            m.update(_numbers(total, f"{here}.total"))
        per_layer = value.get("layers")
        if per_layer is not None:
            if not isinstance(per_layer, Mapping):
                raise InputError(f"{here}.layers: expected a mapping {{layer: {{metric: value}}}}")
            rows: dict[str, dict[str, float]] = {}
            for ly, row in per_layer.items():
                if not isinstance(row, Mapping):
                    raise InputError(f"{here}.layers.{ly}: expected a mapping of metrics")
                rows[str(ly)] = _numbers(row, f"{here}.layers.{ly}")
            layers[name] = rows
        regimes.append(name)
        metrics[name] = m
    if not regimes:
        raise InputError(f"{where}: no regime found (expected {{regime: {{metric: value}}}})")
    return Comparison(tuple(regimes), metrics, layers, headline, attribution)
