"""Is a database already at the newest schema? Answered without importing Alembic.

A gateway restarts far more often than its schema changes; reading one row and the
revision ids of the shipped scripts keeps that common start cheap (Alembic's import
and environment cost about a second and several megabytes).
"""

from __future__ import annotations

import re
from functools import cache
from pathlib import Path

from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from .engine import create_engine

VERSIONS_DIR = Path(__file__).with_name("migrations") / "versions"
_REVISION = re.compile(r'^revision(?:: str)? = "([^"]+)"', re.M)
_DOWN = re.compile(r'^down_revision(?:: [^=]+)? = "([^"]+)"', re.M)


@cache
def shipped_head() -> str | None:
    """The revision no shipped script builds on: the newest one."""
    revisions: set[str] = set()
    parents: set[str] = set()
    for script in VERSIONS_DIR.glob("*.py"):
        source = script.read_text(encoding="utf-8")
        if match := _REVISION.search(source):
            revisions.add(match.group(1))
        if match := _DOWN.search(source):
            parents.add(match.group(1))
    heads = revisions - parents
    return heads.pop() if len(heads) == 1 else None


async def is_current(url: str) -> bool:
    """True when the database at ``url`` is at ``shipped_head()``; False on any doubt."""
    head = shipped_head()
    if head is None:
        return False
    engine = create_engine(url)
    try:
        async with engine.connect() as connection:
            row = (
                await connection.execute(text("SELECT version_num FROM alembic_version"))
            ).first()
    except (DBAPIError, OSError):
        return False
    finally:
        await engine.dispose()
    return row is not None and row[0] == head
