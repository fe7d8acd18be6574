"""The model routes' own dispatch: what a client notices of it."""

from __future__ import annotations

import time

import anthropic
import httpx
import pytest

from symbiosis.demo.fake_upstream import FakeUpstream
from symbiosis.server import serve_in_thread
from symbiosis.services.usage import MemoryUsageRecorder

from ..conftest import TEST_KEY, MakeApp, config_for

CHAT = {"model": "chat-model", "messages": [{"role": "user", "content": "hi"}]}


def test_a_client_that_hangs_up_mid_stream_is_logged_at_once(make_app: MakeApp) -> None:
    """The upstream is silent for seconds; the gateway notices the hang-up without it."""
    usage = MemoryUsageRecorder()
    upstream = FakeUpstream(chunks=3, chunk_delay=3.0)
    with (
        serve_in_thread(upstream) as upstream_url,
        serve_in_thread(make_app(config_for(f"{upstream_url}/v1"), usage=usage)) as gateway,
    ):
        with (
            httpx.Client(base_url=gateway) as http,
            http.stream(
                "POST",
                "/v1/chat/completions",
                json={**CHAT, "stream": True},
                headers={"authorization": f"Bearer {TEST_KEY}"},
            ) as response,
        ):
            first = next(response.iter_raw())
            assert b'"role":"assistant"' in first
        hung_up = time.monotonic()
        while not usage.events and time.monotonic() - hung_up < 2.5:
            time.sleep(0.02)
        noticed_after = time.monotonic() - hung_up

    assert [e.status for e in usage.events] == [499]
    assert usage.events[0].error_type == "client_closed_request"
    assert noticed_after < 2.5  # before the upstream's next chunk (3 s)


def test_a_missing_key_on_messages_is_an_anthropic_error(make_app: MakeApp) -> None:
    with serve_in_thread(make_app(config_for("http://127.0.0.1:9/v1"))) as gateway:
        client = anthropic.Anthropic(base_url=gateway, api_key="sk-sym-wrong", max_retries=0)
        with pytest.raises(anthropic.AuthenticationError) as caught:
            client.messages.create(
                model="chat-model", max_tokens=5, messages=[{"role": "user", "content": "x"}]
            )
    body = caught.value.body
    assert isinstance(body, dict)
    assert body["type"] == "error"
    assert body["error"]["type"] == "authentication_error"
    assert caught.value.response.headers["request-id"].startswith("req_")


async def test_every_response_carries_the_clients_request_id(make_app: MakeApp) -> None:
    app = make_app(config_for("http://127.0.0.1:9/v1"))
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://gateway"
    ) as http:
        refused = await http.post(
            "/v1/chat/completions", json=CHAT, headers={"x-request-id": "trace-42"}
        )
        unknown = await http.post(
            "/v1/chat/completions",
            json={**CHAT, "model": "nope"},
            headers={"authorization": f"Bearer {TEST_KEY}", "x-request-id": "trace-43"},
        )
    assert (refused.status_code, refused.headers["x-request-id"]) == (401, "trace-42")
    assert (unknown.status_code, unknown.headers["x-request-id"]) == (404, "trace-43")
    assert unknown.json()["error"]["code"] == "model_not_found"


async def test_model_routes_are_in_the_openapi_document(make_app: MakeApp) -> None:
    app = make_app(config_for("http://127.0.0.1:9/v1"))
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://gateway"
    ) as http:
        document = (await http.get("/openapi.json")).json()
        wrong_method = await http.get(
            "/v1/chat/completions", headers={"authorization": f"Bearer {TEST_KEY}"}
        )
    paths = document["paths"]
    for path, body in (
        ("/v1/chat/completions", "ChatCompletionRequest"),
        ("/v1/embeddings", "EmbeddingsRequest"),
        ("/v1/messages", "MessagesRequest"),
    ):
        schema = paths[path]["post"]["requestBody"]["content"]["application/json"]["schema"]
        assert schema == {"$ref": f"#/components/schemas/{body}"}
        assert body in document["components"]["schemas"]
    assert "/v1/models" in paths
    assert wrong_method.status_code in (404, 405)
    assert "error" in wrong_method.json()
