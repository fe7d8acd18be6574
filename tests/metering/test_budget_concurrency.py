"""40 concurrent requests against a budget worth about 10: it holds, and the books balance."""

from __future__ import annotations

import asyncio
import os
from contextlib import ExitStack
from decimal import Decimal
from pathlib import Path

import openai
import pytest

from symbiosis.config import GatewayConfig
from symbiosis.demo.fake_upstream import FakeUpstream
from symbiosis.gateway import create_app
from symbiosis.server import serve_in_thread
from symbiosis.settings import Settings

from .._processes import replica, wait_ready
from ._support import cost_of, create_key, in_process_client, metered_config, report

REQUESTS = 40
MAX_TOKENS = 20
PROMPT = [{"role": "user", "content": "How much does this cost?"}]


async def _one(client: openai.AsyncOpenAI) -> Decimal | str:
    try:
        raw = await client.chat.completions.with_raw_response.create(
            model="chat-model", messages=PROMPT, max_tokens=MAX_TOKENS
        )
    except openai.RateLimitError as exc:
        return str(exc.code)
    return cost_of(raw)


async def _single_cost(client: openai.AsyncOpenAI) -> Decimal:
    cost = await _one(client)
    assert isinstance(cost, Decimal)
    return cost


def _check_outcomes(outcomes: list[Decimal | str], budget: Decimal, unit: Decimal) -> None:
    costs = [o for o in outcomes if isinstance(o, Decimal)]
    refusals = [o for o in outcomes if not isinstance(o, Decimal)]
    assert set(refusals) == {"insufficient_quota"}
    # Real costs stay below the estimates here, so the bound is the budget itself.
    assert sum(costs) <= budget
    assert len(costs) >= 5  # the budget was spent, not stranded in leases
    assert len(costs) <= budget / unit


async def test_budget_bound_and_report_match_headers(migrated_url: str, tmp_path: Path) -> None:
    with serve_in_thread(FakeUpstream(delay=0.05)) as upstream:
        config = GatewayConfig.parse(metered_config(f"{upstream}/v1", tmp_path / "spool"))
        app = create_app(Settings(database_url=migrated_url), config=config)
        probe = await create_key(migrated_url, project="probe")
        unit = await _single_cost(in_process_client(app, probe.secret))
        budget = unit * 10 + unit / 2
        created = await create_key(
            migrated_url, project_options={"budget_usd": budget, "budget_period": "daily"}
        )
        client = in_process_client(app, created.secret)

        outcomes = await asyncio.gather(*(_one(client) for _ in range(REQUESTS)))
        _check_outcomes(list(outcomes), budget, unit)
        assert await _one(client) == "insufficient_quota"  # later requests are refused too
        await app.state.gateway.aclose()  # drains the request log

    by_project = {row["project"]: row for row in (await report(migrated_url, "project")).rows}
    team = by_project["team"]
    costs = [o for o in outcomes if isinstance(o, Decimal)]
    assert team["cost_usd"] == sum(costs)
    assert team["requests"] == REQUESTS + 1
    assert team["errors"] == REQUESTS + 1 - len(costs)
    assert by_project["probe"]["cost_usd"] == unit


@pytest.mark.postgres
async def test_budget_holds_across_two_replicas(postgres_url: str, tmp_path: Path) -> None:
    with ExitStack() as stack:
        upstream = stack.enter_context(serve_in_thread(FakeUpstream(delay=0.05)))
        config = tmp_path / "symbiosis.toml"
        config.write_text(metered_config(f"{upstream}/v1", tmp_path / "spool"))
        env = {**os.environ, "SYMBIOSIS_DATABASE_URL": postgres_url,
               "SYMBIOSIS_LOG_LEVEL": "WARNING"}  # fmt: skip
        replicas = [
            stack.enter_context(replica(env, config, tmp_path / f"replica-{i}.log"))
            for i in range(2)
        ]
        wait_ready(replicas)
        probe = await create_key(postgres_url, project="probe")
        unit = await _single_cost(
            openai.AsyncOpenAI(base_url=f"{replicas[0].url}/v1", api_key=probe.secret)
        )
        budget = unit * 10 + unit / 2
        created = await create_key(
            postgres_url, project_options={"budget_usd": budget, "budget_period": "daily"}
        )
        clients = [
            openai.AsyncOpenAI(base_url=f"{r.url}/v1", api_key=created.secret, max_retries=0)
            for r in replicas
        ]
        outcomes = await asyncio.gather(*(_one(clients[i % 2]) for i in range(REQUESTS)))
        _check_outcomes(list(outcomes), budget, unit)
        for running in replicas:
            assert running.stop()  # SIGTERM: drain the request log

    team = {r["project"]: r for r in (await report(postgres_url, "project")).rows}["team"]
    assert team["cost_usd"] == sum(o for o in outcomes if isinstance(o, Decimal))
    assert team["requests"] == REQUESTS
