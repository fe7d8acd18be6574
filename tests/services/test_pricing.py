"""PricingService: what a request costs, checked against genai-prices' own data."""

from __future__ import annotations

import logging
import re
import socket
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from genai_prices import Usage as ListUsage
from genai_prices import calc_price
from genai_prices.data_snapshot import get_snapshot

from symbiosis.providers import AnthropicProvider, OpenAIProvider
from symbiosis.services.pricing import COST_QUANTUM, PricingService
from symbiosis.services.routing import Deployment
from symbiosis.wire import Usage

MTOK = Decimal(1_000_000)


def list_rates(provider_id: str, model: str):
    """genai-prices' current list price of ``model``, USD per million tokens."""
    return calc_price(ListUsage(), model, provider_id=provider_id).model_price


def usd(amount: Decimal) -> Decimal:
    return amount.quantize(COST_QUANTUM)


def warnings_from(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == "symbiosis.pricing" and r.levelname == "WARNING"]


def test_override_beats_list_price():
    pricing = PricingService()
    tokens = {"input_tokens": 1000, "output_tokens": 500}

    listed = pricing.cost("openai", "gpt-4o-mini", **tokens)
    custom = pricing.cost(
        "openai", "gpt-4o-mini", **tokens, input_cost_per_mtok=1.0, output_cost_per_mtok=2.0
    )

    assert custom == usd(Decimal(1000 * 1 + 500 * 2) / MTOK)
    assert custom != listed


def test_an_override_replaces_only_the_rate_it_names():
    rates = list_rates("openai", "gpt-4o-mini")

    cost = PricingService().cost(
        "openai", "gpt-4o-mini", input_tokens=1000, output_tokens=500, output_cost_per_mtok=3.0
    )

    assert cost == usd((1000 * rates.input_mtok + 500 * Decimal(3)) / MTOK)


def test_cached_input_is_priced_at_the_cached_rate():
    rates = list_rates("openai", "gpt-4o-mini")
    pricing = PricingService()

    cost = pricing.cost(
        "openai", "gpt-4o-mini", input_tokens=10_000, cached_tokens=4_000, output_tokens=100
    )

    # cached tokens are part of the prompt, billed at the cache-read rate instead
    expected = 6_000 * rates.input_mtok + 4_000 * rates.cache_read_mtok + 100 * rates.output_mtok
    assert cost == usd(expected / MTOK)
    assert cost < pricing.cost("openai", "gpt-4o-mini", input_tokens=10_000, output_tokens=100)


def test_cached_input_override():
    cost = PricingService().cost(
        "openai",
        "gpt-4o-mini",
        input_tokens=10_000,
        cached_tokens=4_000,
        output_tokens=100,
        input_cost_per_mtok=1.0,
        output_cost_per_mtok=2.0,
        cached_input_cost_per_mtok=0.25,
    )

    assert cost == usd(Decimal(6_000 * 1 + 4_000 * Decimal("0.25") + 100 * 2) / MTOK)


def test_overriding_the_input_rate_keeps_the_list_cache_discount():
    rates = list_rates("openai", "gpt-4o-mini")
    doubled = rates.input_mtok * 2

    cost = PricingService().cost(
        "openai",
        "gpt-4o-mini",
        input_tokens=10_000,
        cached_tokens=4_000,
        input_cost_per_mtok=float(doubled),
    )

    # the cached rate keeps its list ratio to the (now doubled) input rate
    assert cost == usd((6_000 * doubled + 4_000 * rates.cache_read_mtok * 2) / MTOK)


def test_list_price_of_a_well_known_openai_model():
    rates = list_rates("openai", "gpt-4o")
    usage = ListUsage(input_tokens=12_345, cache_read_tokens=2_000, output_tokens=678)

    cost = PricingService().cost(
        "openai", "gpt-4o", input_tokens=12_345, cached_tokens=2_000, output_tokens=678
    )

    derived = 10_345 * rates.input_mtok + 2_000 * rates.cache_read_mtok + 678 * rates.output_mtok
    assert cost == usd(derived / MTOK)
    assert cost == usd(calc_price(usage, "gpt-4o", provider_id="openai").total_price)


def test_anthropic_cache_reads_and_writes_are_priced_at_their_rates():
    model = "claude-3-5-haiku-latest"
    rates = list_rates("anthropic", model)
    # Anthropic reports input 100, cache read 2000, cache creation 500: OpenAI-style usage
    # counts all three as prompt tokens, reads as cached tokens and writes apart
    cost = PricingService().cost(
        "anthropic",
        model,
        input_tokens=100 + 2_000 + 500,
        cached_tokens=2_000,
        cache_write_tokens=500,
        output_tokens=300,
    )

    expected = (
        100 * rates.input_mtok
        + 2_000 * rates.cache_read_mtok
        + 500 * rates.cache_write_mtok
        + 300 * rates.output_mtok
    )
    assert cost == usd(expected / MTOK)


@pytest.mark.parametrize(
    ("provider_type", "provider_id"), [("openai", "openai"), ("anthropic", "anthropic")]
)
def test_every_listed_model_costs_what_genai_prices_says(provider_type: str, provider_id: str):
    """Tiered prices included: the prompt sizes cross the long-context thresholds."""
    pricing = PricingService()
    provider = next(p for p in get_snapshot().providers if p.id == provider_id)
    checked = 0
    for model in provider.models:
        try:
            rates = list_rates(provider_id, model.id)
        except LookupError:  # an id that is not itself a model name, e.g. "ft:gpt-4o"
            assert pricing.cost(provider_type, model.id, input_tokens=1) is None
            continue
        for input_tokens in (1_000, 250_000, 1_100_000):
            cached, written, output = input_tokens // 4, input_tokens // 10, 777
            listed = calc_price(
                ListUsage(
                    input_tokens=input_tokens,
                    cache_read_tokens=cached,
                    cache_write_tokens=written,
                    output_tokens=output,
                ),
                model.id,
                provider_id=provider_id,
            )
            cost = pricing.cost(
                provider_type,
                model.id,
                input_tokens=input_tokens,
                cached_tokens=cached,
                cache_write_tokens=written,
                output_tokens=output,
            )
            if rates.input_mtok is None and rates.output_mtok is None:
                assert cost is None, model.id  # priced per image, second, ...: not by token
            else:
                assert cost == usd(listed.total_price), (model.id, input_tokens)
                checked += 1
    assert checked > 10


def test_azure_deployments_named_like_the_model_get_its_list_price():
    rates = list_rates("azure", "gpt-4o-mini")
    pricing = PricingService()

    cost = pricing.cost("azure_openai", "gpt-4o-mini", input_tokens=1000, output_tokens=10)

    assert cost == usd((1000 * rates.input_mtok + 10 * rates.output_mtok) / MTOK)
    assert pricing.cost("azure_openai", "prod-chat-eu", input_tokens=1000) is None


def test_openai_compatible_servers_are_priced_by_model_name_only():
    rates = list_rates("openai", "gpt-4o-mini")
    pricing = PricingService()

    cost = pricing.cost("openai_compatible", "gpt-4o-mini", input_tokens=1000)

    assert cost == usd(1000 * rates.input_mtok / MTOK)
    assert pricing.cost("openai_compatible", "my-local-finetune", input_tokens=1000) is None


def test_unknown_model_costs_none_and_warns_once(caplog: pytest.LogCaptureFixture):
    pricing = PricingService()

    with caplog.at_level(logging.WARNING, logger="symbiosis.pricing"):
        costs = [
            pricing.cost("openai", "no-such-model-xyz", input_tokens=10, output_tokens=5)
            for _ in range(3)
        ]
        pricing.cost("anthropic", "claude-none-such", input_tokens=10)

    assert costs == [None, None, None]
    warnings = warnings_from(caplog)
    assert [(w.provider_type, w.model) for w in warnings] == [
        ("openai", "no-such-model-xyz"),
        ("anthropic", "claude-none-such"),
    ]
    assert "output_cost_per_mtok" in warnings[0].getMessage()


def test_unknown_model_with_overrides_is_priced_without_warning(caplog: pytest.LogCaptureFixture):
    pricing = PricingService()

    with caplog.at_level(logging.WARNING, logger="symbiosis.pricing"):
        cost = pricing.cost(
            "openai_compatible",
            "my-local-finetune",
            input_tokens=2_000,
            cached_tokens=500,
            output_tokens=100,
            input_cost_per_mtok=0.5,
            output_cost_per_mtok=1.5,
        )

    # no cached rate set and no list to take a discount from: cached tokens cost input
    assert cost == usd(Decimal(2_000 * Decimal("0.5") + 100 * Decimal("1.5")) / MTOK)
    assert warnings_from(caplog) == []


def test_unknown_model_with_half_its_overrides_is_unknown(caplog: pytest.LogCaptureFixture):
    pricing = PricingService()

    with caplog.at_level(logging.WARNING, logger="symbiosis.pricing"):
        cost = pricing.cost("openai_compatible", "my-local", input_tokens=1, input_cost_per_mtok=1)

    assert cost is None
    [warning] = warnings_from(caplog)
    assert "output_cost_per_mtok" in warning.getMessage()
    assert "input_cost_per_mtok" not in warning.getMessage()


def test_zero_tokens_cost_nothing():
    pricing = PricingService()

    assert pricing.cost("openai", "gpt-4o-mini") == 0
    assert pricing.cost("anthropic", "claude-3-5-haiku-latest", cache_write_tokens=0) == 0
    free = {"input_cost_per_mtok": 0, "output_cost_per_mtok": 0}
    assert pricing.cost("openai_compatible", "local", **free) == 0


LONG_PROMPT = ListUsage(input_tokens=300_000, output_tokens=1_000)


def listed_total(provider_id: str, model: str, when: datetime) -> Decimal:
    """genai-prices' price of ``LONG_PROMPT`` on ``model`` at ``when``."""
    found = calc_price(LONG_PROMPT, model, provider_id=provider_id, genai_request_timestamp=when)
    return usd(found.total_price)


def _model_with_a_dated_price_change() -> tuple[str, str, datetime]:
    """An OpenAI or Anthropic model whose list price for a long prompt changes on a date."""
    for provider in get_snapshot().providers:
        if provider.id not in ("openai", "anthropic"):
            continue
        for model in provider.models:
            for conditional in model.prices if isinstance(model.prices, list) else ():
                start = getattr(conditional.constraint, "start_date", None)
                if start is None:
                    continue
                on = datetime.combine(start, datetime.min.time(), UTC)
                before = listed_total(provider.id, model.id, on - timedelta(seconds=1))
                if before != listed_total(provider.id, model.id, on):
                    return provider.id, model.id, on
    pytest.skip("this genai-prices data has no dated price change for OpenAI or Anthropic")


def test_a_dated_list_price_change_applies_from_its_date():
    provider_id, model, on = _model_with_a_dated_price_change()
    an_hour_before, a_second_after = on - timedelta(hours=1), on + timedelta(seconds=1)
    now = [an_hour_before.timestamp()]
    pricing = PricingService(clock=lambda: now[0])

    before = pricing.cost(provider_id, model, input_tokens=300_000, output_tokens=1_000)
    now[0] = a_second_after.timestamp()
    after = pricing.cost(provider_id, model, input_tokens=300_000, output_tokens=1_000)

    assert before == listed_total(provider_id, model, an_hour_before)
    assert after == listed_total(provider_id, model, a_second_after)
    assert before != after


async def test_usage_cost_uses_the_deployment_overrides():
    async with OpenAIProvider(api_key="sk-test") as provider:
        deployment = Deployment(
            name="chat",
            provider_name="openai",
            provider=provider,
            upstream_model="gpt-4o-mini",
            input_cost_per_mtok=1.0,
            output_cost_per_mtok=4.0,
            cached_input_cost_per_mtok=0.5,
        )
        usage = Usage.model_validate(
            {
                "prompt_tokens": 3_000,
                "completion_tokens": 200,
                "total_tokens": 3_200,
                "prompt_tokens_details": {"cached_tokens": 1_000},
            }
        )

        cost = PricingService().usage_cost(deployment, usage)

    assert cost == usd(Decimal(2_000 * 1 + 1_000 * Decimal("0.5") + 200 * 4) / MTOK)


async def test_usage_cost_prices_anthropic_cache_writes():
    model = "claude-3-5-haiku-latest"
    rates = list_rates("anthropic", model)
    async with AnthropicProvider(api_key="sk-test") as provider:
        deployment = Deployment(
            name="claude", provider_name="claude", provider=provider, upstream_model=model
        )
        # the shape the Anthropic provider gives: writes apart in prompt_tokens_details
        usage = Usage.model_validate(
            {
                "prompt_tokens": 100 + 2_000 + 500,
                "completion_tokens": 300,
                "total_tokens": 2_900,
                "prompt_tokens_details": {
                    "cached_tokens": 2_000,
                    "cache_write_tokens": 500,
                },
            }
        )

        cost = PricingService().usage_cost(deployment, usage)

    expected = (
        100 * rates.input_mtok
        + 2_000 * rates.cache_read_mtok
        + 500 * rates.cache_write_mtok
        + 300 * rates.output_mtok
    )
    assert cost == usd(expected / MTOK)
    assert PricingService().usage_cost(deployment, None) is None


def test_pricing_needs_no_network(monkeypatch: pytest.MonkeyPatch):
    def refuse(*args: object) -> None:
        raise AssertionError("pricing tried to reach the network")

    monkeypatch.setattr(socket.socket, "connect", refuse)

    assert PricingService().cost("anthropic", "claude-3-5-haiku-latest", input_tokens=10) > 0


async def test_warm_reports_unknown_prices_before_the_first_request(
    caplog: pytest.LogCaptureFixture,
):
    async with OpenAIProvider(api_key="sk-test") as provider:
        known, unknown = (
            Deployment(name=m, provider_name="openai", provider=provider, upstream_model=m)
            for m in ("gpt-4o-mini", "house-model")
        )
        pricing = PricingService()

        with caplog.at_level(logging.WARNING, logger="symbiosis.pricing"):
            pricing.warm([known, unknown])
            at_start_up = [w.model for w in warnings_from(caplog)]
            cost = pricing.usage_cost(unknown, Usage(prompt_tokens=5, completion_tokens=1))

    assert at_start_up == ["house-model"]
    assert cost is None
    assert len(warnings_from(caplog)) == 1


def test_the_examples_in_the_pricing_docs_run():
    text = (Path(__file__).parents[2] / "docs" / "pricing.md").read_text(encoding="utf-8")
    examples = re.findall(r"```python\n(.*?)```", text, re.DOTALL)
    assert examples
    for example in examples:
        exec(example, {})
