"""``INSERT … ON CONFLICT`` for the two dialects we run on.

The dialect module is imported when a statement is first built, not with this module:
a gateway on SQLite then never loads SQLAlchemy's PostgreSQL dialect (about 2 MB of
resident memory and 50 ms of start-up), and one on PostgreSQL has it loaded already.
"""

from __future__ import annotations

import importlib
from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

_DIALECT_MODULES = {
    "postgresql": "sqlalchemy.dialects.postgresql",
    "sqlite": "sqlalchemy.dialects.sqlite",
}


def insert_for(bind: AsyncSession | AsyncEngine, table: Any) -> Any:
    """The dialect's ``insert`` construct, which knows ``on_conflict_do_*``."""
    engine = bind if isinstance(bind, AsyncEngine) else bind.bind
    dialect = engine.dialect.name if engine is not None else "sqlite"
    module = importlib.import_module(_DIALECT_MODULES.get(dialect, _DIALECT_MODULES["sqlite"]))
    return module.insert(table)
