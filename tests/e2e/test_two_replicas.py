"""Two `symbiosis serve` processes on one PostgreSQL: they start together, and a key
revoked through the CLI is refused by both within five seconds of the revoke."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
from contextlib import ExitStack
from datetime import datetime
from pathlib import Path

import httpx
import openai
import pytest

from symbiosis.services.keys import CreatedKey, KeyService

from .._processes import replica, wait_ready
from ..conftest import config_for

PROPAGATION_LIMIT = 5.0


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
        replicas = [stack.enter_context(replica(env, config, log)) for log in logs]
        wait_ready(replicas)
        urls = [r.url for r in replicas]

        created = asyncio.run(_create_key(postgres_url))
        for url in urls:
            client = openai.OpenAI(base_url=f"{url}/v1", api_key=created.secret, max_retries=0)
            assert [m.id for m in client.models.list()] == ["chat-model", "embed-model"]
            client.close()
            headers = httpx.get(f"{url}/health/live", timeout=5).headers
            assert "server" not in headers  # serve does not advertise its software

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
