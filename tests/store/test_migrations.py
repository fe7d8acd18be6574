"""Migrations: empty to head on SQLite and PostgreSQL, and the tables match the migrations."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect
from sqlalchemy.engine import Connection
from sqlmodel import SQLModel

from symbiosis.exceptions import ConfigError
from symbiosis.store import tables
from symbiosis.store.base import StoreUnavailableError
from symbiosis.store.engine import create_engine, normalize_url
from symbiosis.store.migrate import head_revision, upgrade
from symbiosis.store.sql import SqlKeyStore

EXPECTED_TABLES = {
    "alembic_version",
    "audit_log",
    "budgets",
    "budget_alerts",
    "budget_leases",
    "business_units",
    "memberships",
    "projects",
    "request_logs",
    "spend_counters",
    "users",
    "virtual_keys",
}


def _schema_differences(connection: Connection) -> list[Any]:
    context = MigrationContext.configure(connection, opts={"compare_type": True})
    return compare_metadata(context, SQLModel.metadata)


async def _inspect(url: str) -> tuple[set[str], list[Any]]:
    engine = create_engine(url)
    try:
        async with engine.connect() as connection:
            names = await connection.run_sync(lambda c: set(inspect(c).get_table_names()))
            differences = await connection.run_sync(_schema_differences)
    finally:
        await engine.dispose()
    return names, differences


async def test_upgrade_from_empty_to_head_matches_the_tables(database_url: str) -> None:
    assert tables.VirtualKey.__tablename__ == "virtual_keys"
    result = await upgrade(database_url)
    assert (result.before, result.after) == (None, head_revision())
    assert result.changed

    names, differences = await _inspect(database_url)
    assert names == EXPECTED_TABLES
    assert differences == [], "the tables changed without a migration: symbiosis db revision"

    again = await upgrade(database_url)
    assert not again.changed


@pytest.mark.postgres
async def test_replicas_migrating_at_once_take_turns(postgres_url: str) -> None:
    results = await asyncio.gather(*(upgrade(postgres_url) for _ in range(3)))
    assert sorted(r.changed for r in results) == [False, False, True]
    assert {r.after for r in results} == {head_revision()}


async def test_a_database_without_schema_says_to_migrate(database_url: str) -> None:
    store = SqlKeyStore.from_url(database_url)
    try:
        with pytest.raises(StoreUnavailableError, match="symbiosis db migrate") as caught:
            await store.ping()
    finally:
        await store.aclose()
    assert caught.value.status_code == 503


@pytest.mark.parametrize(
    "url",
    [
        "postgresql+asyncpg://postgres@127.0.0.1:1/nothing",
        "sqlite+aiosqlite:////nonexistent-dir/symbiosis.db",
    ],
)
async def test_an_unreachable_database_is_one_clear_error(url: str) -> None:
    with pytest.raises(StoreUnavailableError, match="database at") as caught:
        await upgrade(url)
    assert "\n" not in caught.value.message


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("sqlite:///x.db", "sqlite+aiosqlite:///x.db"),
        ("postgresql://u:p@h/db", "postgresql+asyncpg://u:p@h/db"),
        ("postgres://h/db", "postgresql+asyncpg://h/db"),
        ("postgresql+asyncpg://h/db", "postgresql+asyncpg://h/db"),
    ],
)
def test_plain_urls_get_the_async_driver(given: str, expected: str) -> None:
    assert normalize_url(given) == expected


@pytest.mark.parametrize("url", ["mysql://h/db", "postgresql+psycopg2://h/db", "not a url"])
def test_unsupported_urls_are_refused(url: str) -> None:
    with pytest.raises(ConfigError, match="database URL"):
        normalize_url(url)


def test_fast_head_check_agrees_with_alembic() -> None:
    from symbiosis.store.migrate import head_revision
    from symbiosis.store.schema_version import shipped_head

    assert shipped_head() == head_revision()


async def test_is_current_only_at_head(database_url: str) -> None:
    from symbiosis.store.migrate import upgrade
    from symbiosis.store.schema_version import is_current

    assert not await is_current(database_url)  # empty: no alembic_version table
    await upgrade(database_url)
    assert await is_current(database_url)
