"""Gateways with prices, budgets and a request log, and ways to read what they logged."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import openai

from symbiosis.services.keys import CreatedKey, KeyService
from symbiosis.store.engine import create_engine
from symbiosis.store.reports import UsageReport, usage_report

# USD per million tokens: one token costs $0.001 in, $0.002 out, so costs are legible.
INPUT_PRICE = 1000
OUTPUT_PRICE = 2000


def metered_config(upstream_base_url: str, spool_dir: Path, extra: str = "") -> str:
    return f"""
    [providers.up]
    type = "openai_compatible"
    base_url = "{upstream_base_url}"

    [[models]]
    name = "chat-model"
    provider = "up"
    model = "upstream-chat"
    input_cost_per_mtok = {INPUT_PRICE}
    output_cost_per_mtok = {OUTPUT_PRICE}

    [request_logs]
    spool_dir = "{spool_dir}"
    {extra}
    """


async def create_key(
    database_url: str,
    project: str = "team",
    *,
    project_options: dict[str, Any] | None = None,
    **key_options: Any,
) -> CreatedKey:
    """A project (created with ``project_options``) and a key of it (``key_options``)."""
    keys = KeyService.from_url(database_url)
    try:
        await keys.create_project(project, actor="test", **(project_options or {}))
        return await keys.create_key(project, actor="test", **key_options)
    finally:
        await keys.aclose()


async def report(database_url: str, group_by: str | None = None) -> UsageReport:
    engine = create_engine(database_url)
    try:
        now = datetime.now(UTC)
        return await usage_report(
            engine, since=now - timedelta(days=1), until=now + timedelta(days=1), group_by=group_by
        )
    finally:
        await engine.dispose()


def in_process_client(app: Any, secret: str) -> openai.AsyncOpenAI:
    transport = httpx.ASGITransport(app=app)
    http = httpx.AsyncClient(transport=transport, base_url="http://gateway", timeout=60)
    return openai.AsyncOpenAI(
        base_url="http://gateway/v1", api_key=secret, max_retries=0, http_client=http
    )


def cost_of(response: Any) -> Decimal:
    return Decimal(response.headers["x-symbiosis-cost"])
