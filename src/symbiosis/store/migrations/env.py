"""Alembic environment: migrates ``SQLModel.metadata`` on SQLite and PostgreSQL.

``symbiosis.store.migrate`` runs it on a connection it already holds (under the
PostgreSQL advisory lock); the ``alembic`` command line works too, given
``-x url=…`` or ``SYMBIOSIS_DATABASE_URL``.
"""

from __future__ import annotations

import asyncio
import os
from typing import Any

from alembic import context
from sqlalchemy.engine import Connection
from sqlalchemy.types import TypeDecorator
from sqlmodel import SQLModel

from symbiosis.store import tables  # noqa: F401 - registers the tables
from symbiosis.store.engine import create_engine

target_metadata = SQLModel.metadata


def render_item(type_: str, obj: Any, autogen_context: Any) -> str | bool:
    """Write our column types as plain SQLAlchemy types, so revisions import nothing of ours."""
    if type_ == "type" and isinstance(obj, TypeDecorator):
        return f"sa.{obj.impl!r}"
    return False


def run_migrations(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
        render_item=render_item,
    )
    with context.begin_transaction():
        context.run_migrations()


async def _run_with_url(url: str) -> None:
    engine = create_engine(url, foreign_keys=False)
    try:
        async with engine.connect() as connection:
            await connection.run_sync(run_migrations)
            await connection.commit()
    finally:
        await engine.dispose()


def _url() -> str:
    url = context.get_x_argument(as_dictionary=True).get("url")
    return url or os.environ.get("SYMBIOSIS_DATABASE_URL") or "sqlite+aiosqlite:///./symbiosis.db"


if context.is_offline_mode():
    raise SystemExit("offline (--sql) migrations are not supported; migrate a live database")
connection = context.config.attributes.get("connection")
if connection is not None:
    run_migrations(connection)
else:
    asyncio.run(_run_with_url(_url()))
