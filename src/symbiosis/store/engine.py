"""The async engine and sessions, built from a database URL; the one place that knows drivers.

``sqlite+aiosqlite:///./symbiosis.db`` (the default) and ``postgresql+asyncpg://…`` are
supported. SQLite runs in WAL mode with a busy timeout, so a gateway and the CLI can
use one file at the same time.
"""

from __future__ import annotations

import asyncio
from threading import Thread
from typing import Any

import aiosqlite
from sqlalchemy import event
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker
from sqlalchemy.ext.asyncio import create_async_engine as _create_async_engine

from ..exceptions import ConfigError

SQLITE_BUSY_TIMEOUT_MS = 5000
POSTGRES_CONNECT_TIMEOUT = 10.0  # seconds
_PLAIN = {
    "sqlite": "sqlite+aiosqlite",
    "postgresql": "postgresql+asyncpg",
    "postgres": "postgresql+asyncpg",
}


def normalize_url(url: str) -> str:
    """Accept the plain forms too: ``postgresql://`` and ``sqlite://`` get the async driver."""
    try:
        parsed = make_url(url)
    except Exception:
        raise ConfigError(f"database URL {redact(url)!r} is not a valid URL") from None
    name = parsed.drivername
    if name in _PLAIN:
        parsed = parsed.set(drivername=_PLAIN[name])
    elif name not in _PLAIN.values():
        raise ConfigError(
            f"database URL {redact(url)!r}: unsupported driver {name!r} "
            "(use sqlite+aiosqlite:// or postgresql+asyncpg://)"
        )
    return parsed.render_as_string(hide_password=False)


def redact(url: str) -> str:
    """The URL with its password hidden, for messages and logs."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:
        return "<unparseable database URL>"


def create_engine(url: str, *, foreign_keys: bool = True, **kwargs: Any) -> AsyncEngine:
    """An async engine for ``url``; on SQLite, WAL journal, busy timeout and foreign keys.

    ``foreign_keys=False`` is for migrations, which rebuild SQLite tables in batches.
    """
    url = normalize_url(url)
    if url.startswith("sqlite"):
        connect_args: dict[str, Any] = kwargs.pop("connect_args", {})

        async def connect() -> aiosqlite.Connection:
            sync_engine = engine.sync_engine
            cargs, cparams = sync_engine.dialect.create_connect_args(sync_engine.url)
            return await _open_aiosqlite(*cargs, **{**cparams, **connect_args})

        engine = _create_async_engine(url, async_creator=connect, **kwargs)
        _configure_sqlite(engine, foreign_keys=foreign_keys)
        return engine
    kwargs.setdefault("pool_pre_ping", True)
    kwargs.setdefault("connect_args", {}).setdefault("timeout", POSTGRES_CONNECT_TIMEOUT)
    if "poolclass" not in kwargs:
        kwargs.setdefault("pool_size", 5)
        kwargs.setdefault("max_overflow", 5)
    return _create_async_engine(url, **kwargs)


def create_sessionmaker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False)


async def _open_aiosqlite(*args: Any, **kwargs: Any) -> aiosqlite.Connection:
    """``aiosqlite.connect``, but a failed open returns only once its worker thread has ended.

    When opening fails (a missing directory, no permission), aiosqlite stops the worker
    without waiting for it, and the worker then answers on this event loop. If the loop
    closes first (``asyncio.run`` returning with the error, a test ending), the worker
    thread dies with "RuntimeError: Event loop is closed".
    """
    connection = aiosqlite.connect(*args, **kwargs)
    # aiosqlite < 0.22 connections are the thread; SQLAlchemy reaches it the same way.
    worker: Thread = getattr(connection, "_thread", connection)
    worker.daemon = True  # as SQLAlchemy does: an open connection never holds up exit
    try:
        return await connection
    except Exception:
        await asyncio.to_thread(worker.join)
        raise


def _configure_sqlite(engine: AsyncEngine, *, foreign_keys: bool) -> None:
    in_memory = engine.url.database in (None, "", ":memory:")

    @event.listens_for(engine.sync_engine, "connect")
    def _pragmas(dbapi_connection: Any, _record: Any) -> None:
        cursor = dbapi_connection.cursor()
        try:
            if not in_memory:
                cursor.execute("PRAGMA journal_mode=WAL")
                cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
            cursor.execute(f"PRAGMA foreign_keys={'ON' if foreign_keys else 'OFF'}")
        finally:
            cursor.close()
