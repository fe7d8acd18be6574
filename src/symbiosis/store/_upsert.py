"""``INSERT … ON CONFLICT`` for the two dialects we run on."""

from __future__ import annotations

from typing import Any

from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession


def insert_for(bind: AsyncSession | AsyncEngine, table: Any) -> Any:
    """The dialect's ``insert`` construct, which knows ``on_conflict_do_*``."""
    engine = bind if isinstance(bind, AsyncEngine) else bind.bind
    dialect = engine.dialect.name if engine is not None else "sqlite"
    module = postgresql if dialect == "postgresql" else sqlite
    return module.insert(table)
