"""Anthropic Messages requests answered by OpenAI-style chat models.

The reverse of the ``anthropic`` provider's translation, used by the gateway's
``POST /v1/messages`` for models that no ``MessagesCapable`` provider serves: the
request becomes a ``ChatCompletionRequest`` (``to_chat_request``), the answer an
Anthropic message (``to_anthropic_message``) or event stream
(``MessagesStreamWriter``). ``docs/anthropic.md`` lists what is translated, dropped
and refused.
"""

from ._request import to_chat_request
from ._response import to_anthropic_message
from ._stream import MessagesStreamWriter

__all__ = ["MessagesStreamWriter", "to_anthropic_message", "to_chat_request"]
