"""OpenAI ``chat.completion.chunk`` stream -> Anthropic's event stream, chunk by chunk."""

from __future__ import annotations

import uuid

from ..anthropic import (
    AnthropicBlock,
    AnthropicMessage,
    AnthropicUsage,
    BlockDelta,
    ContentBlockDeltaEvent,
    ContentBlockStartEvent,
    ContentBlockStopEvent,
    MessageDelta,
    MessageDeltaEvent,
    MessageStartEvent,
    MessageStopEvent,
    StreamEvent,
)
from ..chat import ChatCompletionChunk, FunctionCallDelta, ToolCallDelta, Usage
from ._response import stop_reason, to_anthropic_usage


class MessagesStreamWriter:
    """Turns the chunks of one chat stream into Anthropic stream events, as they come.

    ``feed`` each chunk and send the events it returns; call ``finish`` when the chunks
    end. ``message_start`` goes out with the first chunk; text, reasoning (as thinking,
    when the client asked for thinking) and each tool call become content blocks, one
    open at a time; ``message_delta`` with the stop reason and usage, and
    ``message_stop``, come from ``finish``, since a chat stream reports usage last.
    """

    def __init__(self, *, thinking: bool) -> None:
        self.thinking = thinking
        self._started = False
        self._next_index = 0
        self._open: tuple[str, int] | None = None  # kind and index of the open block
        self._tool_blocks: dict[int, int] = {}  # tool_calls index -> block index
        self._finish_reason: str | None = None
        self._refused = False
        self._usage: Usage | None = None

    def feed(self, chunk: ChatCompletionChunk) -> list[StreamEvent]:
        events: list[StreamEvent] = []
        if not self._started:
            events.append(self._start(chunk.id, chunk.model, chunk.usage))
        if chunk.usage is not None:
            self._usage = chunk.usage
        for choice in chunk.choices:
            if choice.index != 0:
                continue
            delta = choice.delta
            reasoning = (delta.model_extra or {}).get("reasoning") or delta.reasoning_content
            if reasoning and self.thinking:
                events += self._text("thinking", reasoning)
            if delta.content:
                events += self._text("text", delta.content)
            if delta.refusal:
                self._refused = True
                events += self._text("text", delta.refusal)
            for call in delta.tool_calls or []:
                events += self._tool(call)
            self._finish_reason = choice.finish_reason or self._finish_reason
        return events

    def finish(self) -> list[StreamEvent]:
        """The closing events: the open block's stop, ``message_delta``, ``message_stop``."""
        events: list[StreamEvent] = []
        if not self._started:
            events.append(self._start(f"msg_{uuid.uuid4().hex}", "", None))
        events += self._close()
        finish = "content_filter" if self._refused else self._finish_reason
        reason = stop_reason(finish, used_tools=bool(self._tool_blocks))
        events.append(
            MessageDeltaEvent(
                delta=MessageDelta(stop_reason=reason, stop_sequence=None),
                usage=to_anthropic_usage(self._usage),
            )
        )
        events.append(MessageStopEvent())
        return events

    def _start(self, id_: str, model: str, usage: Usage | None) -> MessageStartEvent:
        self._started = True
        counts = (
            to_anthropic_usage(usage) if usage else AnthropicUsage(input_tokens=0, output_tokens=0)
        )
        message = AnthropicMessage(
            id=id_, model=model, content=[], stop_reason=None, stop_sequence=None, usage=counts
        )
        return MessageStartEvent(message=message)

    def _text(self, kind: str, text: str) -> list[StreamEvent]:
        """Text and thinking deltas go to the open block of their kind, or to a new one."""
        events: list[StreamEvent] = []
        if self._open is not None and self._open[0] == kind:
            index = self._open[1]
        else:
            events += self._close()
            block = (
                AnthropicBlock(type="text", text="")
                if kind == "text"
                else AnthropicBlock(type="thinking", thinking="", signature="")
            )
            start = self._open_block(kind, block)
            events.append(start)
            index = start.index
        delta = (
            BlockDelta(type="text_delta", text=text)
            if kind == "text"
            else BlockDelta(type="thinking_delta", thinking=text)
        )
        events.append(ContentBlockDeltaEvent(index=index, delta=delta))
        return events

    def _tool(self, call: ToolCallDelta) -> list[StreamEvent]:
        """A new tool call opens a ``tool_use`` block; argument fragments are its deltas."""
        events: list[StreamEvent] = []
        function = call.function or FunctionCallDelta()
        index = self._tool_blocks.get(call.index)
        if index is None:
            events += self._close()
            block = AnthropicBlock(
                type="tool_use",
                id=call.id or f"toolu_{uuid.uuid4().hex}",
                name=function.name or "",
                input={},
            )
            start = self._open_block("tool_use", block)
            events.append(start)
            index = self._tool_blocks[call.index] = start.index
        if function.arguments:
            delta = BlockDelta(type="input_json_delta", partial_json=function.arguments)
            events.append(ContentBlockDeltaEvent(index=index, delta=delta))
        return events

    def _open_block(self, kind: str, block: AnthropicBlock) -> ContentBlockStartEvent:
        index = self._next_index
        self._next_index += 1
        self._open = (kind, index)
        return ContentBlockStartEvent(index=index, content_block=block)

    def _close(self) -> list[StreamEvent]:
        if self._open is None:
            return []
        index = self._open[1]
        self._open = None
        return [ContentBlockStopEvent(index=index)]
