"""Use a Symbiosis provider client directly, without running a gateway.

    OPENAI_BASE_URL=http://127.0.0.1:8001/v1 python examples/provider_client.py

Any OpenAI-compatible server works (vLLM, Ollama, llama.cpp); set OPENAI_API_KEY for
api.openai.com.
"""

from __future__ import annotations

import asyncio
import os

from symbiosis.providers import OpenAICompatibleProvider
from symbiosis.wire import ChatCompletionRequest


async def main() -> None:
    base_url = os.environ.get("OPENAI_BASE_URL", "http://127.0.0.1:11434/v1")
    model = os.environ.get("MODEL", "llama3.2")
    async with OpenAICompatibleProvider(
        base_url=base_url, api_key=os.environ.get("OPENAI_API_KEY"), timeout=60
    ) as provider:
        request = ChatCompletionRequest.model_validate(
            {"model": model, "messages": [{"role": "user", "content": "Say hello"}]}
        )
        completion = await provider.chat(request)
        print("reply:", completion.choices[0].message.content)

        print("stream:", end=" ")
        async for chunk in provider.chat_stream(request):
            if chunk.choices and chunk.choices[0].delta.content:
                print(chunk.choices[0].delta.content, end="", flush=True)
            if chunk.usage:
                print(f"\ntokens: {chunk.usage.total_tokens}")


if __name__ == "__main__":
    asyncio.run(main())
