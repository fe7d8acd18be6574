"""Two `symbiosis serve` processes on one PostgreSQL: they start together, and a key
revoked through the CLI is refused by both within five seconds of the revoke."""

from __future__ import annotations

import asyncio
import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from datetime import datetime
from pathlib import Path

import httpx
import openai
import pytest

from symbiosis.services.keys import CreatedKey, KeyService

from ..conftest import config_for

STARTUP_TIMEOUT = 120.0
PROPAGATION_LIMIT = 5.0


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextmanager
def _replica(env: dict[str, str], config: Path, log: Path) -> Iterator[str]:
    """A `symbiosis serve` process; yields its base URL once it is ready."""
    port = _free_port()
    command = [sys.executable, "-m", "symbiosis", "serve", "--config", str(config)]
    with log.open("wb") as output:
        process = subprocess.Popen(
            [*command, "--port", str(port)], env=env, stdout=output, stderr=subprocess.STDOUT
        )
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=5)


def _wait_ready(urls: list[str], logs: list[Path]) -> None:
    deadline = time.monotonic() + STARTUP_TIMEOUT
    pending = set(urls)
    while pending:
        for url in list(pending):
            try:
                if httpx.get(f"{url}/health/ready", timeout=2).status_code == 200:
                    pending.discard(url)
            except httpx.TransportError:
                pass
        if time.monotonic() > deadline:
            output = "\n".join(log.read_text(errors="replace")[-2000:] for log in logs)
            pytest.fail(f"replicas not ready after {STARTUP_TIMEOUT:.0f} s:\n{output}")
        time.sleep(0.1)


async def _create_key(database_url: str) -> CreatedKey:
    keys = KeyService.from_url(database_url)
    try:
        await keys.create_project("replicated", actor="test")
        return await keys.create_key("replicated", actor="test")
    finally:
        await keys.aclose()


def _status(url: str, secret: str) -> int:
    response = httpx.get(
        f"{url}/v1/models", headers={"Authorization": f"Bearer {secret}"}, timeout=5
    )
    return response.status_code


@pytest.mark.postgres
def test_revoke_through_the_cli_reaches_both_replicas(
    postgres_url: str, upstream_url: str, tmp_path: Path
) -> None:
    config = tmp_path / "symbiosis.toml"
    config.write_text(config_for(upstream_url))
    env = {**os.environ, "SYMBIOSIS_DATABASE_URL": postgres_url, "SYMBIOSIS_LOG_LEVEL": "WARNING"}
    logs = [tmp_path / "replica-1.log", tmp_path / "replica-2.log"]
    with ExitStack() as stack:
        # Both start at once on an empty database: one migrates, the other waits its turn.
        urls = [stack.enter_context(_replica(env, config, log)) for log in logs]
        _wait_ready(urls, logs)

        created = asyncio.run(_create_key(postgres_url))
        for url in urls:
            client = openai.OpenAI(base_url=f"{url}/v1", api_key=created.secret, max_retries=0)
            assert [m.id for m in client.models.list()] == ["chat-model", "embed-model"]
            client.close()

        revoke = subprocess.run(
            [sys.executable, "-m", "symbiosis", "keys", "revoke", created.key.id, "--json"],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert revoke.returncode == 0, revoke.stderr
        revoked_at = datetime.fromisoformat(json.loads(revoke.stdout)["revoked_at"]).timestamp()

        pending = set(urls)
        while pending:
            pending = {url for url in pending if _status(url, created.secret) != 401}
            elapsed = time.time() - revoked_at
            assert elapsed < PROPAGATION_LIMIT, f"{sorted(pending)} still accept the key"
            time.sleep(0.05)

    for log in logs:
        assert "Traceback" not in log.read_text(errors="replace")
