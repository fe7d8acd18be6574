"""Anthropic Messages request -> OpenAI chat request.

Every field is translated, dropped (logged at debug level) or refused with a 400.
"""

from __future__ import annotations

import logging
from typing import Any

import orjson
from pydantic import ValidationError

from ...exceptions import InvalidRequestError
from ..anthropic import AnthropicBlock, AnthropicInputMessage, AnthropicTool, MessagesRequest
from ..chat import ChatCompletionRequest

log = logging.getLogger("symbiosis.wire.messages_bridge")

Json = dict[str, Any]

#: Anthropic ``tool_choice.type`` -> OpenAI ``tool_choice`` (``tool`` names a function).
TOOL_CHOICES: dict[str, str] = {"auto": "auto", "any": "required", "none": "none"}

#: ``output_config.effort`` -> ``reasoning_effort`` (OpenAI's highest is ``xhigh``).
EFFORTS: dict[str, str] = {"max": "xhigh"}

# Request fields with no chat-completions equivalent that do not change the kind of answer.
_DROPPED = ("top_k", "thinking")
# Extras (undeclared fields) that ask for something only Anthropic can do.
_REFUSED_EXTRAS = ("mcp_servers",)
# Extras consumed by the translation itself.
_USED_EXTRAS = ("output_format", "output_config")
_CLIENT_TOOL_TYPES = (None, "custom")


def to_chat_request(request: MessagesRequest) -> ChatCompletionRequest:
    """The chat request for a Messages request (without ``stream``: the caller picks).

    Built as the JSON a client would send, so ``wire_body`` writes every ``role`` and
    ``type``, and validated once at the end.
    """
    for name in _REFUSED_EXTRAS:
        if (request.model_extra or {}).get(name):
            raise InvalidRequestError(f"{name} is not supported for this model", param=name)
    body: dict[str, Any] = {
        "model": request.model,
        "messages": [*_system(request.system), *_conversation(request.messages)],
        "max_completion_tokens": request.max_tokens,
    }
    if request.temperature is not None:
        body["temperature"] = request.temperature
    if request.top_p is not None:
        body["top_p"] = request.top_p
    if request.stop_sequences:
        body["stop"] = request.stop_sequences
    if request.metadata is not None and request.metadata.user_id:
        body["user"] = request.metadata.user_id
    body.update(_tools(request))
    body.update(_output(request))
    _log_dropped(request)
    try:
        return ChatCompletionRequest.model_validate(body)
    except ValidationError as exc:
        problem = exc.errors(include_url=False)[0]
        raise InvalidRequestError(f"cannot be sent to this model: {problem['msg']}") from exc


def _log_dropped(request: MessagesRequest) -> None:
    dropped = [name for name in _DROPPED if name in request.model_fields_set]
    known = (*_REFUSED_EXTRAS, *_USED_EXTRAS)
    dropped += [name for name in request.model_extra or {} if name not in known]
    if dropped:
        log.debug("dropped %s: no equivalent in chat completions", ", ".join(dropped))


def _system(system: str | list[AnthropicBlock] | None) -> list[Json]:
    if not system:
        return []
    if isinstance(system, str):
        return [{"role": "system", "content": system}]
    parts = [_text_part(f"system[{i}]", block) for i, block in enumerate(system)]
    return [{"role": "system", "content": parts}]


def _text_part(param: str, block: AnthropicBlock) -> Json:
    """A text part; ``cache_control`` and ``citations`` have no chat equivalent."""
    if block.type != "text" or block.text is None:
        raise InvalidRequestError(f"expected a text block, got {block.type!r}", param=param)
    return {"type": "text", "text": block.text}


def _conversation(messages: list[AnthropicInputMessage]) -> list[Json]:
    """The turns in order; a final assistant turn (a prefill to continue) is refused."""
    if messages[-1].role == "assistant":
        raise InvalidRequestError(
            "a final assistant message (prefill) is not supported for this model: chat "
            "models answer it with a new message instead of continuing it",
            param=f"messages[{len(messages) - 1}]",
        )
    out: list[Json] = []
    for i, message in enumerate(messages):
        if message.role == "assistant":
            out.append(_assistant(i, message.content))
        else:
            out.extend(_user(i, message.content))
    return out


def _user(i: int, content: str | list[AnthropicBlock]) -> list[Json]:
    """Tool results become ``tool`` messages, first; the other blocks one user message."""
    if isinstance(content, str):
        return [{"role": "user", "content": content}]
    results: list[Json] = []
    parts: list[Json] = []
    for j, block in enumerate(content):
        param = f"messages[{i}].content[{j}]"
        if block.type == "tool_result":
            results.append(_tool_result(param, block))
        else:
            parts.append(_user_part(param, block))
    if not parts:
        return results
    if len(parts) == 1 and parts[0]["type"] == "text":
        return [*results, {"role": "user", "content": parts[0]["text"]}]
    return [*results, {"role": "user", "content": parts}]


def _user_part(param: str, block: AnthropicBlock) -> Json:
    if block.type == "text":
        return _text_part(param, block)
    source = block.source if isinstance(block.source, dict) else {}
    kind = source.get("type")
    if block.type == "image" and kind in ("base64", "url"):
        return {"type": "image_url", "image_url": {"url": _url(source)}}
    if block.type == "document" and kind == "text":
        return {"type": "text", "text": str(source.get("data") or "")}
    if block.type == "document" and kind == "base64":
        file = {"filename": block.title or "document.pdf", "file_data": _url(source)}
        return {"type": "file", "file": file}
    what = f"{block.type} blocks" + (f" with a {kind} source" if kind else "")
    raise InvalidRequestError(f"{what} are not supported for this model", param=param)


def _url(source: dict[str, Any]) -> str:
    if source["type"] == "url":
        return str(source.get("url") or "")
    return f"data:{source.get('media_type')};base64,{source.get('data')}"


def _tool_result(param: str, block: AnthropicBlock) -> Json:
    """A ``tool`` message; its content is the result's text (images are refused)."""
    if not block.tool_use_id:
        raise InvalidRequestError("tool_result needs a tool_use_id", param=param)
    if block.is_error:
        log.debug("dropped %s.is_error: chat tool messages have no error flag", param)
    content = block.content
    if content is not None and not isinstance(content, str | list):
        raise InvalidRequestError("tool_result content must be a string or a list", param=param)
    if isinstance(content, list):
        content = [
            _text_part(f"{param}.content[{k}]", AnthropicBlock.model_validate(item))
            for k, item in enumerate(content)
        ]
    return {"role": "tool", "tool_call_id": block.tool_use_id, "content": content or ""}


def _assistant(i: int, content: str | list[AnthropicBlock]) -> Json:
    """Text blocks joined into ``content``, ``tool_use`` blocks into ``tool_calls``."""
    if isinstance(content, str):
        return {"role": "assistant", "content": content}
    texts: list[str] = []
    calls: list[Json] = []
    for j, block in enumerate(content):
        param = f"messages[{i}].content[{j}]"
        if block.type == "text":
            texts.append(_text_part(param, block)["text"])
        elif block.type == "tool_use":
            calls.append(_tool_call(param, block))
        elif block.type in ("thinking", "redacted_thinking"):
            log.debug("dropped %s: a %s block", param, block.type)
        else:
            raise InvalidRequestError(
                f"{block.type} blocks are not supported for this model", param=param
            )
    message: Json = {"role": "assistant", "content": "".join(texts) if texts else None}
    if calls:
        message["tool_calls"] = calls
    return message


def _tool_call(param: str, block: AnthropicBlock) -> Json:
    if not (block.id and block.name):
        raise InvalidRequestError("tool_use needs an id and a name", param=param)
    arguments = orjson.dumps(block.input if block.input is not None else {}).decode()
    return {
        "id": block.id,
        "type": "function",
        "function": {"name": block.name, "arguments": arguments},
    }


def _tools(request: MessagesRequest) -> Json:
    choice = request.tool_choice
    if not request.tools:
        if choice is not None and choice.type in ("any", "tool"):
            raise InvalidRequestError("tool_choice needs tools", param="tool_choice")
        return {}
    out: Json = {"tools": [_tool(f"tools[{i}]", tool) for i, tool in enumerate(request.tools)]}
    if choice is None:
        return out
    if choice.type == "tool":
        if not choice.name:
            raise InvalidRequestError("tool_choice of type tool needs a name", param="tool_choice")
        out["tool_choice"] = {"type": "function", "function": {"name": choice.name}}
    elif choice.type in TOOL_CHOICES:
        out["tool_choice"] = TOOL_CHOICES[choice.type]
    else:
        raise InvalidRequestError(
            f"tool_choice type {choice.type!r} is not supported for this model", param="tool_choice"
        )
    if choice.disable_parallel_tool_use and choice.type != "none":
        out["parallel_tool_calls"] = False
    return out


def _tool(param: str, tool: AnthropicTool) -> Json:
    if tool.type not in _CLIENT_TOOL_TYPES:
        raise InvalidRequestError(
            f"tool type {tool.type!r} is defined by Anthropic; it is not available for this model",
            param=param,
        )
    if not tool.name:
        raise InvalidRequestError("a tool needs a name", param=param)
    function: Json = {
        "name": tool.name,
        "parameters": tool.input_schema or {"type": "object", "properties": {}},
    }
    if tool.description:
        function["description"] = tool.description
    if tool.strict is not None:
        function["strict"] = tool.strict
    return {"type": "function", "function": function}


def _output(request: MessagesRequest) -> Json:
    """``output_config``: ``format`` -> ``response_format``, ``effort`` -> ``reasoning_effort``.

    The beta ``output_format`` is read like ``output_config.format``.
    """
    extras = request.model_extra or {}
    config = extras.get("output_config") or {}
    if not isinstance(config, dict):
        raise InvalidRequestError("output_config must be an object", param="output_config")
    out: Json = {}
    effort = config.get("effort")
    if effort is not None:
        out["reasoning_effort"] = EFFORTS.get(effort, effort)
    fmt = config.get("format") or extras.get("output_format")
    if not fmt:
        return out
    schema = fmt.get("schema") if isinstance(fmt, dict) else None
    if not isinstance(schema, dict) or fmt.get("type") != "json_schema":
        raise InvalidRequestError(
            "output format must be a json_schema with a schema", param="output_config.format"
        )
    out["response_format"] = {
        "type": "json_schema",
        "json_schema": {"name": "response", "schema": schema, "strict": True},
    }
    return out
