"""Call the gateway with the official OpenAI SDK, and read what it metered.

export SYMBIOSIS_URL=http://127.0.0.1:8000 SYMBIOSIS_KEY=sk-sym-...   # symbiosis keys create
python examples/openai_client.py gpt-4o-mini
"""

from __future__ import annotations

import os
import sys

from openai import OpenAI


def main(model: str) -> None:
    client = OpenAI(
        base_url=f"{os.environ['SYMBIOSIS_URL']}/v1", api_key=os.environ["SYMBIOSIS_KEY"]
    )
    raw = client.chat.completions.with_raw_response.create(
        model=model,
        messages=[{"role": "user", "content": "Say hello in five words"}],
        extra_headers={"x-symbiosis-client": "examples", "x-symbiosis-end-user": "alice"},
    )
    completion = raw.parse()
    print("reply:", completion.choices[0].message.content)
    print("tokens:", completion.usage.total_tokens if completion.usage else "unknown")
    print("cost (USD):", raw.headers.get("x-symbiosis-cost", "unknown"))
    remaining = raw.headers.get("x-ratelimit-remaining-requests")
    if remaining is not None:
        print("requests left this minute:", remaining)

    print("stream:", end=" ", flush=True)
    stream = client.chat.completions.create(
        model=model,
        messages=[{"role": "user", "content": "Count to five"}],
        stream=True,
        stream_options={"include_usage": True},
    )
    for chunk in stream:
        if chunk.choices and chunk.choices[0].delta.content:
            print(chunk.choices[0].delta.content, end="", flush=True)
        if chunk.usage:
            print(f"\nstream tokens: {chunk.usage.total_tokens}")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "gpt-4o-mini")
