"""Bring a database to the newest schema; safe when several replicas start at once.

On PostgreSQL the whole upgrade runs under a session-level advisory lock, so when two
replicas start together one migrates and the other waits, then finds nothing to do.
SQLite is a single-host database: run one migrating process at a time there.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import text
from sqlalchemy.engine import Connection
from sqlalchemy.pool import NullPool

from ._errors import translate_db_errors
from .engine import create_engine, normalize_url

T = TypeVar("T")

MIGRATIONS_DIR = Path(__file__).with_name("migrations")
# Any 64-bit number that no other application on the database uses: ASCII "symbiosi".
ADVISORY_LOCK_ID = 0x73796D62696F7369


@dataclass(frozen=True, slots=True)
class MigrationResult:
    before: str | None
    after: str | None

    @property
    def changed(self) -> bool:
        return self.before != self.after


def alembic_config() -> Config:
    """Alembic's configuration, built in code: the scripts ship inside the package."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.set_main_option("file_template", "%%(rev)s_%%(slug)s")
    return config


def head_revision() -> str | None:
    return ScriptDirectory.from_config(alembic_config()).get_current_head()


async def upgrade(url: str) -> MigrationResult:
    """Migrate the database at ``url`` to the newest revision."""
    return await _with_connection(url, _upgrade)


async def revision(url: str, message: str) -> Path:
    """Write the next revision script, comparing the tables with the database at ``url``.

    For developers working from a source tree; the database must be at head. Revisions
    are numbered (``0002_…``) and formatted with ruff when it is installed.
    """

    def _revision(connection: Connection) -> Path:
        config = alembic_config()
        config.attributes["connection"] = connection
        if shutil.which("ruff"):
            hooks = {"ruff_fix": "check --fix", "ruff_format": "format"}
            config.set_section_option("post_write_hooks", "hooks", ", ".join(hooks))
            for hook, options in hooks.items():
                for name, value in (
                    ("type", "exec"),
                    ("executable", "ruff"),
                    ("options", f"{options} REVISION_SCRIPT_FILENAME"),
                ):
                    config.set_section_option("post_write_hooks", f"{hook}.{name}", value)
        numbered = [p.name[:4] for p in (MIGRATIONS_DIR / "versions").glob("[0-9]*.py")]
        rev_id = f"{max(map(int, numbered), default=0) + 1:04d}"
        script = command.revision(config, message=message, autogenerate=True, rev_id=rev_id)
        if script is None or isinstance(script, list):
            raise RuntimeError("alembic wrote no single revision script")
        return Path(script.path)

    return await _with_connection(url, _revision)


async def _with_connection(url: str, work: Callable[[Connection], T]) -> T:
    url = normalize_url(url)
    engine = create_engine(url, foreign_keys=False, poolclass=NullPool)
    try:
        with translate_db_errors(url):
            async with engine.connect() as connection:
                postgres = connection.dialect.name == "postgresql"
                if postgres:
                    lock = {"id": ADVISORY_LOCK_ID}
                    await connection.execute(text("SELECT pg_advisory_lock(:id)"), lock)
                    await connection.commit()
                try:
                    result = await connection.run_sync(work)
                    await connection.commit()
                finally:
                    if connection.in_transaction():
                        await connection.rollback()
                    if postgres:
                        await connection.execute(text("SELECT pg_advisory_unlock(:id)"), lock)
                        await connection.commit()
                return result
    finally:
        await engine.dispose()


def _upgrade(connection: Connection) -> MigrationResult:
    before = MigrationContext.configure(connection).get_current_revision()
    config = alembic_config()
    config.attributes["connection"] = connection
    command.upgrade(config, "head")
    return MigrationResult(before, MigrationContext.configure(connection).get_current_revision())
