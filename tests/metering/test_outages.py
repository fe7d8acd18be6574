"""No request log is lost: not when the database goes away, not on SIGTERM."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import asyncpg
import httpx
import pytest
from sqlalchemy.engine import make_url

from symbiosis.demo.fake_upstream import FakeUpstream
from symbiosis.server import serve_in_thread

from .._processes import replica, wait_ready
from ._support import create_key, metered_config, report

PROMPT = [{"role": "user", "content": "hello"}]


def _chat(url: str, secret: str) -> int:
    response = httpx.post(
        f"{url}/v1/chat/completions",
        json={"model": "chat-model", "messages": PROMPT},
        headers={"authorization": f"Bearer {secret}"},
        timeout=30,
    )
    return response.status_code


async def _set_connections(database_url: str, allowed: bool) -> None:
    """Open or close a database to new connections, and cut the existing ones."""
    name = make_url(database_url).database
    admin = await asyncpg.connect(host="127.0.0.1", port=5432, user="postgres", database="postgres")
    try:
        await admin.execute(
            f'ALTER DATABASE "{name}" WITH ALLOW_CONNECTIONS {str(allowed).lower()}'
        )
        if not allowed:
            await admin.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE datname = $1 AND pid <> pg_backend_pid()",
                name,
            )
    finally:
        await admin.close()


@pytest.mark.postgres
async def test_requests_served_during_a_database_outage_are_logged_later(
    postgres_url: str, upstream_url: str, tmp_path: Path
) -> None:
    config = tmp_path / "symbiosis.toml"
    config.write_text(metered_config(upstream_url, tmp_path / "spool"))
    env = {**os.environ, "SYMBIOSIS_DATABASE_URL": postgres_url, "SYMBIOSIS_LOG_LEVEL": "WARNING"}
    with replica(env, config, tmp_path / "gateway.log") as gateway:
        wait_ready([gateway])
        created = await create_key(postgres_url)
        before = [_chat(gateway.url, created.secret) for _ in range(3)]
        await _set_connections(postgres_url, allowed=False)
        try:
            during = [_chat(gateway.url, created.secret) for _ in range(5)]
            await asyncio.sleep(2.5)  # a few flushes fail and go to the spool
            assert any((tmp_path / "spool").glob("*.jsonl"))
        finally:
            await _set_connections(postgres_url, allowed=True)
        after = [_chat(gateway.url, created.secret) for _ in range(2)]
        await asyncio.sleep(3)  # the writer replays the spool
        logged = (await report(postgres_url)).total["requests"]
        assert gateway.stop()
    assert before + during + after == [200] * 10
    assert logged == 10
    assert (await report(postgres_url)).total["requests"] == 10  # nothing written twice
    assert not list((tmp_path / "spool").glob("*.jsonl"))


def test_sigterm_with_requests_in_flight_logs_every_completed_request(
    migrated_url: str, tmp_path: Path
) -> None:
    slow = FakeUpstream(delay=1.5)
    with serve_in_thread(slow) as upstream:
        config = tmp_path / "symbiosis.toml"
        config.write_text(metered_config(f"{upstream}/v1", tmp_path / "spool"))
        env = {**os.environ, "SYMBIOSIS_DATABASE_URL": migrated_url,
               "SYMBIOSIS_LOG_LEVEL": "WARNING"}  # fmt: skip
        created = asyncio.run(create_key(migrated_url))
        statuses: list[int] = []
        with replica(env, config, tmp_path / "gateway.log") as gateway:
            wait_ready([gateway])
            threads = [
                threading.Thread(target=lambda: statuses.append(_chat(gateway.url, created.secret)))
                for _ in range(8)
            ]
            for thread in threads:
                thread.start()
            deadline = time.monotonic() + 20
            while slow.calls < 8:  # all eight are waiting on the slow upstream
                assert time.monotonic() < deadline, f"only {slow.calls} requests arrived"
                time.sleep(0.01)
            gateway.process.send_signal(signal.SIGTERM)
            for thread in threads:
                thread.join(timeout=30)
            assert gateway.stop()
    completed = statuses.count(200)
    assert completed == 8  # a graceful stop lets requests in flight finish
    usage = subprocess.run(
        [sys.executable, "-m", "symbiosis", "usage", "--json"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert usage.returncode == 0, usage.stderr
    assert json.loads(usage.stdout)["total"]["requests"] == completed
