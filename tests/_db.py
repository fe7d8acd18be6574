"""Database fixtures: one test, run on SQLite (a temporary file) and on the real PostgreSQL.

Every test gets a database of its own: a new SQLite file, or a new PostgreSQL database
created on the server at ``$SYMBIOSIS_TEST_POSTGRES`` (default
``postgresql://postgres@127.0.0.1:5432/postgres``) and dropped afterwards. Migrated
databases are copied from a template migrated once per session, so a test pays for a
file copy or a ``CREATE DATABASE … TEMPLATE``, not for Alembic. The PostgreSQL half
skips, with the reason, only when no server answers.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import os
import secrets
import shutil
from collections.abc import AsyncIterator, Iterable, Iterator
from pathlib import Path

import asyncpg
import pytest
from sqlalchemy.engine import make_url

from symbiosis.services.keys import KeyService, hash_secret
from symbiosis.store.base import KeyRecord, ProjectRecord, new_id, utcnow
from symbiosis.store.memory import MemoryKeyStore
from symbiosis.store.migrate import upgrade

POSTGRES_ADMIN_URL = os.environ.get(
    "SYMBIOSIS_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/postgres"
)
BACKENDS = ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]


@functools.cache
def postgres_unavailable() -> str | None:
    """Why PostgreSQL cannot be used, or None when it answers."""

    async def probe() -> None:
        connection = await asyncpg.connect(POSTGRES_ADMIN_URL, timeout=3)
        await connection.close()

    try:
        asyncio.run(probe())
    except (OSError, TimeoutError, asyncpg.PostgresError) as exc:
        where = make_url(POSTGRES_ADMIN_URL).render_as_string(hide_password=True)
        return f"no PostgreSQL answers at {where} ({exc}); set SYMBIOSIS_TEST_POSTGRES"
    return None


def _admin(*statements: str) -> None:
    async def run() -> None:
        connection = await asyncpg.connect(POSTGRES_ADMIN_URL, timeout=10)
        try:
            for statement in statements:
                await connection.execute(statement)
        finally:
            await connection.close()

    asyncio.run(run())


def _database_url(name: str) -> str:
    url = make_url(POSTGRES_ADMIN_URL).set(drivername="postgresql+asyncpg", database=name)
    return url.render_as_string(hide_password=False)


@contextlib.contextmanager
def _postgres_database(template: str | None = None) -> Iterator[str]:
    reason = postgres_unavailable()
    if reason:
        pytest.skip(reason)
    name = f"symbiosis_test_{secrets.token_hex(6)}"
    suffix = f' TEMPLATE "{template}"' if template else ""
    _admin(f'CREATE DATABASE "{name}"{suffix}')
    try:
        yield _database_url(name)
    finally:
        _admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A SQLite file migrated once per session, to copy."""
    path = tmp_path_factory.mktemp("template") / "template.db"
    asyncio.run(upgrade(f"sqlite+aiosqlite:///{path}"))
    return path


@pytest.fixture(scope="session")
def postgres_template() -> Iterator[str]:
    """The name of a PostgreSQL database migrated once per session, to clone."""
    with _postgres_database() as url:
        asyncio.run(upgrade(url))
        yield make_url(url).database or ""


@pytest.fixture(params=BACKENDS)
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """An empty database of its own for this test, on each backend in turn."""
    if request.param == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path / 'empty.db'}"
        return
    with _postgres_database() as url:
        yield url


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """An empty PostgreSQL database of its own for this test."""
    with _postgres_database() as url:
        yield url


@contextlib.contextmanager
def migrated_database(backend: str, request: pytest.FixtureRequest) -> Iterator[str]:
    """A database at the newest schema for this test: a copied file or a cloned database."""
    if backend == "sqlite":
        path = request.getfixturevalue("tmp_path") / "migrated.db"
        shutil.copyfile(request.getfixturevalue("sqlite_template"), path)
        yield f"sqlite+aiosqlite:///{path}"
        return
    with _postgres_database(template=request.getfixturevalue("postgres_template")) as url:
        yield url


@pytest.fixture(params=BACKENDS)
def migrated_url(request: pytest.FixtureRequest) -> Iterator[str]:
    """A database at the newest schema, of its own for this test, on each backend in turn."""
    with migrated_database(request.param, request) as url:
        yield url


@pytest.fixture
async def key_service(migrated_url: str) -> AsyncIterator[KeyService]:
    """A started SQL key service on a migrated database, polling and flushing quickly."""
    keys = KeyService.from_url(migrated_url, poll_interval=0.05, flush_interval=0.05)
    await keys.start()
    yield keys
    await keys.aclose()


def static_keys(
    secrets_: Iterable[str], *, project: str = "test", models: Iterable[str] = ()
) -> KeyService:
    """A key service over ``MemoryKeyStore`` that knows each secret as a key of ``project``."""
    now = utcnow()
    owner = ProjectRecord(id=new_id("proj"), name=project, created_at=now)
    records = [
        KeyRecord(
            id=new_id("key"),
            project_id=owner.id,
            project_name=owner.name,
            key_hash=hash_secret(secret),
            prefix=secret[:12],
            allowed_models=tuple(models),
            created_at=now,
            updated_at=now,
        )
        for secret in secrets_
    ]
    return KeyService(MemoryKeyStore(projects=[owner], keys=records))
