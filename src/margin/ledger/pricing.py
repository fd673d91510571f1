"""Per-model token prices in LiteLLM's ``model_prices_and_context_window.json`` format.

ΔC of a token use (the money term of Eq. 1) is the dot product of the token buckets of
:class:`~margin.ledger.records.TokenUsage` with the model's per-token list prices:

    ΔC = p_in·input + p_cr·cached_input + p_cw·cache_write + p_out·output + p_rs·reasoning

computed exactly in :class:`~decimal.Decimal` from the decimal text of the prices and
rounded once (half-even) to integer nano-dollars.

Field mapping (LiteLLM key → bucket price); every other key of an entry is ignored, and
so is the ``sample_spec`` entry and any top-level key starting with ``_``:

==================================  =================  =====================================
LiteLLM key                         bucket             when absent
==================================  =================  =====================================
``input_cost_per_token``            ``input``          0 (entry skipped if output also absent)
``output_cost_per_token``           ``output``         0 (entry skipped if input also absent)
``cache_read_input_token_cost``     ``cached_input``   falls back to the input price
``cache_creation_input_token_cost`` ``cache_write``    falls back to the input price
``output_cost_per_reasoning_token`` ``reasoning``      falls back to the output price
==================================  =================  =====================================

The fallbacks are conservative: a provider that publishes no discounted cache price bills
cached prompt tokens as ordinary input, and reasoning tokens are billed as output tokens by
every provider that does not list them separately. Entries without any token price (image,
audio-per-second, search...) are not token models and are left out of the table.

Standard library only (imported by the ledger at hook time).
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from decimal import ROUND_HALF_EVEN, Decimal, InvalidOperation, localcontext
from importlib import resources
from typing import Any

from margin.core.prices import InputError
from margin.ledger.records import NANOS_PER_USD, TokenUsage

__all__ = ["ModelPrice", "PriceTable"]

_FIELDS = {
    "input": "input_cost_per_token",
    "output": "output_cost_per_token",
    "cache_read": "cache_read_input_token_cost",
    "cache_write": "cache_creation_input_token_cost",
    "reasoning": "output_cost_per_reasoning_token",
}


def _price(value: Any, where: str) -> Decimal:
    if isinstance(value, bool):
        raise InputError(f"{where}: expected a number, got {value!r}")
    if isinstance(value, float):
        d = Decimal(repr(value))
    elif isinstance(value, int | str | Decimal):
        try:
            d = Decimal(value)
        except InvalidOperation:
            raise InputError(f"{where}: cannot read {value!r} as a price") from None
    else:
        raise InputError(f"{where}: expected a number, got {value!r}")
    if not d.is_finite():
        raise InputError(f"{where}: price must be finite, got {value!r}")
    if d < 0:
        raise InputError(f"{where}: price must be >= 0, got {value!r}")
    return d


@dataclass(frozen=True, slots=True)
class ModelPrice:
    """USD per token for each non-overlapping bucket of :class:`TokenUsage`.

    Examples
    --------
    >>> p = ModelPrice("m", input=Decimal("2.5e-06"), output=Decimal("1e-05"),
    ...                cache_read=Decimal("1.25e-06"), cache_write=Decimal("2.5e-06"),
    ...                reasoning=Decimal("1e-05"))
    >>> p.cost_usd(TokenUsage(input=1000, cached_input=1000, output=100))
    Decimal('0.00475000')
    >>> p.cost_nanos(TokenUsage(input=1000, cached_input=1000, output=100))
    4750000
    """

    model: str
    input: Decimal
    output: Decimal
    cache_read: Decimal
    cache_write: Decimal
    reasoning: Decimal
    provider: str | None = None

    def cost_usd(self, usage: TokenUsage) -> Decimal:
        """Exact ΔC in USD (no rounding)."""
        with localcontext() as ctx:
            ctx.prec = 60
            return (
                self.input * usage.input
                + self.cache_read * usage.cached_input
                + self.cache_write * usage.cache_write
                + self.output * usage.output
                + self.reasoning * usage.reasoning
            )

    def cost_nanos(self, usage: TokenUsage) -> int:
        """ΔC in integer nano-dollars, rounded once (half-even) from the exact value."""
        with localcontext() as ctx:
            ctx.prec = 60
            exact = self.cost_usd(usage) * NANOS_PER_USD
            return int(exact.quantize(Decimal(1), rounding=ROUND_HALF_EVEN))


@dataclass(frozen=True, slots=True)
class PriceTable:
    """A mapping from model name to :class:`ModelPrice`, with optional aliases.

    Examples
    --------
    >>> table = PriceTable.from_mapping({
    ...     "sample_spec": {"input_cost_per_token": 0.0},
    ...     "gpt-4o": {"input_cost_per_token": 2.5e-06, "output_cost_per_token": 1e-05,
    ...                "cache_read_input_token_cost": 1.25e-06, "max_tokens": 16384},
    ... })
    >>> table.cost_nanos("gpt-4o", TokenUsage(input=1000, cached_input=1000, output=100))
    4750000
    >>> table.cost_nanos("gpt-5", TokenUsage(input=1))
    Traceback (most recent call last):
    ...
    margin.core.prices.InputError: price table (mapping): unknown model 'gpt-5'
    """

    prices: Mapping[str, ModelPrice]
    aliases: Mapping[str, str] = field(default_factory=dict)
    source: str = "mapping"

    @classmethod
    def from_mapping(
        cls,
        data: Mapping[str, Any],
        *,
        aliases: Mapping[str, str] | None = None,
        source: str = "mapping",
    ) -> PriceTable:
        """Build from a LiteLLM-format mapping ``{model: {"input_cost_per_token": ...}}``.

        A top-level ``"_aliases"`` object (margin's extension) maps extra names onto
        models; other keys starting with ``_`` and ``sample_spec`` are skipped.
        """
        if not isinstance(data, Mapping):
            raise InputError(
                f"{source}: expected a JSON object of models, got {type(data).__name__}"
            )
        prices: dict[str, ModelPrice] = {}
        for model, entry in data.items():
            if model == "sample_spec" or model.startswith("_"):
                continue
            if not isinstance(entry, Mapping):
                raise InputError(f"{source}: model '{model}': expected an object")
            if _FIELDS["input"] not in entry and _FIELDS["output"] not in entry:
                continue
            got = {
                k: _price(entry[f], f"{source}: model '{model}' field '{f}'")
                for k, f in _FIELDS.items()
                if entry.get(f) is not None
            }
            inp = got.get("input", Decimal(0))
            out = got.get("output", Decimal(0))
            provider = entry.get("litellm_provider")
            prices[model] = ModelPrice(
                model=model,
                input=inp,
                output=out,
                cache_read=got.get("cache_read", inp),
                cache_write=got.get("cache_write", inp),
                reasoning=got.get("reasoning", out),
                provider=provider if isinstance(provider, str) else None,
            )
        alias_map: dict[str, str] = {}
        raw_aliases = data.get("_aliases", {})
        if not isinstance(raw_aliases, Mapping):
            raise InputError(f"{source}: field '_aliases' must be an object")
        for name, target in {**raw_aliases, **(aliases or {})}.items():
            if not isinstance(target, str) or target not in prices:
                raise InputError(f"{source}: alias '{name}' points to unknown model {target!r}")
            alias_map[str(name)] = target
        return cls(prices=prices, aliases=alias_map, source=source)

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> PriceTable:
        """Read a LiteLLM ``model_prices_and_context_window.json`` file (or one in the same
        format). Prices are parsed as decimals straight from the JSON text."""
        p = os.fspath(path)
        try:
            with open(p, encoding="utf-8") as f:
                data = json.load(f, parse_float=Decimal)
        except FileNotFoundError:
            raise InputError(f"{p}: price table file not found") from None
        except IsADirectoryError:
            raise InputError(f"{p}: is a directory, expected a JSON price table") from None
        except json.JSONDecodeError as e:
            raise InputError(f"{p}: line {e.lineno}: invalid JSON ({e.msg})") from None
        except UnicodeDecodeError:
            raise InputError(f"{p}: not a UTF-8 JSON file") from None
        return cls.from_mapping(data, source=p)

    @classmethod
    def builtin(cls) -> PriceTable:
        """The small table shipped with margin (``margin/data/model_prices.json``): 12
        models used by the tests, the demo and the routing data, with LiteLLM list prices;
        its ``_source`` note records the commit and the date they were read."""
        text = resources.files("margin").joinpath("data/model_prices.json").read_text("utf-8")
        return cls.from_mapping(json.loads(text, parse_float=Decimal), source="builtin")

    def resolve(self, model: str) -> str:
        """The table key for ``model`` (itself or its alias); InputError when unknown."""
        if model in self.prices:
            return model
        target = self.aliases.get(model)
        if target is not None:
            return target
        raise InputError(f"price table ({self.source}): unknown model {model!r}")

    def __getitem__(self, model: str) -> ModelPrice:
        return self.prices[self.resolve(model)]

    def __contains__(self, model: object) -> bool:
        return isinstance(model, str) and (model in self.prices or model in self.aliases)

    def __iter__(self) -> Iterator[str]:
        return iter(self.prices)

    def __len__(self) -> int:
        return len(self.prices)

    def cost_usd(self, model: str, usage: TokenUsage) -> Decimal:
        """Exact ΔC in USD of ``usage`` on ``model``."""
        return self[model].cost_usd(usage)

    def cost_nanos(self, model: str, usage: TokenUsage) -> int:
        """ΔC of ``usage`` on ``model`` in integer nano-dollars (exact, rounded once)."""
        return self[model].cost_nanos(usage)
