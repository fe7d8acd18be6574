"""Budget alerts fire once per threshold: a log event, and a retried webhook POST."""

from __future__ import annotations

import asyncio
import logging
import threading
from decimal import Decimal
from pathlib import Path

import orjson
import pytest

from symbiosis.config import GatewayConfig
from symbiosis.gateway import create_app
from symbiosis.server import serve_in_thread
from symbiosis.settings import Settings

from ._support import cost_of, create_key, in_process_client, metered_config

PROMPT = [{"role": "user", "content": "spend a little"}]


class WebhookReceiver:
    """An ASGI app that refuses the first POST (to prove retries) and keeps the rest."""

    def __init__(self, expected: int) -> None:
        self.received: list[dict] = []
        self.refused = 0
        self.expected = expected
        self.all_arrived = threading.Event()

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            return
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        status = 200
        if self.refused == 0:
            self.refused, status = 1, 503
        else:
            self.received.append(orjson.loads(body))
            if len(self.received) >= self.expected:
                self.all_arrived.set()
        await send({"type": "http.response.start", "status": status, "headers": []})
        await send({"type": "http.response.body", "body": b""})


async def test_thresholds_fire_once_each_with_webhook_retries(
    migrated_url: str, upstream_url: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    receiver = WebhookReceiver(expected=2)
    with serve_in_thread(receiver) as hook:
        extra = f'[budgets]\nalert_webhook = "{hook}/alerts"\nalert_thresholds = [0.5, 0.8]'
        config = GatewayConfig.parse(metered_config(upstream_url, tmp_path / "spool", extra))
        app = create_app(Settings(database_url=migrated_url), config=config)
        probe = await create_key(migrated_url, project="probe")
        unit = cost_of(
            await in_process_client(app, probe.secret).chat.completions.with_raw_response.create(
                model="chat-model", messages=PROMPT, max_tokens=20
            )
        )
        budget = unit * 10
        created = await create_key(migrated_url, budget_usd=budget, budget_period="monthly")
        client = in_process_client(app, created.secret)
        with caplog.at_level(logging.WARNING, logger="symbiosis.budgets"):
            for _ in range(9):  # 90 % of the budget, one request at a time
                await client.chat.completions.create(
                    model="chat-model", messages=PROMPT, max_tokens=20
                )
                await app.state.gateway.metering.budgets.flush()
            await asyncio.to_thread(receiver.all_arrived.wait, 15)
            await app.state.gateway.aclose()

    assert receiver.refused == 1  # the first delivery failed and was retried
    assert [(a["scope"], a["percent"]) for a in receiver.received] == [("key", 50), ("key", 80)]
    first = receiver.received[0]
    assert first["scope_id"] == created.key.id
    assert Decimal(first["budget_usd"]) == budget
    assert Decimal(first["spent_usd"]) >= budget / 2
    alerts = [r for r in caplog.records if "budget alert" in r.getMessage()]
    assert len(alerts) == 2
