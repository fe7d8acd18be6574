"""Call the gateway's /v1/messages with the official Anthropic SDK, for any model.

export SYMBIOSIS_URL=http://127.0.0.1:8000 SYMBIOSIS_KEY=sk-sym-...
python examples/anthropic_client.py claude-sonnet      # or a GPT or local model name
"""

from __future__ import annotations

import os
import sys

from anthropic import Anthropic


def main(model: str) -> None:
    client = Anthropic(base_url=os.environ["SYMBIOSIS_URL"], api_key=os.environ["SYMBIOSIS_KEY"])
    message = client.messages.create(
        model=model,
        max_tokens=200,
        messages=[{"role": "user", "content": "Say hello in five words"}],
    )
    print("reply:", "".join(b.text for b in message.content if b.type == "text"))
    print("tokens in/out:", message.usage.input_tokens, message.usage.output_tokens)

    print("stream:", end=" ", flush=True)
    with client.messages.stream(
        model=model, max_tokens=200, messages=[{"role": "user", "content": "Count to five"}]
    ) as stream:
        for text in stream.text_stream:
            print(text, end="", flush=True)
    print()


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "claude-sonnet")
