"""What a request cost in USD: configured prices first, then list prices from genai-prices.

Token counts follow OpenAI's convention: ``input_tokens`` is the whole prompt, and
``cached_tokens`` (cache reads) and ``cache_write_tokens`` (Anthropic's cache creation)
are parts of it, billed at their own rates. The rest of the prompt is billed at the input
rate, ``output_tokens`` (reasoning included) at the output rate.

Prices are resolved once per (provider type, model, overrides) and kept, so the steady
state is one dict lookup and four multiplications. Nothing here does I/O: list prices come
from the data bundled in the installed genai-prices; its remote updater is not started.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from genai_prices.types import ConditionalPrice, ModelPrice, TieredPrices

    from ..wire import Usage
    from .routing import Deployment

__all__ = ["COST_QUANTUM", "PROVIDER_IDS", "PricingService"]

logger = logging.getLogger("symbiosis.pricing")

COST_QUANTUM = Decimal("1e-12")
"""Costs are rounded (half-even) to a millionth of a micro-dollar."""

PROVIDER_IDS: Mapping[str, str | None] = {
    "openai": "openai",
    "azure_openai": "azure",  # genai-prices falls back to OpenAI's list for Azure models
    "anthropic": "anthropic",
    "openai_compatible": None,  # any server: genai-prices finds the vendor from the model name
}
"""Our provider ``type`` names to genai-prices provider ids; ``None`` matches by model."""

_PER_MTOK = Decimal(1_000_000)
_NEVER = math.inf
_MAX_ENTRIES = 4096  # bounds memory when model names come from callers, not the config


@dataclass(frozen=True, slots=True)
class _Rates:
    """USD per token (not per million) for one band of input sizes."""

    input: Decimal
    cached: Decimal
    cache_write: Decimal
    output: Decimal


@dataclass(frozen=True, slots=True)
class _Price:
    """The rates of one model; a tier applies when the prompt has more than ``start`` tokens."""

    base: _Rates
    tiers: tuple[tuple[int, _Rates], ...]  # highest start first
    expires_at: float  # a clock time after which the list price may differ

    def rates(self, input_tokens: int) -> _Rates:
        for start, rates in self.tiers:
            if input_tokens > start:
                return rates
        return self.base


_Overrides = tuple[float | None, float | None, float | None]  # input, output, cached input


class PricingService:
    """Prices requests; one instance per process, shared by every request.

    ``cost`` returns a ``Decimal`` in USD rounded to ``COST_QUANTUM``, or ``None`` when no
    price is known; the first time a (provider type, model) has no price, a warning goes to
    the ``symbiosis.pricing`` logger. Format a cost with ``format(cost, "f")``.

    ``provider_ids`` extends ``PROVIDER_IDS`` (e.g. for a plug-in provider type);
    ``clock`` returns seconds since the epoch and exists for tests.
    """

    def __init__(
        self,
        *,
        provider_ids: Mapping[str, str | None] | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._provider_ids = {**PROVIDER_IDS, **(provider_ids or {})}
        self._clock = clock
        self._prices: dict[tuple[str, str, _Overrides], _Price | None] = {}
        self._warned: set[tuple[str, str]] = set()

    def cost(
        self,
        provider_type: str,
        model: str,
        *,
        input_tokens: int = 0,
        cached_tokens: int = 0,
        cache_write_tokens: int = 0,
        output_tokens: int = 0,
        input_cost_per_mtok: float | None = None,
        output_cost_per_mtok: float | None = None,
        cached_input_cost_per_mtok: float | None = None,
    ) -> Decimal | None:
        """The cost of one request in USD, or ``None`` when the model has no known price.

        The ``*_cost_per_mtok`` arguments are the model's overrides from the config file
        (USD per million tokens); each one set replaces the list price it names.
        """
        key = (
            provider_type,
            model,
            (input_cost_per_mtok, output_cost_per_mtok, cached_input_cost_per_mtok),
        )
        try:
            price = self._prices[key]
        except KeyError:
            price = self._resolve(key)
        else:
            if price is not None and price.expires_at <= self._clock():
                price = self._resolve(key)
        if price is None:
            return None
        rates = price.rates(input_tokens)
        uncached = max(input_tokens - cached_tokens - cache_write_tokens, 0)
        cost = (
            uncached * rates.input
            + cached_tokens * rates.cached
            + cache_write_tokens * rates.cache_write
            + output_tokens * rates.output
        )
        return cost.quantize(COST_QUANTUM)

    def usage_cost(self, deployment: Deployment, usage: Usage | None) -> Decimal | None:
        """The cost of a response's ``usage`` on ``deployment``, with its overrides.

        Cache writes come from ``prompt_tokens_details.cache_write_tokens``, where usage
        translated from Anthropic carries them. No usage means unknown cost.
        """
        if usage is None:
            return None
        return self.cost(
            deployment.provider.type,
            deployment.upstream_model,
            input_tokens=usage.prompt_tokens,
            cached_tokens=usage.cached_tokens,
            cache_write_tokens=usage.cache_write_tokens,
            output_tokens=usage.completion_tokens,
            input_cost_per_mtok=deployment.input_cost_per_mtok,
            output_cost_per_mtok=deployment.output_cost_per_mtok,
            cached_input_cost_per_mtok=deployment.cached_input_cost_per_mtok,
        )

    def warm(self, deployments: Iterable[Deployment]) -> None:
        """Resolve the prices of ``deployments`` now, at start-up, not on a first request.

        Loading genai-prices' data takes 0.1 s with a bytecode cache and about half a
        second without one (its data module is compiled from source then); unknown
        prices are reported here, at start-up, rather than on the first request that
        uses them. The memory that loading freed again goes back to the system
        (``_memory``), which matters when the data module was compiled.
        """
        from ._memory import release_free_memory

        for d in deployments:
            self.cost(
                d.provider.type,
                d.upstream_model,
                input_cost_per_mtok=d.input_cost_per_mtok,
                output_cost_per_mtok=d.output_cost_per_mtok,
                cached_input_cost_per_mtok=d.cached_input_cost_per_mtok,
            )
        release_free_memory()

    def refresh(self) -> None:
        """Forget resolved prices, e.g. after installing a new genai-prices snapshot."""
        self._prices.clear()

    def _resolve(self, key: tuple[str, str, _Overrides]) -> _Price | None:
        provider_type, model, overrides = key
        for seen in (self._prices, self._warned):
            if len(seen) >= _MAX_ENTRIES:
                seen.clear()
        listed = self._list_price(provider_type, model)
        price = _apply_overrides(listed, overrides)
        if price is None and (provider_type, model) not in self._warned:
            self._warned.add((provider_type, model))
            names = ("input_cost_per_mtok", "output_cost_per_mtok")
            missing = [
                name for name, value in zip(names, overrides[:2], strict=True) if value is None
            ]
            logger.warning(
                "no price known for model %r of provider type %r; its cost is recorded as "
                "unknown (set %s in its [[models]] entry)",
                model,
                provider_type,
                " and ".join(missing),
                extra={"event": "price_unknown", "provider_type": provider_type, "model": model},
            )
        self._prices[key] = price
        return price

    def _list_price(self, provider_type: str, model: str) -> _Price | None:
        from genai_prices import Usage, calc_price  # 0.1-0.5 s and 7 MB: load on first use

        now = self._clock()
        when = datetime.fromtimestamp(now, UTC)
        provider_id = self._provider_ids.get(provider_type)
        try:
            found = calc_price(
                Usage(), model, provider_id=provider_id, genai_request_timestamp=when
            )
        except LookupError:
            return None
        except Exception:  # third-party data: a surprise there must not fail a request
            logger.exception("genai-prices failed to price model %r", model)
            return None
        return _from_model_price(found.model_price, _next_change(found.model.prices, when))


def _from_model_price(model_price: ModelPrice, expires_at: float) -> _Price | None:
    """Per-token rates, one set per tier band; ``None`` when no token price is listed."""
    listed = [
        getattr(model_price, key)
        for key in ("input_mtok", "cache_read_mtok", "cache_write_mtok", "output_mtok")
    ]
    if listed[0] is None and listed[3] is None:
        return None
    starts = sorted({tier.start for price in listed if price is not None for tier in _tiers(price)})

    def band(start: int) -> _Rates:
        input_, read, write, output = (_at(price, start) for price in listed)
        input_ = input_ or Decimal(0)  # unlisted cache rates: billed as input, as genai-prices does
        return _Rates(
            input=input_ / _PER_MTOK,
            cached=(input_ if read is None else read) / _PER_MTOK,
            cache_write=(input_ if write is None else write) / _PER_MTOK,
            output=(output or Decimal(0)) / _PER_MTOK,
        )

    tiers = tuple((start, band(start)) for start in reversed(starts))
    return _Price(base=band(-1), tiers=tiers, expires_at=expires_at)


def _tiers(price: Decimal | TieredPrices) -> list[Any]:
    return getattr(price, "tiers", [])


def _at(price: Decimal | TieredPrices | None, start: int) -> Decimal | None:
    """The rate of a flat or tiered list price for prompts longer than ``start`` tokens."""
    if price is None or isinstance(price, Decimal):
        return price
    rate = price.base
    for tier in price.tiers:  # sorted by start
        if tier.start <= start:
            rate = tier.price
    return rate


def _apply_overrides(listed: _Price | None, overrides: _Overrides) -> _Price | None:
    """Overrides replace list rates; unset cache rates keep the list's ratio to input."""
    input_o, output_o, cached_o = (None if v is None else _per_token(v) for v in overrides)
    if listed is None:
        if input_o is None or output_o is None:
            return None
        rates = _Rates(input_o, input_o if cached_o is None else cached_o, input_o, output_o)
        return _Price(base=rates, tiers=(), expires_at=_NEVER)
    if input_o is None and output_o is None and cached_o is None:
        return listed

    def merged(rates: _Rates) -> _Rates:
        return _merge(rates, input_o, output_o, cached_o)

    tiers = tuple((start, merged(rates)) for start, rates in listed.tiers)
    return _Price(base=merged(listed.base), tiers=tiers, expires_at=listed.expires_at)


def _merge(
    rates: _Rates, input_o: Decimal | None, output_o: Decimal | None, cached_o: Decimal | None
) -> _Rates:
    """One band's list rates with overrides; an overridden input rate scales cache rates."""
    if input_o is None:
        cached, write = rates.cached, rates.cache_write
    elif rates.input:
        cached = rates.cached * input_o / rates.input
        write = rates.cache_write * input_o / rates.input
    else:  # no list ratio to keep: bill as input
        cached = write = input_o
    return _Rates(
        input=rates.input if input_o is None else input_o,
        cached=cached if cached_o is None else cached_o,
        cache_write=write,
        output=rates.output if output_o is None else output_o,
    )


def _per_token(usd_per_mtok: float) -> Decimal:
    return Decimal(str(usd_per_mtok)) / _PER_MTOK


def _next_change(prices: ModelPrice | list[ConditionalPrice], now: datetime) -> float:
    """When a model's dated (or time-of-day) list prices may next switch; never if flat."""
    if not isinstance(prices, list):
        return _NEVER
    changes: list[datetime] = []
    for conditional in prices:
        constraint = conditional.constraint
        if isinstance(getattr(constraint, "start_date", None), date):
            changes.append(datetime.combine(constraint.start_date, datetime.min.time(), UTC))
        for name in ("start_time", "end_time"):
            moment = getattr(constraint, name, None)
            if moment is not None:
                at = moment if moment.tzinfo else moment.replace(tzinfo=UTC)
                changes += [
                    datetime.combine(now.date() + timedelta(days=d), at) for d in (-1, 0, 1)
                ]
    future = [change.timestamp() for change in changes if change > now]
    return min(future, default=_NEVER)
