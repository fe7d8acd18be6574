"""Anthropic Messages wire types: the request, the message, the stream events, the error.

Like the OpenAI models beside them these keep every field they do not declare, so a
request passed through to Anthropic loses nothing. Content blocks are one generic
model (``AnthropicBlock``): Anthropic adds block types often, and a pass-through must
not refuse the ones this module has never heard of.

Serialise with ``dump_json``: it writes only the fields that were set (or parsed), so
an upstream message goes back to the client as it came, and ``type`` always goes out.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any, Literal

import orjson
from pydantic import BaseModel, Field

from ..exceptions import SymbiosisError
from ._base import WireModel
from .chat import PromptTokensDetails, Usage

# -- shared -----------------------------------------------------------------------------


class _Typed(WireModel):
    """A wire object whose ``type`` is written even when it was left at its default."""

    def model_post_init(self, context: Any, /) -> None:
        self.__pydantic_fields_set__.add("type")


class AnthropicUsage(WireModel):
    """Token counts as Anthropic reports them; total input is the sum of the first three."""

    input_tokens: int = 0
    cache_read_input_tokens: int | None = None
    cache_creation_input_tokens: int | None = None
    output_tokens: int = 0

    def merged(self, counts: Mapping[str, Any]) -> AnthropicUsage:
        """These counts updated by a ``message_delta``'s (running totals; absent ones kept)."""
        update = {k: counts[k] for k in type(self).model_fields if counts.get(k) is not None}
        return self.model_copy(update=update)

    def to_usage(self) -> Usage:
        """OpenAI usage: cache reads and writes are prompt tokens, each also counted apart.

        Writes go in ``cache_write_tokens`` (the OpenAI SDK's field) so pricing can
        charge them at their own rate.
        """
        cached = self.cache_read_input_tokens or 0
        written = self.cache_creation_input_tokens or 0
        prompt = self.input_tokens + cached + written
        return Usage(
            prompt_tokens=prompt,
            completion_tokens=self.output_tokens,
            total_tokens=prompt + self.output_tokens,
            prompt_tokens_details=PromptTokensDetails(
                cached_tokens=cached, cache_write_tokens=written
            ),
        )


class AnthropicBlock(WireModel):
    """One content block, in a request or a response, of any type.

    The fields the translations read are declared; everything else a block carries
    (``cache_control``, ``citations``, server-tool payloads, ...) is kept as it came.
    """

    type: str
    text: str | None = None
    id: str | None = None
    name: str | None = None
    input: Any = None
    thinking: str | None = None
    signature: str | None = None
    source: Any = None  # an object for images and documents, a URL for search results
    title: str | None = None
    tool_use_id: str | None = None
    content: Any = None  # tool_result: a string or a list of blocks
    is_error: bool | None = None


# -- request ----------------------------------------------------------------------------


class AnthropicInputMessage(WireModel):
    role: Literal["user", "assistant"]
    content: str | list[AnthropicBlock]


class AnthropicTool(WireModel):
    """A client tool (``type`` absent or ``custom``) or one Anthropic defines and runs."""

    name: str | None = None  # every tool has one, except toolsets (``mcp_toolset``)
    type: str | None = None
    description: str | None = None
    input_schema: dict[str, Any] | None = None
    strict: bool | None = None


class AnthropicToolChoice(WireModel):
    type: str  # "auto", "any", "tool", "none"
    name: str | None = None
    disable_parallel_tool_use: bool | None = None


class ThinkingConfig(WireModel):
    type: str  # "enabled", "disabled", or a newer mode
    budget_tokens: int | None = None

    @property
    def enabled(self) -> bool:
        return self.type != "disabled"


class MessagesMetadata(WireModel):
    user_id: str | None = None


class MessagesRequest(WireModel):
    """A ``POST /v1/messages`` body. Fields this model does not know are kept and forwarded."""

    model: str = Field(min_length=1)
    messages: list[AnthropicInputMessage] = Field(min_length=1)
    max_tokens: int = Field(ge=1)
    system: str | list[AnthropicBlock] | None = None
    stream: bool | None = None
    temperature: float | None = Field(default=None, ge=0, le=1)
    top_p: float | None = Field(default=None, ge=0, le=1)
    top_k: int | None = Field(default=None, ge=0)
    stop_sequences: list[str] | None = None
    metadata: MessagesMetadata | None = None
    tools: list[AnthropicTool] | None = None
    tool_choice: AnthropicToolChoice | None = None
    thinking: ThinkingConfig | None = None

    def wire_body(self, **overrides: Any) -> dict[str, Any]:
        """The JSON body to send upstream: exactly what the client set, plus overrides."""
        body = self.model_dump(mode="json", exclude_unset=True, by_alias=True)
        body.update(overrides)
        return body


# -- response ---------------------------------------------------------------------------


class AnthropicMessage(_Typed):
    """An Anthropic ``message`` object: the answer, and the snapshot in ``message_start``."""

    id: str
    type: Literal["message"] = "message"
    role: Literal["assistant"] = "assistant"
    model: str
    content: list[AnthropicBlock]
    stop_reason: str | None = None
    stop_sequence: str | None = None
    usage: AnthropicUsage

    def model_post_init(self, context: Any, /) -> None:
        self.__pydantic_fields_set__.update(("type", "role"))


# -- stream events ----------------------------------------------------------------------


class MessageStartEvent(_Typed):
    type: Literal["message_start"] = "message_start"
    message: AnthropicMessage


class ContentBlockStartEvent(_Typed):
    type: Literal["content_block_start"] = "content_block_start"
    index: int
    content_block: AnthropicBlock


class BlockDelta(WireModel):
    """``text_delta``, ``input_json_delta``, ``thinking_delta``, ``signature_delta``, ..."""

    type: str
    text: str | None = None
    partial_json: str | None = None
    thinking: str | None = None
    signature: str | None = None


class ContentBlockDeltaEvent(_Typed):
    type: Literal["content_block_delta"] = "content_block_delta"
    index: int
    delta: BlockDelta


class ContentBlockStopEvent(_Typed):
    type: Literal["content_block_stop"] = "content_block_stop"
    index: int


class MessageDelta(WireModel):
    stop_reason: str | None = None
    stop_sequence: str | None = None


class MessageDeltaEvent(_Typed):
    """The end of a message: why it stopped, and the usage totals so far."""

    type: Literal["message_delta"] = "message_delta"
    delta: MessageDelta
    usage: AnthropicUsage


class MessageStopEvent(_Typed):
    type: Literal["message_stop"] = "message_stop"


class PingEvent(_Typed):
    type: Literal["ping"] = "ping"


# -- errors -----------------------------------------------------------------------------


class AnthropicErrorObject(WireModel):
    type: str
    message: str


class AnthropicErrorResponse(_Typed):
    """``{"type": "error", "error": {"type", "message"}}``: an error body or ``error`` event."""

    type: Literal["error"] = "error"
    error: AnthropicErrorObject
    request_id: str | None = None

    @classmethod
    def from_exception(
        cls, exc: SymbiosisError, request_id: str | None = None
    ) -> AnthropicErrorResponse:
        """The Anthropic error for one of ours; the HTTP status stays ``exc.status_code``.

        Anthropic has no ``param`` field: as in its own messages, the path of the
        offending field leads the message (unless the message names it already).
        """
        kind = ERROR_TYPES.get(exc.status_code, "api_error")
        message = exc.message
        if exc.param and exc.param not in message:
            message = f"{exc.param}: {message}"
        response = cls(error=AnthropicErrorObject(type=kind, message=message))
        if request_id is not None:
            response.request_id = request_id
        return response


#: Our HTTP status -> Anthropic's error ``type`` (anything else: ``api_error``).
ERROR_TYPES: dict[int, str] = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    413: "request_too_large",
    429: "rate_limit_error",
    503: "overloaded_error",
    504: "timeout_error",
}

StreamEvent = Annotated[
    MessageStartEvent
    | ContentBlockStartEvent
    | ContentBlockDeltaEvent
    | ContentBlockStopEvent
    | MessageDeltaEvent
    | MessageStopEvent
    | PingEvent
    | AnthropicErrorResponse,
    Field(discriminator="type"),
]


class StreamUsage:
    """The usage of one Anthropic event stream, read as its events go by.

    ``message_start`` carries the input counts, each ``message_delta`` the running
    totals. Feed every event; only those two are parsed, the rest cost nothing.
    """

    __slots__ = ("usage",)

    def __init__(self) -> None:
        self.usage: AnthropicUsage | None = None

    def feed(self, event: str | None, data: str) -> None:
        if event not in ("message_start", "message_delta"):
            return
        try:
            payload = orjson.loads(data)
            if event == "message_start":
                counts = payload["message"].get("usage") or {}
                self.usage = AnthropicUsage.model_validate(counts)
            else:
                self.usage = (self.usage or AnthropicUsage()).merged(payload.get("usage") or {})
        except (orjson.JSONDecodeError, KeyError, TypeError, AttributeError, ValueError):
            return  # the client gets the event as it came; metering keeps what it has


def dump_json(model: BaseModel) -> bytes:
    """The wire JSON of an Anthropic object: set fields only, ``type`` always."""
    return model.__pydantic_serializer__.to_json(model, exclude_unset=True)


__all__ = [
    "ERROR_TYPES",
    "AnthropicBlock",
    "AnthropicErrorObject",
    "AnthropicErrorResponse",
    "AnthropicInputMessage",
    "AnthropicMessage",
    "AnthropicTool",
    "AnthropicToolChoice",
    "AnthropicUsage",
    "BlockDelta",
    "ContentBlockDeltaEvent",
    "ContentBlockStartEvent",
    "ContentBlockStopEvent",
    "MessageDelta",
    "MessageDeltaEvent",
    "MessageStartEvent",
    "MessageStopEvent",
    "MessagesMetadata",
    "MessagesRequest",
    "PingEvent",
    "StreamEvent",
    "StreamUsage",
    "ThinkingConfig",
    "dump_json",
]
