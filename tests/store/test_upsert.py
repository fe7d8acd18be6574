"""``insert_for``: the dialect's own ``insert``, whichever database the bind is on."""

from __future__ import annotations

from pathlib import Path

import pytest

from symbiosis.store._upsert import insert_for
from symbiosis.store.engine import create_engine
from symbiosis.store.tables import RequestLog


@pytest.mark.parametrize(
    ("url", "module"),
    [
        ("sqlite+aiosqlite:///{tmp}/upsert.db", "sqlalchemy.dialects.sqlite.dml"),
        ("postgresql+asyncpg://u:p@127.0.0.1:5432/none", "sqlalchemy.dialects.postgresql.dml"),
    ],
)
async def test_insert_for_builds_the_dialects_insert(url: str, module: str, tmp_path: Path) -> None:
    engine = create_engine(url.format(tmp=tmp_path))  # nothing connects
    try:
        statement = insert_for(engine, RequestLog.__table__)
    finally:
        await engine.dispose()
    assert type(statement).__module__ == module
    assert statement.on_conflict_do_nothing(index_elements=["request_id"]) is not None
