"""``symbiosis demo``: the whole loop on this machine, no provider account needed."""

from __future__ import annotations

import asyncio
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

from ..config import GatewayConfig
from ..server import serve_in_thread
from ..services.keys import CreatedKey, KeyService
from ..settings import Settings
from ..store.engine import create_engine
from ..store.migrate import upgrade
from ..store.reports import UsageReport, usage_report
from .fake_upstream import FakeUpstream

Echo = Callable[[str], None]

DEMO_MODEL = "demo-chat"
DEMO_EMBEDDINGS = "demo-embed"


def demo_config(upstream_url: str, spool_dir: Path) -> GatewayConfig:
    return GatewayConfig.parse(
        f"""
        [providers.local-fake]
        type = "openai_compatible"
        base_url = "{upstream_url}/v1"

        [[models]]
        name = "{DEMO_MODEL}"
        provider = "local-fake"
        model = "fake-chat-1"
        input_cost_per_mtok = 0.15
        output_cost_per_mtok = 0.60

        [[models]]
        name = "{DEMO_EMBEDDINGS}"
        provider = "local-fake"
        model = "fake-embed-1"
        input_cost_per_mtok = 0.02
        output_cost_per_mtok = 0

        [request_logs]
        spool_dir = "{spool_dir}"
        """,
        source="<demo>",
    )


def run_demo(echo: Echo = print) -> None:
    """Start a fake upstream and a gateway, send real SDK requests, print what happened."""
    try:
        import openai
    except ImportError:
        raise SystemExit(
            "symbiosis demo needs the OpenAI SDK: pip install 'symbiosis[demo]'"
        ) from None
    from ..gateway import create_app

    with (
        tempfile.TemporaryDirectory(prefix="symbiosis-demo-") as scratch,
        serve_in_thread(FakeUpstream(chunks=8, chunk_delay=0.03)) as upstream_url,
    ):
        echo(f"1. Fake OpenAI-compatible upstream listening on {upstream_url}")
        settings = Settings(database_url=f"sqlite+aiosqlite:///{Path(scratch) / 'demo.db'}")
        created = asyncio.run(_demo_key(settings.database_url))
        app = create_app(settings, config=demo_config(upstream_url, Path(scratch) / "spool"))
        with serve_in_thread(app) as gateway_url:
            echo(
                f"2. Symbiosis gateway listening on {gateway_url} (models: {DEMO_MODEL}, "
                f"{DEMO_EMBEDDINGS})"
            )
            echo(
                f"   project 'demo' with key {created.key.id} ({created.key.prefix}…), "
                "in a throw-away SQLite database"
            )
            client = openai.OpenAI(
                base_url=f"{gateway_url}/v1", api_key=created.secret, max_retries=0
            )
            _round_trips(client, echo)
        # The gateway has stopped: its request log is drained into the database.
        _summary(asyncio.run(_report(settings.database_url)), echo)


async def _demo_key(database_url: str) -> CreatedKey:
    """A fresh database with one project and one key, as `symbiosis keys create` makes."""
    await upgrade(database_url)
    keys = KeyService.from_url(database_url)
    try:
        await keys.create_project("demo", actor="demo")
        return await keys.create_key("demo", name="demo", actor="demo")
    finally:
        await keys.aclose()


def _round_trips(client: object, echo: Echo) -> None:
    import openai

    assert isinstance(client, openai.OpenAI)
    started = time.perf_counter()
    raw = client.chat.completions.with_raw_response.create(
        model=DEMO_MODEL, messages=[{"role": "user", "content": "Hello, gateway!"}]
    )
    elapsed = (time.perf_counter() - started) * 1000
    completion = raw.parse()
    echo(
        f"3. Chat completion in {elapsed:.1f} ms, cost ${raw.headers['x-symbiosis-cost']}: "
        f"{completion.choices[0].message.content!r}"
    )

    pieces: list[str] = []
    stream = client.chat.completions.create(
        model=DEMO_MODEL,
        messages=[{"role": "user", "content": "Stream this back to me"}],
        stream=True,
        stream_options={"include_usage": True},
    )
    tokens = 0
    for chunk in stream:
        if chunk.choices and chunk.choices[0].delta.content:
            pieces.append(chunk.choices[0].delta.content)
        if chunk.usage:
            tokens = chunk.usage.total_tokens
    echo(f"4. Streamed {len(pieces)} chunks ({tokens} tokens): {''.join(pieces).strip()!r}")

    embedding = client.embeddings.create(model=DEMO_EMBEDDINGS, input=["symbiosis", "gateway"])
    echo(
        f"5. Embeddings: {len(embedding.data)} vectors of {len(embedding.data[0].embedding)} "
        "dimensions"
    )

    models = [m.id for m in client.models.list()]
    echo(f"6. Models offered: {', '.join(models)}")


async def _report(database_url: str) -> UsageReport:
    engine = create_engine(database_url)
    try:
        now = datetime.now(UTC)
        return await usage_report(
            engine, since=now - timedelta(hours=1), until=now + timedelta(minutes=1),
            group_by="model",
        )  # fmt: skip
    finally:
        await engine.dispose()


def _summary(report: UsageReport, echo: Echo) -> None:
    echo("")
    echo("7. Usage report from the request log (what `symbiosis usage --group-by model` shows)")
    echo(
        f"  {'model':<12} {'requests':>8} {'errors':>6} {'input':>7} {'output':>7} {'cost USD':>12}"
    )
    for row in [*report.rows, {"model": "TOTAL", **report.total}]:
        echo(
            f"  {row['model']:<12} {row['requests']:>8} {row['errors']:>6} "
            f"{row['input_tokens']:>7} {row['output_tokens']:>7} {row['cost_usd']:>12f}"
        )
    echo("")
    echo(
        "Round trip OK. Next: write a symbiosis.toml with your providers and run `symbiosis serve`."
    )
