"""OpenAI chat requests to Anthropic Messages bodies, and Anthropic messages back.

Every OpenAI field is translated, dropped (logged at debug level) or refused with a
400, so a client never silently gets a different kind of answer than it asked for.
``docs/anthropic.md`` lists each rule; the tests pin the exact upstream bodies.
"""

from __future__ import annotations

import logging
import time
from typing import Any

import orjson
from pydantic import BaseModel

from ...exceptions import InvalidRequestError, UpstreamError
from ...wire import (
    AssistantMessage,
    ChatCompletion,
    ChatCompletionRequest,
    Choice,
    DeveloperMessage,
    FunctionCall,
    ImagePart,
    Message,
    ResponseMessage,
    SystemMessage,
    TextPart,
    Tool,
    ToolCall,
    ToolMessage,
    UserMessage,
)
from ...wire.anthropic import AnthropicMessage
from ...wire.chat import AudioPart, ContentPart, FilePart, RefusalPart

log = logging.getLogger("symbiosis.providers.anthropic")

Block = dict[str, Any]

#: ``reasoning_effort`` -> extended-thinking ``budget_tokens`` (Anthropic's minimum is 1024).
THINKING_BUDGETS: dict[str, int] = {
    "minimal": 1024,
    "low": 2048,
    "medium": 8192,
    "high": 16384,
    "xhigh": 32768,
}

FINISH_REASONS: dict[str, str] = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "pause_turn": "stop",
    "max_tokens": "length",
    "model_context_window_exceeded": "length",
    "tool_use": "tool_calls",
    "refusal": "content_filter",
}

# No Anthropic equivalent, and (past the refusals) no change to what comes back.
_DROPPED = (
    "n",
    "logprobs",
    "logit_bias",
    "presence_penalty",
    "frequency_penalty",
    "seed",
    "top_logprobs",
    "metadata",
    "store",
    "service_tier",
)
# Extras (fields the wire model does not declare) that ask for something we cannot give.
_REFUSED_EXTRAS = ("functions", "function_call", "audio", "web_search_options")
# Extras that are Anthropic parameters already, sent as they are.
_PASSED_EXTRAS = ("top_k",)
# Extras consumed by the translation itself.
_USED_EXTRAS = ("safety_identifier", "modalities")


# -- request ----------------------------------------------------------------------------


def to_anthropic(request: ChatCompletionRequest, *, default_max_tokens: int) -> dict[str, Any]:
    """The ``POST /v1/messages`` body for an OpenAI chat request (without ``stream``)."""
    _refuse_unsupported(request)
    system, messages = _messages(request.messages)
    body: dict[str, Any] = {"model": request.model, "messages": messages}
    if system:
        body["system"] = system
    body.update(_limits(request, default_max_tokens))
    body.update(_sampling(request))
    body.update(_tools(request))
    body.update(_output(request))
    _log_dropped(request)
    return body


def _refuse_unsupported(request: ChatCompletionRequest) -> None:
    """A 400 for what would change the result if we silently dropped it."""
    extras = request.model_extra or {}
    if request.n is not None and request.n > 1:
        raise InvalidRequestError("n > 1 is not supported by this model's provider", param="n")
    if request.logprobs:
        raise InvalidRequestError("logprobs are not available for this model", param="logprobs")
    if request.logit_bias:
        raise InvalidRequestError(
            "logit_bias is not supported for this model (token ids are tokenizer-specific)",
            param="logit_bias",
        )
    if request.temperature is not None and request.temperature > 1:
        raise InvalidRequestError(
            "temperature must be between 0 and 1 for this model", param="temperature"
        )
    for name in _REFUSED_EXTRAS:
        if extras.get(name) is not None:
            raise InvalidRequestError(f"{name} is not supported for this model", param=name)
    modalities = extras.get("modalities")
    if modalities is not None and list(modalities) != ["text"]:
        raise InvalidRequestError("only text output is supported", param="modalities")


def _log_dropped(request: ChatCompletionRequest) -> None:
    dropped = [name for name in _DROPPED if name in request.model_fields_set]
    known = (*_REFUSED_EXTRAS, *_PASSED_EXTRAS, *_USED_EXTRAS)
    dropped += [name for name in request.model_extra or {} if name not in known]
    if dropped:
        log.debug("dropped %s: no equivalent in the Messages API", ", ".join(dropped))


def _limits(request: ChatCompletionRequest, default_max_tokens: int) -> dict[str, Any]:
    """``max_tokens`` (required upstream) and ``thinking`` from ``reasoning_effort``.

    With thinking on, the budget is added to the limit: Anthropic needs
    ``max_tokens > budget_tokens`` and counts thinking in it.
    """
    limit = request.max_completion_tokens or request.max_tokens or default_max_tokens
    effort = request.reasoning_effort
    if effort is None or effort == "none":
        return {"max_tokens": limit}
    budget = THINKING_BUDGETS.get(effort)
    if budget is None:
        raise InvalidRequestError(
            f"reasoning_effort must be one of none, {', '.join(THINKING_BUDGETS)}",
            param="reasoning_effort",
        )
    return {
        "max_tokens": budget + limit,
        "thinking": {"type": "enabled", "budget_tokens": budget},
    }


def _sampling(request: ChatCompletionRequest) -> dict[str, Any]:
    extras = request.model_extra or {}
    out: dict[str, Any] = {}
    if request.temperature is not None:
        out["temperature"] = request.temperature
    if request.top_p is not None:
        out["top_p"] = request.top_p
    out.update({name: extras[name] for name in _PASSED_EXTRAS if extras.get(name) is not None})
    stop = [request.stop] if isinstance(request.stop, str) else request.stop
    if stop:
        out["stop_sequences"] = stop
    user = request.user or extras.get("safety_identifier")
    if user:
        out["metadata"] = {"user_id": user}
    return out


def _output(request: ChatCompletionRequest) -> dict[str, Any]:
    """``response_format`` json_schema -> structured outputs (``output_config.format``)."""
    fmt = request.response_format
    if fmt is None or fmt.type == "text":
        return {}
    if fmt.type == "json_object":
        log.debug("dropped response_format json_object: the prompt must already ask for JSON")
        return {}
    schema = fmt.json_schema.schema_ if fmt.json_schema else None
    if not schema:
        raise InvalidRequestError(
            "response_format json_schema needs a schema", param="response_format"
        )
    return {"output_config": {"format": {"type": "json_schema", "schema": schema}}}


def _tools(request: ChatCompletionRequest) -> dict[str, Any]:
    choice = request.tool_choice
    if not request.tools:
        if choice == "required" or (choice is not None and not isinstance(choice, str)):
            raise InvalidRequestError("tool_choice needs tools", param="tool_choice")
        return {}
    out: dict[str, Any] = {"tools": [_tool(tool) for tool in request.tools]}
    if choice is None:
        anthropic_choice: Block | None = None
    elif isinstance(choice, str):
        anthropic_choice = {"type": {"auto": "auto", "none": "none", "required": "any"}[choice]}
    else:
        anthropic_choice = {"type": "tool", "name": choice.function.name}
    if request.parallel_tool_calls is False and choice != "none":
        anthropic_choice = {**(anthropic_choice or {"type": "auto"})}
        anthropic_choice["disable_parallel_tool_use"] = True
    if anthropic_choice is not None:
        out["tool_choice"] = anthropic_choice
    return out


def _tool(tool: Tool) -> Block:
    function = tool.function
    out: Block = {
        "name": function.name,
        "input_schema": function.parameters or {"type": "object", "properties": {}},
    }
    if function.description:
        out["description"] = function.description
    if function.strict:
        out["strict"] = True
    return out | _cache_control(tool)


def _cache_control(part: BaseModel) -> Block:
    """Anthropic prompt-caching marker a client put on a content part or tool, kept."""
    value = (part.model_extra or {}).get("cache_control")
    return {"cache_control": value} if value is not None else {}


# -- request: messages ------------------------------------------------------------------


def _messages(messages: list[Message]) -> tuple[list[Block], list[Block]]:
    """Top-level ``system`` blocks and the alternating user/assistant turns.

    System and developer messages, wherever they are, become one ``system`` text block
    per part; consecutive same-role turns merge into one (tool results become a user
    turn, so parallel tool results share one message).
    """
    system: list[Block] = []
    turns: list[Block] = []
    for i, message in enumerate(messages):
        if isinstance(message, SystemMessage | DeveloperMessage):
            system.extend(_texts(message.content))
            continue
        if getattr(message, "name", None):
            log.debug("dropped messages[%d].name: no equivalent in the Messages API", i)
        role, blocks = _turn(i, message)
        if not blocks:
            log.debug("dropped messages[%d]: no content", i)
        elif turns and turns[-1]["role"] == role:
            turns[-1]["content"].extend(blocks)
        else:
            turns.append({"role": role, "content": blocks})
    for turn in turns:
        content = turn["content"]
        if len(content) == 1 and content[0].keys() == {"type", "text"}:
            turn["content"] = content[0]["text"]
    return system, turns


def _turn(i: int, message: Message) -> tuple[str, list[Block]]:
    if isinstance(message, UserMessage):
        if isinstance(message.content, str):
            return "user", _texts(message.content)
        return "user", [
            block
            for j, part in enumerate(message.content)
            for block in _part(f"messages[{i}].content[{j}]", part)
        ]
    if isinstance(message, AssistantMessage):
        return "assistant", _assistant(i, message)
    if isinstance(message, ToolMessage):
        content: str | list[Block] = message.content
        if not isinstance(content, str):
            content = _texts(content)
        return "user", [
            {"type": "tool_result", "tool_use_id": message.tool_call_id, "content": content}
        ]
    raise InvalidRequestError(
        "function messages are not supported for this model; use tools",
        param=f"messages[{i}]",
    )


def _texts(content: str | list[TextPart]) -> list[Block]:
    """Text blocks, leaving out empty ones (Anthropic refuses blank text blocks)."""
    parts = [TextPart(text=content)] if isinstance(content, str) else content
    return [
        {"type": "text", "text": part.text} | _cache_control(part)
        for part in parts
        if part.text.strip()
    ]


def _part(param: str, part: ContentPart) -> list[Block]:
    if isinstance(part, TextPart):
        return _texts([part])
    if isinstance(part, RefusalPart):
        return _texts(part.refusal)
    if isinstance(part, ImagePart):
        if part.image_url.detail is not None:
            log.debug("dropped %s.image_url.detail", param)
        return [
            {"type": "image", "source": _source(param, part.image_url.url)} | _cache_control(part)
        ]
    if isinstance(part, FilePart) and isinstance(part.file.get("file_data"), str):
        block: Block = {"type": "document", "source": _source(param, part.file["file_data"])}
        if part.file.get("filename"):
            block["title"] = part.file["filename"]
        return [block | _cache_control(part)]
    if isinstance(part, AudioPart):
        raise InvalidRequestError("audio input is not supported for this model", param=param)
    raise InvalidRequestError("only files sent inline as file_data are supported", param=param)


def _source(param: str, url: str) -> Block:
    """A data URL becomes a base64 source; an http(s) URL is fetched by Anthropic."""
    if url.startswith(("https://", "http://")):
        return {"type": "url", "url": url}
    header, comma, data = url.partition(",")
    if url.startswith("data:") and comma and header.endswith(";base64"):
        media_type = header[len("data:") :].split(";", 1)[0]
        return {"type": "base64", "media_type": media_type, "data": data}
    raise InvalidRequestError("expected an http(s) URL or a base64 data URL", param=param)


def _assistant(i: int, message: AssistantMessage) -> list[Block]:
    if message.function_call is not None:
        raise InvalidRequestError(
            "function_call is not supported for this model; use tool_calls",
            param=f"messages[{i}].function_call",
        )
    # Signed thinking blocks a client got back from us: required with thinking + tools.
    blocks: list[Block] = list((message.model_extra or {}).get("thinking_blocks") or [])
    if isinstance(message.content, str):
        blocks += _texts(message.content)
    elif message.content:
        blocks += _texts(
            [p if isinstance(p, TextPart) else TextPart(text=p.refusal) for p in message.content]
        )
    if message.refusal:
        blocks += _texts(message.refusal)
    for j, call in enumerate(message.tool_calls or []):
        param = f"messages[{i}].tool_calls[{j}].function.arguments"
        try:
            arguments = orjson.loads(call.function.arguments or "{}")
        except orjson.JSONDecodeError as exc:
            raise InvalidRequestError(
                "tool call arguments are not valid JSON", param=param
            ) from exc
        if not isinstance(arguments, dict):
            raise InvalidRequestError("tool call arguments must be a JSON object", param=param)
        blocks.append(
            {"type": "tool_use", "id": call.id, "name": call.function.name, "input": arguments}
        )
    return blocks


# -- response ---------------------------------------------------------------------------


def finish_reason(stop_reason: str | None) -> str | None:
    if stop_reason is None:
        return None
    return FINISH_REASONS.get(stop_reason, "stop")


def dump_arguments(value: Any) -> str:
    return orjson.dumps(value if value is not None else {}).decode()


def to_chat_completion(message: AnthropicMessage, provider: str) -> ChatCompletion:
    """Text blocks joined into ``content``; thinking kept apart as ``reasoning_content``."""
    texts: list[str] = []
    reasoning: list[str] = []
    thinking_blocks: list[Block] = []
    tool_calls: list[ToolCall] = []
    for block in message.content:
        if block.type == "text":
            texts.append(block.text or "")
        elif block.type == "tool_use":
            if not (block.id and block.name):
                raise UpstreamError(f"{provider} sent a tool_use block without id or name")
            arguments = dump_arguments(block.input)
            tool_calls.append(
                ToolCall(id=block.id, function=FunctionCall(name=block.name, arguments=arguments))
            )
        elif block.type in ("thinking", "redacted_thinking"):
            reasoning.append(block.thinking or "")
            thinking_blocks.append(block.model_dump(exclude_none=True))
        else:
            log.debug("dropped a %s block from the response", block.type)
    extra: dict[str, Any] = {}
    if thinking_blocks:
        extra = {"reasoning_content": "".join(reasoning), "thinking_blocks": thinking_blocks}
    response = ResponseMessage(
        content="".join(texts) if texts else None, tool_calls=tool_calls or None, **extra
    )
    return ChatCompletion(
        id=message.id,
        created=int(time.time()),
        model=message.model,
        choices=[Choice(message=response, finish_reason=finish_reason(message.stop_reason))],
        usage=message.usage.to_usage(),
    )
