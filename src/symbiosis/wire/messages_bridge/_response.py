"""OpenAI chat completion -> Anthropic message."""

from __future__ import annotations

from typing import Any

import orjson

from ...exceptions import UpstreamError
from ..anthropic import AnthropicBlock, AnthropicMessage, AnthropicUsage
from ..chat import ChatCompletion, Usage

#: OpenAI ``finish_reason`` -> Anthropic ``stop_reason``.
STOP_REASONS: dict[str, str] = {
    "stop": "end_turn",
    "length": "max_tokens",
    "tool_calls": "tool_use",
    "function_call": "tool_use",
    "content_filter": "refusal",
}


def to_anthropic_usage(usage: Usage | None) -> AnthropicUsage:
    """Anthropic's counts: ``input_tokens`` excludes the cache reads and writes."""
    usage = usage or Usage()
    cached, written = usage.cached_tokens, usage.cache_write_tokens
    return AnthropicUsage(
        input_tokens=max(0, usage.prompt_tokens - cached - written),
        cache_creation_input_tokens=written,
        cache_read_input_tokens=cached,
        output_tokens=usage.completion_tokens,
    )


def stop_reason(finish_reason: str | None, *, used_tools: bool) -> str:
    """``end_turn`` unless the chat model ran out of tokens, called tools or refused."""
    if used_tools and finish_reason != "length":
        return "tool_use"
    return STOP_REASONS.get(finish_reason or "stop", "end_turn")


def tool_input(arguments: str | None) -> Any:
    """A tool call's JSON-string arguments as a ``tool_use`` input object."""
    try:
        value = orjson.loads(arguments or "{}")
    except orjson.JSONDecodeError as exc:
        raise UpstreamError(f"the model sent tool arguments that are not JSON: {exc}") from exc
    if not isinstance(value, dict):
        raise UpstreamError("the model sent tool arguments that are not a JSON object")
    return value


def to_anthropic_message(completion: ChatCompletion, *, thinking: bool) -> AnthropicMessage:
    """The first choice as an Anthropic message; reasoning as a thinking block if asked."""
    if not completion.choices:
        raise UpstreamError("the model answered without a choice")
    choice = completion.choices[0]
    message = choice.message
    blocks: list[AnthropicBlock] = []
    reasoning = (message.model_extra or {}).get("reasoning") or message.reasoning_content
    if thinking and reasoning:
        blocks.append(AnthropicBlock(type="thinking", thinking=reasoning, signature=""))
    for text in (message.content, message.refusal):
        if text:
            blocks.append(AnthropicBlock(type="text", text=text))
    for call in message.tool_calls or []:
        blocks.append(
            AnthropicBlock(
                type="tool_use",
                id=call.id,
                name=call.function.name,
                input=tool_input(call.function.arguments),
            )
        )
    finish = "content_filter" if message.refusal else choice.finish_reason
    return AnthropicMessage(
        id=completion.id,
        model=completion.model,
        content=blocks,
        stop_reason=stop_reason(finish, used_tools=bool(message.tool_calls)),
        stop_sequence=None,
        usage=to_anthropic_usage(completion.usage),
    )
