"""Give the benchmark's throw-away database a project and a virtual key; print the secret.

The gateway refuses requests without a valid key, so the benchmark needs one. The
documented way is the CLI (``symbiosis db migrate``, ``projects create``, ``keys create
--json``); while those commands are not there yet it uses the key service's Python API,
and on a gateway without key checks it prints an empty line. It reads
``SYMBIOSIS_DATABASE_URL`` like the gateway does and runs in the gateway's environment.

Run by ``run.py``; by hand: ``SYMBIOSIS_DATABASE_URL=... python bench/provision.py``.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys

import orjson

PROJECT = "bench"
ACTOR = "bench"
# With BENCH_METERED=1 the key and its project get budgets and RPM/TPM limits too large
# to reach, so every request pays for rate limiting and budget reservations.
LIMITS = ["--budget", "1000000", "--rpm", "100000000", "--tpm", "100000000000"]


def _cli() -> list[str]:
    """``symbiosis`` through this interpreter (``uv run --with`` overlays have no scripts)."""
    return [sys.executable, "-c", "import sys; from symbiosis.cli import main; main()"]


def _run(args: list[str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*_cli(), *args], capture_output=True, text=True, check=False)


def via_cli() -> str | None:
    """The secret of a new key made with the documented CLI, or None if it lacks a step."""
    if _run(["keys", "create", "--help"]).returncode != 0:
        return None
    limits = LIMITS if os.environ.get("BENCH_METERED") == "1" else []
    for step in (["db", "migrate"], ["projects", "create", PROJECT, *limits]):
        done = _run(step)
        if done.returncode != 0:
            raise SystemExit(f"symbiosis {' '.join(step)} failed: {done.stderr.strip()}")
    done = _run(["keys", "create", "--project", PROJECT, "--name", "bench", "--json", *limits])
    if done.returncode != 0:
        raise SystemExit(f"symbiosis keys create failed: {done.stderr.strip()}")
    return str(orjson.loads(done.stdout)["key"])


async def via_api(url: str) -> str | None:
    """The same through ``KeyService``; None when this gateway has no key service."""
    try:
        from symbiosis.services.keys import KeyService
        from symbiosis.store.migrate import upgrade
    except ImportError:
        return None
    await upgrade(url)
    keys = KeyService.from_url(url)
    try:
        await keys.create_project(PROJECT, actor=ACTOR)
        created = await keys.create_key(PROJECT, name="bench", actor=ACTOR)
    finally:
        await keys.aclose()
    return created.secret


def main() -> None:
    url = os.environ.get("SYMBIOSIS_DATABASE_URL")
    if not url:
        raise SystemExit("SYMBIOSIS_DATABASE_URL is not set")
    secret = via_cli()
    if secret is None:
        secret = asyncio.run(via_api(url))
    print(secret or "")


if __name__ == "__main__":
    main()
