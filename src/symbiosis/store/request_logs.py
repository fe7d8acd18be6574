"""The SQL sink of the request-log writer: one prepared insert per batch, idempotent."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine

from ..services.usage import UsageEvent
from ._upsert import insert_for
from .tables import RequestLog

_COLUMNS = tuple(c.name for c in RequestLog.__table__.columns if c.name != "id")
# Clients choose some of these strings (user agent, end user, client name): one that is
# too long must not make PostgreSQL refuse the whole batch, again at every replay.
_LENGTHS = {
    c.name: c.type.length
    for c in RequestLog.__table__.columns
    if c.name != "id" and getattr(c.type, "length", None)
}


def _row(event: UsageEvent) -> dict[str, Any]:
    row = {column: getattr(event, column) for column in _COLUMNS}
    for column, length in _LENGTHS.items():
        value = row[column]
        if value is not None and len(value) > length:
            row[column] = value[:length]
    return row


class SqlRequestLogSink:
    """Writes batches; a row already stored (same ``request_id`` and ``at``) is skipped,
    so replays are safe.

    The statement is one single-row Core insert run for every row of the batch
    (``executemany``), so it is compiled once and cached, however large the batch;
    the ORM's bulk path would cost several times more CPU per row.
    """

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine
        self._statement: Any = insert_for(engine, RequestLog.__table__).on_conflict_do_nothing(
            index_elements=["request_id", "at"]
        )

    async def write(self, events: Sequence[UsageEvent]) -> None:
        if not events:
            return
        rows = [_row(event) for event in events]
        async with self._engine.begin() as connection:
            await connection.execute(self._statement, rows)
