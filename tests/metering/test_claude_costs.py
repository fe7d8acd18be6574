"""Claude requests are metered like any other: cache reads and writes priced at their rates."""

from __future__ import annotations

from decimal import Decimal

import httpx
import openai
from genai_prices import Usage as ListUsage
from genai_prices import calc_price
from pytest_httpx import HTTPXMock

from symbiosis.services.usage import MemoryUsageRecorder

from ..conftest import TEST_KEY, MakeApp

MODEL = "claude-3-5-haiku-latest"
CONFIG = f"""
[providers.claude]
type = "anthropic"
base_url = "https://anthropic.test"
api_key = "sk-ant-upstream"

[[models]]
name = "haiku"
provider = "claude"
model = "{MODEL}"
"""
USAGE = {
    "input_tokens": 300,
    "cache_read_input_tokens": 4000,
    "cache_creation_input_tokens": 1000,
    "output_tokens": 200,
}
MTOK = Decimal(1_000_000)


def _expected_cost() -> Decimal:
    """From genai-prices' own list rates for the model, each token kind at its rate."""
    rates = calc_price(ListUsage(), MODEL, provider_id="anthropic").model_price
    return (
        USAGE["input_tokens"] * rates.input_mtok
        + USAGE["cache_read_input_tokens"] * rates.cache_read_mtok
        + USAGE["cache_creation_input_tokens"] * rates.cache_write_mtok
        + USAGE["output_tokens"] * rates.output_mtok
    ) / MTOK


async def test_claude_chat_completion_is_priced_with_cache_tokens(
    make_app: MakeApp, httpx_mock: HTTPXMock
) -> None:
    httpx_mock.add_response(
        url="https://anthropic.test/v1/messages",
        json={
            "id": "msg_1",
            "type": "message",
            "role": "assistant",
            "model": MODEL,
            "content": [{"type": "text", "text": "cached hello"}],
            "stop_reason": "end_turn",
            "stop_sequence": None,
            "usage": USAGE,
        },
    )
    usage = MemoryUsageRecorder()
    app = make_app(CONFIG, usage=usage)
    http = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://gateway")
    client = openai.AsyncOpenAI(
        base_url="http://gateway/v1", api_key=TEST_KEY, max_retries=0, http_client=http
    )
    raw = await client.chat.completions.with_raw_response.create(
        model="haiku", messages=[{"role": "user", "content": "hello"}]
    )
    completion = raw.parse()
    assert completion.usage.prompt_tokens == 5300
    assert completion.usage.prompt_tokens_details.cached_tokens == 4000

    expected = _expected_cost()
    assert abs(Decimal(raw.headers["x-symbiosis-cost"]) - expected) < Decimal("1e-10")
    (event,) = usage.events
    assert (event.input_tokens, event.cached_tokens, event.cache_write_tokens) == (5300, 4000, 1000)
    assert event.cost_usd == Decimal(raw.headers["x-symbiosis-cost"])
